/* fleet_leak [return|_exit|fork]: the sockets the metrics test counts, with known ground truth.
 *
 * Waits for one line on stdin ("go": the test first plants files in the metrics directory,
 * including a symlink at this process's file name), then opens on loopback:
 *   - a listener (LISTEN);
 *   - 3 client connections from leak_connection() whose accepted ends it closes at once: the
 *     clients sit in CLOSE_WAIT and are never closed (the leak);
 *   - 2 client connections from healthy_connection(), both ends kept (ESTABLISHED);
 *   - a unix socketpair (no TCP state).
 * Prints {"ok":true,"port":P,"leaked":[fds]} and waits for stdin to close (bounded: 60 s),
 * then leaves with `return 0` from main (atexit) or `_exit(0)`, sockets still open.
 * `fork` first forks a child that exit()s at once, then one that opens a socket (its own fdguard thread starts), waits
 * (bounded: 20 s) for its own metrics file in FDGUARD_METRICS_DIR, and exit()s; the parent
 * reaps it and prints {"child":PID,"child_wrote":0|1,"parent_file_kept":0|1} (the parent
 * waited for its own file before forking). */
#include "testlib.h"
#include <sys/select.h>
#include <sys/wait.h>

__attribute__((noinline)) static int leak_connection(int listener, int port) {
  int c = tcp_connect(port);
  int a = accept(listener, NULL, NULL);
  if (a < 0) die("accept");
  close(a); /* the peer hangs up; the client end is never closed */
  return c;
}

__attribute__((noinline)) static void healthy_connection(int listener, int port) {
  tcp_connect(port);
  if (accept(listener, NULL, NULL) < 0) die("accept");
}

int main(int argc, char **argv) {
  int abrupt = argc > 1 && strcmp(argv[1], "_exit") == 0;
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 2;
  int port;
  int l = tcp_listener(&port);
  int leaked[3];
  for (int i = 0; i < 3; i++) leaked[i] = leak_connection(l, port);
  for (int i = 0; i < 2; i++) healthy_connection(l, port);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) die("socketpair");
  printf("{\"ok\":true,\"port\":%d,\"leaked\":[%d,%d,%d]}\n", port, leaked[0], leaked[1],
         leaked[2]);
  fflush(stdout);
  if (argc > 1 && strcmp(argv[1], "fork") == 0) {
    const char *dir = getenv("FDGUARD_METRICS_DIR");
    char own[4096];
    snprintf(own, sizeof own, "%s/fdguard-%d.prom", dir ? dir : ".", (int)getpid());
    for (int i = 0; i < 2000 && access(own, F_OK) != 0; i++) sleep_ms(10);
    /* A child that exits before writing anything must not take the parent's file along. */
    pid_t quiet = fork();
    if (quiet < 0) die("fork");
    if (quiet == 0) exit(0);
    if (waitpid(quiet, NULL, 0) != quiet) die("waitpid");
    int kept_quiet = access(own, F_OK) == 0;
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      if (socket(AF_INET, SOCK_STREAM, 0) < 0) _exit(97);
      char path[4096];
      snprintf(path, sizeof path, "%s/fdguard-%d.prom", dir ? dir : ".", (int)getpid());
      for (int i = 0; i < 2000 && access(path, F_OK) != 0; i++) sleep_ms(10);
      exit(access(path, F_OK) == 0 ? 0 : 1);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child) die("waitpid");
    /* Checked at once: this process's next update would hide a removal by the child. */
    int kept = kept_quiet && access(own, F_OK) == 0;
    printf("{\"child\":%d,\"child_wrote\":%d,\"parent_file_kept\":%d}\n", (int)child,
           WIFEXITED(status) && WEXITSTATUS(status) == 0, kept);
    fflush(stdout);
  }
  /* Until stdin closes, at most 60 s. */
  for (int waited = 0; waited < 600; waited++) {
    struct timeval tv = {0, 100000};
    fd_set in;
    FD_ZERO(&in);
    FD_SET(0, &in);
    int r = select(1, &in, NULL, NULL, &tv);
    if (r > 0 && read(0, line, sizeof line) <= 0) break;
  }
  if (abrupt) _exit(0);
  return 0;
}
