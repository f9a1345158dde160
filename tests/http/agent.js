// Node's keep-alive agent against tests/http/server.py, for the findings corpus (run under the
// shim). Usage: node agent.js PORT healthy|idle-closed
//   healthy      40 requests through http.Agent({keepAlive: true, maxSockets: 4}), then exit
//                with the 4 pooled sockets open
//   idle-closed  the same, then wait until the server has closed the idle sockets (the agent
//                destroys them when it sees the FIN), then exit
// Prints {"local": [ports of the pooled sockets]} first. Node resets every signal handler at
// start-up, so only the exit report is used.
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const mode = process.argv[3] || 'healthy';
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function get() {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
      .on('error', reject);
  });
}

function pooled() {
  return Object.values(agent.freeSockets).flat();
}

async function main() {
  await Promise.all(Array.from({ length: 40 }, get));
  console.log(JSON.stringify({ local: pooled().map((s) => s.localPort) }));
  if (mode === 'idle-closed') {
    const deadline = Date.now() + 10000;
    while (pooled().length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(JSON.stringify({ pooled_after: pooled().length }));
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(3);
});
