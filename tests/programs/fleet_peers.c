/* fleet_peers server N PORTFILE | fleet_peers client PORTFILE
 *
 * Ten thousand distinct peers on loopback, within RLIMIT_NOFILE's hard limit of 20,000 per
 * process (each raises its soft limit to the hard one):
 *   server: N listeners on 127.0.0.1, each on its own port with a backlog of 1 and never
 *           accepting (the kernel completes one connection per listener by itself); writes the
 *           ports to PORTFILE (one per line, written then renamed), then waits.
 *   client: one connection to each port in PORTFILE (N distinct peers), prints
 *           {"ok":true,"connected":N}, then waits.
 * Both wait until stdin closes (bounded: 120 s) and exit 0. */
#include "testlib.h"
#include <sys/resource.h>
#include <sys/select.h>

static void raise_nofile(long needed) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
  if ((rlim_t)needed > rl.rlim_cur) {
    fprintf(stderr, "need %ld fds, the hard limit is %ld\n", needed, (long)rl.rlim_max);
    exit(98);
  }
}

static void wait_for_stdin_eof(void) {
  char buf[64];
  for (int waited = 0; waited < 1200; waited++) {
    struct timeval tv = {0, 100000};
    fd_set in;
    FD_ZERO(&in);
    FD_SET(0, &in);
    if (select(1, &in, NULL, NULL, &tv) > 0 && read(0, buf, sizeof buf) <= 0) return;
  }
}

static int serve(long n, const char *portfile) {
  raise_nofile(n + 16);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
  FILE *out = fopen(tmp, "w");
  if (!out) die("fopen");
  for (long i = 0; i < n; i++) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0) die("socket");
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
    if (listen(l, 1) != 0) die("listen");
    socklen_t len = sizeof a;
    if (getsockname(l, (struct sockaddr *)&a, &len) != 0) die("getsockname");
    fprintf(out, "%d\n", ntohs(a.sin_port));
  }
  if (fclose(out) != 0) die("fclose");
  if (rename(tmp, portfile) != 0) die("rename");
  wait_for_stdin_eof();
  return 0;
}

__attribute__((noinline)) static int connect_to_peer(int port) { return tcp_connect(port); }

static int client(const char *portfile) {
  FILE *in = fopen(portfile, "r");
  if (!in) die("fopen");
  int ports[20000];
  long n = 0;
  while (n < 20000 && fscanf(in, "%d", &ports[n]) == 1) n++;
  fclose(in);
  raise_nofile(n + 16);
  for (long i = 0; i < n; i++) connect_to_peer(ports[i]);
  printf("{\"ok\":true,\"connected\":%ld}\n", n);
  fflush(stdout);
  wait_for_stdin_eof();
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "server") == 0) return serve(atol(argv[2]), argv[3]);
  if (argc == 3 && strcmp(argv[1], "client") == 0) return client(argv[2]);
  fprintf(stderr, "usage: fleet_peers server N PORTFILE | fleet_peers client PORTFILE\n");
  return 2;
}
