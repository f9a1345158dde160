/* Where reports go (tests/report_paths.rs). Holds a listener, a client and its accepted end
 * (plus N more sockets with "many"), asks for a report with SIGUSR1, waits for it, exits
 * normally (exit report).
 *
 * argv[1]:
 *   "plain": as described.
 *   "chdir": first changes directory to argv[2] (a relative FDGUARD_REPORT was fixed at load).
 *   "many": opens argv[2] more sockets and makes its stderr non-blocking (as Node.js and
 *     others do with the stdio they share), so a report of more than the pipe's 64 KiB
 *     meets EAGAIN while the reader is slow. No signal report in this mode.
 * Prints {"ok":true,"pid":P}. */
#include "testlib.h"
#include <fcntl.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "chdir") == 0 && (argc < 3 || chdir(argv[2]) != 0)) die("chdir");
  int port;
  int l = tcp_listener(&port);
  int c = tcp_connect(port);
  int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  if (a < 0 || c < 0) die("accept4");
  if (strcmp(argv[1], "many") == 0) {
    int n = argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 0; i < n; i++)
      if (socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) < 0) die("socket");
    int flags = fcntl(2, F_GETFL);
    if (fcntl(2, F_SETFL, flags | O_NONBLOCK) != 0) die("O_NONBLOCK");
  } else {
    raise(SIGUSR1);
    sleep_ms(500);
  }
  printf("{\"ok\":true,\"pid\":%d}\n", (int)getpid());
  return 0;
}
