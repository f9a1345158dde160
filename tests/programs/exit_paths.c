/* Exit paths that must never hang under fdguard (tests/exit_paths.rs). The process holds
 * sockets (except in "always-quiet"), then a timer fires while the main thread allocates and
 * frees in a tight loop, so the signal handler often interrupts malloc with its arena lock
 * held — the place where anything that allocates on the exiting thread deadlocks.
 *
 * argv[1]:
 *   "sigterm-exit": a SIGTERM handler calls exit(0) (the timer raises SIGTERM).
 *   "always-quiet": no socket at all; a SIGALRM handler calls _exit(7). Run with
 *     FDGUARD_EXIT_REPORT=always: the report is wanted although no socket ever existed.
 *   "fork-child": holds sockets, forks; the CHILD runs the malloc loop and its SIGALRM
 *     handler calls _exit(7); the parent waits for it and exits with its status (7).
 * Prints {"ok":true,"pid":P,"keep":[fds...]} before the loop (the child prints its own line). */
#include "testlib.h"
#include <sys/wait.h>

static void on_term(int sig) {
  (void)sig;
  exit(0);
}

static void on_alarm(int sig) {
  (void)sig;
  _exit(7);
}

/* Arms a one-shot timer that delivers `sig` in 20-60 ms (different in every run), so the
 * handler lands anywhere in the allocation loop, often inside malloc. */
static void arm(int sig, void (*handler)(int)) {
  signal(sig, handler);
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = sig;
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) die("timer_create");
  struct itimerspec at;
  memset(&at, 0, sizeof at);
  at.it_value.tv_nsec = (20 + getpid() % 40) * 1000000L;
  if (timer_settime(timer, 0, &at, NULL) != 0) die("timer_settime");
}

__attribute__((noreturn)) static void malloc_loop(void) {
  static void *keep[64];
  for (unsigned long i = 0;; i++) {
    int k = i % 64;
    free(keep[k]);
    keep[k] = malloc(16 + (i * 7919) % 4000);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "always-quiet") == 0) {
    printf("{\"ok\":true,\"pid\":%d,\"keep\":[]}\n", (int)getpid());
    fflush(stdout);
    arm(SIGALRM, on_alarm);
    malloc_loop();
  }
  int port;
  int l = tcp_listener(&port);
  int c = tcp_connect(port);
  printf("{\"ok\":true,\"pid\":%d,\"keep\":[%d,%d]}\n", (int)getpid(), l, c);
  fflush(stdout);
  if (strcmp(argv[1], "sigterm-exit") == 0) {
    arm(SIGTERM, on_term);
    malloc_loop();
  }
  if (strcmp(argv[1], "fork-child") == 0) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      printf("{\"child\":%d}\n", (int)getpid());
      fflush(stdout);
      arm(SIGALRM, on_alarm);
      malloc_loop();
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
  }
  return 2;
}
