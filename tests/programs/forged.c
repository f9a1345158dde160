/* Names a peer or the host chose, meant to forge report lines (tests/forged_names.rs): a
 * thread named "\nSUMMARY:\e[2J", an abstract unix name and a unix path full of newlines,
 * ESC and BEL, a client connected to each. argv[1]: a directory for the unix path. Exits
 * normally (the exit report goes to stderr, as text). Prints {"ok":true,"fds":[...]}. */
#include "testlib.h"
#include <pthread.h>
#include <stddef.h>
#include <sys/un.h>

static int unix_pair(const char *name, size_t len, int *client) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, name, len);
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, alen) != 0 || listen(l, 4) != 0) die("unix listener");
  *client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*client < 0 || connect(*client, (struct sockaddr *)&a, alen) != 0) die("unix connect");
  return l;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (pthread_setname_np(pthread_self(), "\nSUMMARY:\x1b[2J") != 0) die("setname");
  static const char abstract[] = "\0evil\nSUMMARY: fdguard: 0 live sockets\x1b]0;pwned\x07";
  int c1, c2;
  int l1 = unix_pair(abstract, sizeof abstract - 1, &c1);
  char path[108];
  snprintf(path, sizeof path, "%s/s\n\x1b[31mred\x07", argv[1]);
  int l2 = unix_pair(path, strlen(path), &c2);
  printf("{\"ok\":true,\"fds\":[%d,%d,%d,%d]}\n", l1, c1, l2, c2);
  return 0;
}
