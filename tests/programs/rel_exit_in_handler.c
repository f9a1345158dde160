/* _exit() from a signal handler (tests/reliability_signals.rs): the host holds a socket, arms
 * a 20 ms timer whose handler calls _exit(7), and meanwhile either sleeps or allocates in a
 * tight loop — so the handler often interrupts malloc with its arena lock held, the classic
 * place where anything that allocates inside _exit() deadlocks.
 * argv[1]: "sleep" or "malloc". */
#include "testlib.h"
#include <sys/time.h>

static void on_alarm(int sig) {
  (void)sig;
  _exit(7);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int port;
  int l = tcp_listener(&port);
  int c = tcp_connect(port);
  (void)l;
  (void)c;
  signal(SIGALRM, on_alarm);
  struct itimerval it = {{0, 0}, {0, 20000}};
  setitimer(ITIMER_REAL, &it, NULL);
  if (strcmp(argv[1], "sleep") == 0) {
    for (;;) pause();
  }
  static void *keep[64];
  for (unsigned long i = 0;; i++) {
    int k = i % 64;
    free(keep[k]);
    keep[k] = malloc(16 + (i * 7919) % 4000);
  }
}
