/* At the fd limit (tests/fd_limit.rs), run under `ulimit -n 64`: a daemon whose stderr is
 * /dev/null opens sockets in open_until_full() until socket() fails with EMFILE, then asks for
 * a report (SIGUSR1) and exits. Prints {"ok":true,"opened":N,"first":fd,"errno":e}. */
#include "testlib.h"
#include <fcntl.h>

__attribute__((noinline)) int open_until_full(int *first) {
  int n = 0;
  for (;;) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return n;
    if (n++ == 0) *first = s;
  }
}

int main(void) {
  int devnull = open("/dev/null", O_WRONLY);
  if (devnull < 0 || dup2(devnull, 2) != 2) die("stderr to /dev/null");
  close(devnull);
  int first = -1;
  int opened = open_until_full(&first);
  int err = errno;
  if (request_report(1) != 0) return 1;
  printf("{\"ok\":true,\"opened\":%d,\"first\":%d,\"errno\":%d}\n", opened, first, err);
  return 0;
}
