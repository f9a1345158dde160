/* Bad pointers and changing peers (tests/peers.rs).
 *
 * argv[1]:
 *   "efault": connect()/accept()/accept4() with unreadable addresses and lengths, bad fds and
 *     refused lengths; prints {"ok":true,"results":[[rc,errno],...]} (compared with a run
 *     without fdguard: identical, and the process survives).
 *   "peers": sockets whose peer changes after the first connect(), and an accept() with a
 *     short address buffer; asks for a report (SIGUSR1) and prints what each peer must be:
 *     {"ok":true,"reconnected":[fd,"ip:port"],"udp":[fd,"ip:port"],"unspec":fd,
 *      "short":[fd,"ip:port"],"inprogress":[fd,"ip:port"]}. */
#include "testlib.h"
#include <fcntl.h>
#include <sys/mman.h>

static int results[64][2];
static int nresults;

static void record(int rc) {
  results[nresults][0] = rc < 0 ? -1 : 0;
  results[nresults][1] = rc < 0 ? errno : 0;
  nresults++;
  if (rc >= 0 && rc > 2) close(rc);
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

/* A client connected to `port` and not yet accepted: the listener has a pending connection. */
static int pending(int port) { return tcp_connect(port); }

static int efault(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *none = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *gone = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (none == MAP_FAILED || gone == MAP_FAILED) die("mmap");
  munmap(gone, page);
  int port;
  int l = tcp_listener(&port);
  fcntl(l, F_SETFL, O_NONBLOCK);
  struct sockaddr_in ok = loopback(port);
  void *bad[] = {(void *)16, none, gone};
  for (unsigned i = 0; i < 3; i++) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    record(connect(s, bad[i], sizeof ok));
    record(connect(s, bad[i], 0));
    record(connect(s, bad[i], 4096));
    record(connect(999, bad[i], sizeof ok));
    close(s);
    /* Nothing pending: EAGAIN comes before the address is touched. */
    record(accept(l, bad[i], bad[i]));
    record(accept4(l, bad[i], bad[i], SOCK_CLOEXEC));
    /* A pending connection: the kernel fails with EFAULT (and drops it). */
    int c = pending(port);
    record(accept(l, bad[i], bad[i]));
    close(c);
    c = pending(port);
    socklen_t len = sizeof ok;
    record(accept4(l, bad[i], &len, SOCK_CLOEXEC));
    close(c);
    c = pending(port);
    struct sockaddr_in peer;
    record(accept(l, (struct sockaddr *)&peer, bad[i]));
    close(c);
  }
  /* A connect the kernel refuses after reading the address (a closed port). */
  int closed_port;
  int gone_listener = tcp_listener(&closed_port);
  close(gone_listener);
  struct sockaddr_in refused = loopback(closed_port);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  record(connect(s, (struct sockaddr *)&refused, sizeof refused));
  close(s);
  printf("{\"ok\":true,\"results\":[");
  for (int i = 0; i < nresults; i++) printf("%s[%d,%d]", i ? "," : "", results[i][0], results[i][1]);
  printf("]}\n");
  return 0;
}

static const char *name(const struct sockaddr_in *a) {
  static char buf[8][64];
  static int n;
  char *out = buf[n++ % 8];
  snprintf(out, 64, "%s:%d", inet_ntoa(a->sin_addr), ntohs(a->sin_port));
  return out;
}

static int peers(void) {
  int pa, pb;
  int la = tcp_listener(&pa);
  int lb = tcp_listener(&pb);
  close(la); /* port pa now refuses */
  struct sockaddr_in a = loopback(pa), b = loopback(pb);
  /* TCP: refused, then connected elsewhere. */
  int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(t, (struct sockaddr *)&a, sizeof a) == 0 || errno != ECONNREFUSED) die("refused");
  if (connect(t, (struct sockaddr *)&b, sizeof b) != 0) die("reconnect");
  if (accept4(lb, NULL, NULL, SOCK_CLOEXEC) < 0) die("accept4"); /* t's other end */
  /* UDP: connected to one port, then to another. */
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in u1 = loopback(40001), u2 = loopback(40002);
  if (connect(u, (struct sockaddr *)&u1, sizeof u1) != 0) die("udp connect");
  if (connect(u, (struct sockaddr *)&u2, sizeof u2) != 0) die("udp reconnect");
  /* UDP: connected, then dissolved with AF_UNSPEC. */
  int d = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (connect(d, (struct sockaddr *)&u1, sizeof u1) != 0) die("udp connect");
  struct sockaddr unspec;
  memset(&unspec, 0, sizeof unspec);
  unspec.sa_family = AF_UNSPEC;
  if (connect(d, &unspec, sizeof unspec) != 0) die("AF_UNSPEC");
  /* accept() with a buffer too short for the address. */
  int c = tcp_connect(pb);
  struct sockaddr_in local;
  socklen_t n = sizeof local;
  getsockname(c, (struct sockaddr *)&local, &n);
  char tiny[4];
  socklen_t tiny_len = sizeof tiny;
  int s = accept4(lb, (struct sockaddr *)tiny, &tiny_len, SOCK_CLOEXEC);
  if (s < 0) die("accept4");
  /* A non-blocking connect still in progress shows where it is going. */
  int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in far = loopback(pb);
  int rc = connect(nb, (struct sockaddr *)&far, sizeof far);
  if (rc != 0 && errno != EINPROGRESS) die("nonblocking connect");
  if (request_report(1) != 0) return 1;
  printf("{\"ok\":true,\"reconnected\":[%d,\"%s\"],\"udp\":[%d,\"%s\"],\"unspec\":%d,"
         "\"short\":[%d,\"%s\"],\"inprogress\":[%d,\"%s\"]}\n",
         t, name(&b), u, name(&u2), d, s, name(&local), nb, name(&far));
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "efault") == 0) return efault();
  if (strcmp(argv[1], "peers") == 0) return peers();
  return 2;
}
