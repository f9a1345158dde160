/* vfork children that close the parent's sockets before exec (tests/reliability_fork.rs).
 *
 * A vfork child runs on its parent's memory — fdguard's table included — until it execs, so
 * its close()/close_range()/dup2() calls must not touch the parent's records. The parent keeps
 * a listener, a client and the accepted end (all inheritable), then 50 times: vfork; the child
 * closes the client, dup2()s the listener onto the accepted end's number, close_range()s
 * everything from 3, and execs /bin/true (every 10th time a missing program instead, so the
 * child leaves through _exit(127)). Prints {"open":[...]}; the report must still list them. */
#define _GNU_SOURCE
#include "testlib.h"
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <sys/wait.h>

__attribute__((noinline)) int vfork_parent_listener(int *port) { return tcp_listener(port); }
__attribute__((noinline)) int vfork_parent_client(int port) { return tcp_connect(port); }

int main(void) {
  int port;
  int l = vfork_parent_listener(&port);
  int c = vfork_parent_client(port);
  int a = accept(l, NULL, NULL);
  fcntl(l, F_SETFD, 0);
  fcntl(c, F_SETFD, 0);
  for (int i = 0; i < 50; i++) {
    pid_t pid = vfork();
    if (pid < 0) die("vfork");
    if (pid == 0) {
      close(c);
      dup2(l, a);
      close_range(3, ~0U, 0);
      char *args[] = {"true", NULL};
      execv(i % 10 == 9 ? "/nonexistent/fdguard-test" : "/bin/true", args);
      _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 92;
    if (WEXITSTATUS(status) != (i % 10 == 9 ? 127 : 0)) return 93;
  }
  struct stat st;
  if (fstat(c, &st) != 0 || fstat(a, &st) != 0 || fstat(l, &st) != 0) return 94;
  printf("{\"open\":[%d,%d,%d],\"listener\":%d,\"client\":%d,\"accepted\":%d}\n", l, c, a, l, c, a);
  return 0;
}
