/* Calls every interposed function on its success and error paths and prints
 * "<case> rc=<rc> errno=<errno>" lines. Run with and without fdguard: the outputs must be
 * identical. errno is preset to a marker before each call so a clobbered errno on a success
 * path shows up too. */
#include "testlib.h"
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/un.h>

#define MARK 4242
#define CASE(name, expr)                                   \
  do {                                                     \
    errno = MARK;                                          \
    long rc_ = (long)(expr);                               \
    int e_ = errno;                                        \
    printf("%-28s rc=%s errno=%d\n", name, rc_ < 0 ? "-1" : "ok", e_); \
  } while (0)

static void on_alarm(int sig) { (void)sig; }

int main(void) {
  int port;
  int l = tcp_listener(&port);
  CASE("socket bad domain", socket(12345, SOCK_STREAM, 0));
  CASE("socket bad type", socket(AF_INET, 12345, 0));
  int s = socket(AF_INET, SOCK_STREAM, 0);
  CASE("socket ok", s);
  CASE("socketpair inet", socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){0, 0}));
  int sv[2];
  CASE("socketpair ok", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  CASE("connect bad fd", connect(-1, NULL, 0));
  struct sockaddr_in closed_port = {0};
  closed_port.sin_family = AF_INET;
  closed_port.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  closed_port.sin_port = htons(1);
  CASE("connect refused", connect(s, (struct sockaddr *)&closed_port, sizeof closed_port));
  struct sockaddr_un missing = {0};
  missing.sun_family = AF_UNIX;
  strcpy(missing.sun_path, "/nonexistent/fdguard-test.sock");
  int u = socket(AF_UNIX, SOCK_STREAM, 0);
  CASE("connect unix enoent", connect(u, (struct sockaddr *)&missing, sizeof missing));
  CASE("connect short addr", connect(u, (struct sockaddr *)&missing, 1));
  int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in to_listener = closed_port;
  to_listener.sin_port = htons(port);
  CASE("connect einprogress", connect(nb, (struct sockaddr *)&to_listener, sizeof to_listener));
  int c = tcp_connect(port);
  CASE("connect ok (was)", c);
  CASE("accept not listening", accept(c, NULL, NULL));
  CASE("accept bad fd", accept(-1, NULL, NULL));
  CASE("accept4 bad flags", accept4(l, NULL, NULL, 0x7fff0000));
  CASE("accept ok", accept(l, NULL, NULL));
  CASE("accept ok again", accept(l, NULL, NULL));
  CASE("listen bad fd", listen(-7, 1));
  CASE("shutdown not connected", shutdown(u, SHUT_RDWR));
  CASE("shutdown bad how", shutdown(c, 77));
  CASE("shutdown ok", shutdown(c, SHUT_WR));
  CASE("dup bad", dup(-1));
  CASE("dup ok", dup(c));
  CASE("dup2 bad new", dup2(c, -1));
  CASE("dup2 same", dup2(c, c));
  CASE("dup2 ok", dup2(c, 200));
  CASE("dup3 same", dup3(c, c, 0));
  CASE("dup3 bad flags", dup3(c, 201, 12345));
  CASE("dup3 ok", dup3(c, 201, O_CLOEXEC));
  CASE("fcntl dupfd bad", fcntl(c, F_DUPFD, -5));
  CASE("fcntl dupfd ok", fcntl(c, F_DUPFD, 300));
  CASE("fcntl dupfd_cloexec ok", fcntl(c, F_DUPFD_CLOEXEC, 310));
  CASE("fcntl getfl", fcntl(c, F_GETFL));
  CASE("fcntl bad fd", fcntl(-1, F_GETFD));
  CASE("close bad", close(-1));
  CASE("close never opened", close(9999));
  CASE("close ok", close(200));
  CASE("close twice", close(200));
  CASE("close_range bad order", close_range(10, 3, 0));
  CASE("close_range bad flags", close_range(300, 310, 0x40000000));
  CASE("close_range ok", close_range(300, 310, 0));
  /* EINTR: a blocking accept interrupted by a handler without SA_RESTART. */
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 0}, {0, 50000}};
  setitimer(ITIMER_REAL, &it, NULL);
  CASE("accept eintr", accept(l, NULL, NULL));
  /* EMFILE: lower the soft limit and exhaust it. */
  struct rlimit old, low;
  getrlimit(RLIMIT_NOFILE, &old);
  low = old;
  low.rlim_cur = 64;
  setrlimit(RLIMIT_NOFILE, &low);
  int last = 0, n = 0;
  while (n < 100) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) break;
    last = fd;
    n++;
  }
  CASE("socket emfile", socket(AF_INET, SOCK_STREAM, 0));
  CASE("dup emfile", dup(c));
  CASE("accept emfile", accept(l, NULL, NULL));
  close_range(3 + 20, (unsigned)last, 0);
  setrlimit(RLIMIT_NOFILE, &old);
  CASE("closefrom (void)", (closefrom(400), 0));
  return 0;
}
