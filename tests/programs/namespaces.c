/* A sandbox-like host under fdguard (tests/namespaces.rs): it opens IPC sockets first, then
 * re-enters its mount namespace and unshares a user namespace — both refused by the kernel to
 * a multi-threaded process — with a socket created between the two and one after.
 *
 * argv[1]:
 *   "single": the host has no thread of its own; both calls must succeed as without fdguard.
 *   "threaded": the host starts a thread of its own first; both calls fail with EINVAL, as
 *     without fdguard.
 * Prints {"ok":true,"setns":[rc,errno],"unshare":[rc,errno],"threads":[A,B,C,D],
 * "keep":[fds...]}: the thread counts right after setns, after the socket that follows it,
 * right after unshare, and after the last socket. */
#include "testlib.h"
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>

static int threads(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) die("opendir");
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static void *idle(void *arg) {
  (void)arg;
  pause();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "threaded") == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, idle, NULL) != 0) die("pthread_create");
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  int port;
  int l = tcp_listener(&port);
  int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (mnt < 0) die("open ns");
  errno = 0;
  int s = setns(mnt, CLONE_NEWNS);
  int s_errno = s ? errno : 0;
  int after_setns = threads();
  close(mnt);
  int between = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int before_unshare = threads();
  errno = 0;
  int u = unshare(CLONE_NEWUSER);
  int u_errno = u ? errno : 0;
  int after_unshare = threads();
  int c = tcp_connect(port);
  int end = threads();
  printf("{\"ok\":true,\"setns\":[%d,%d],\"unshare\":[%d,%d],\"threads\":[%d,%d,%d,%d],"
         "\"keep\":[%d,%d,%d,%d,%d]}\n",
         s, s_errno, u, u_errno, after_setns, before_unshare, after_unshare, end, sv[0], sv[1],
         l, between, c);
  fflush(stdout);
  exit(0);
}
