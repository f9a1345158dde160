/* Children of a process that inherited SIGCHLD = SIG_IGN are reaped by the kernel
 * (tests/signal_refusal.rs).
 *
 * argv[1]:
 *   "launch": sets SIGCHLD to SIG_IGN and execs itself as "child" — with LD_PRELOAD taken from
 *     REL_CHILD_PRELOAD when that is set, so only the child image loads fdguard, and it finds
 *     SIGCHLD ignored when it loads.
 *   "child": holds a socket, forks 3 children that exit at once, waits 200 ms, then asks
 *     waitpid for any child. Prints {"ok":true,"ignored":0|1,"waitpid":[rc,errno]}: with
 *     SIGCHLD ignored, waitpid finds no child (-1, ECHILD): the kernel reaped them. */
#include "testlib.h"
#include <sys/wait.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "launch") == 0) {
    signal(SIGCHLD, SIG_IGN);
    const char *preload = getenv("REL_CHILD_PRELOAD");
    if (preload) setenv("LD_PRELOAD", preload, 1);
    char *args[] = {argv[0], "child", NULL};
    execv(argv[0], args);
    die("execv");
  }
  int port;
  int l = tcp_listener(&port);
  (void)l;
  struct sigaction old;
  sigaction(SIGCHLD, NULL, &old);
  for (int i = 0; i < 3; i++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) _exit(0);
  }
  sleep_ms(200);
  int status;
  errno = 0;
  int rc = waitpid(-1, &status, WNOHANG);
  printf("{\"ok\":true,\"ignored\":%d,\"waitpid\":[%d,%d]}\n", old.sa_handler == SIG_IGN ? 1 : 0,
         rc < 0 ? -1 : (rc > 0 ? 1 : 0), rc < 0 ? errno : 0);
  return 0;
}
