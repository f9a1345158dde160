/* fork and exec under fdguard (tests/reliability_fork.rs, tests/reliability_fds.rs).
 *
 * argv[1]:
 *   "fork": opens a listener, a client and its accepted end, forks; the child opens its own
 *     socket in child_own_socket(), prints {"child":pid,"child_socket":fd} and leaves with
 *     _exit(0); the parent waits and prints {"parent":pid,"open":[...]}.
 *   "exec": opens a listener L and a client C connected to it, both WITHOUT close-on-exec,
 *     and the accepted end with it; forks, and the child execs this program again as
 *     "exec-child" (setting LD_PRELOAD from REL_CHILD_PRELOAD when that is set, so a parent
 *     running without fdguard can start a child with it). Prints
 *     {"parent":pid,"listener":L,"client":C,"port":p}.
 *   "exec-child": checks the inherited numbers are sockets, prints {"child":pid} and exits
 *     normally (the test sets FDGUARD_EXIT_REPORT=always: it created no socket itself). */
#include "testlib.h"
#include <fcntl.h>
#include <sys/wait.h>

__attribute__((noinline)) int child_own_socket(int port) { return tcp_connect(port); }
__attribute__((noinline)) int parent_client(int port) { return tcp_connect(port); }

static int listener_inheritable(int *port) {
  int l = tcp_listener(port);
  fcntl(l, F_SETFD, 0);
  return l;
}

static int client_inheritable(int port) {
  int c = parent_client(port);
  fcntl(c, F_SETFD, 0);
  return c;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "exec-child") == 0) {
    struct stat st;
    for (int i = 2; i < argc; i++)
      if (fstat(atoi(argv[i]), &st) != 0 || !S_ISSOCK(st.st_mode)) return 91;
    printf("{\"child\":%d}\n", (int)getpid());
    return 0;
  }
  int port;
  if (strcmp(argv[1], "fork") == 0) {
    int l = tcp_listener(&port);
    int c = parent_client(port);
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      int own = child_own_socket(port);
      printf("{\"child\":%d,\"child_socket\":%d}\n", (int)getpid(), own);
      fflush(stdout);
      _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 92;
    printf("{\"parent\":%d,\"open\":[%d,%d,%d]}\n", (int)getpid(), l, c, a);
    return 0;
  }
  if (strcmp(argv[1], "exec") == 0) {
    int l = listener_inheritable(&port);
    int c = client_inheritable(port);
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    (void)a;
    printf("{\"parent\":%d,\"listener\":%d,\"client\":%d,\"port\":%d}\n", (int)getpid(), l, c, port);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      const char *preload = getenv("REL_CHILD_PRELOAD");
      if (preload) setenv("LD_PRELOAD", preload, 1);
      char lbuf[16], cbuf[16];
      snprintf(lbuf, sizeof lbuf, "%d", l);
      snprintf(cbuf, sizeof cbuf, "%d", c);
      execl("/proc/self/exe", argv[0], "exec-child", lbuf, cbuf, (char *)NULL);
      _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 93;
    return WEXITSTATUS(status);
  }
  return 2;
}
