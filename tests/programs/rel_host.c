/* A well-behaved host that checks its own sockets keep working (tests/reliability_input.rs,
 * tests/reliability_faults.rs).
 *
 * Opens a listener, a client and the accepted end through distinctly named functions, checks
 * data flows both ways, raises SIGUSR1 if something handles it (fdguard does; without it the
 * program would die) and waits 500 ms (a report goes wherever it goes), checks again after a
 * dup/close round, and exits normally (exit report).
 * argv[1] (optional): "fsize": first limits files to 64 bytes (RLIMIT_FSIZE) with SIGXFSZ
 * ignored, as on a full disk: writing a report fails with EFBIG.
 * Prints one JSON line: {"ok":true,"open":[...]}; any failure exits non-zero. */
#include "testlib.h"
#include <sys/resource.h>

__attribute__((noinline)) int host_listener(int *port) { return tcp_listener(port); }
__attribute__((noinline)) int host_client(int port) { return tcp_connect(port); }

static void roundtrip(int a, int b) {
  char buf[5];
  if (write(a, "hello", 5) != 5) die("write");
  if (read(b, buf, 5) != 5 || memcmp(buf, "hello", 5) != 0) die("read");
  if (write(b, "world", 5) != 5) die("write back");
  if (read(a, buf, 5) != 5 || memcmp(buf, "world", 5) != 0) die("read back");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "fsize") == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {64, 64};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) die("setrlimit");
  }
  int port;
  int l = host_listener(&port);
  int c = host_client(port);
  int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  if (a < 0) die("accept4");
  roundtrip(c, a);
  struct sigaction current;
  sigaction(SIGUSR1, NULL, &current);
  if (current.sa_handler != SIG_DFL) raise(SIGUSR1);
  sleep_ms(500);
  int d = dup(c);
  if (d < 0) die("dup");
  roundtrip(d, a);
  if (close(d) != 0) die("close");
  roundtrip(c, a);
  printf("{\"ok\":true,\"open\":[%d,%d,%d]}\n", l, c, a);
  return 0;
}
