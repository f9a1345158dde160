/* quiet clean|leak — the exit report under FDGUARD_EXIT_REPORT=auto (tests/quiet_when_clean.rs).
 *
 *   clean  connects to its own loopback listener, talks, closes both ends, and exits while
 *          its listener is still open: only `open_at_exit` information, nothing worth a word.
 *   leak   the listener's side hangs up; leave_the_dead_connection_open() keeps its end until
 *          exit (CLOSE_WAIT past FDGUARD_GRACE_MS): a leak finding.
 *
 * Prints {"ok":true} on stdout. */
#include "testlib.h"

__attribute__((noinline)) static int leave_the_dead_connection_open(int port) {
  return tcp_connect(port);
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: quiet clean|leak");
  int port;
  int l = tcp_listener(&port);
  if (strcmp(argv[1], "clean") == 0) {
    int c = tcp_connect(port);
    int a = accept(l, NULL, NULL);
    if (a < 0 || write(c, "x", 1) != 1) die("talk");
    close(a);
    close(c);
  } else {
    int c = leave_the_dead_connection_open(port);
    int a = accept(l, NULL, NULL);
    if (a < 0) die("accept");
    close(a); /* the peer hangs up: c goes to CLOSE_WAIT */
    (void)c;
    sleep_ms(600); /* well past FDGUARD_GRACE_MS=100 once the watcher has dated it */
  }
  printf("{\"ok\":true}\n");
  return 0;
}
