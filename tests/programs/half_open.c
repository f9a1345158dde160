/* A peer that vanishes without a FIN (issue 10, half_open), on loopback inside a private
 * network namespace (run as `unshare -rn sh -c 'ip link set lo up && exec half_open'`).
 *
 * The server listens on 127.0.0.2; one client connects from 127.0.0.3, another from
 * 127.0.0.1. Then every packet to 127.0.0.3 is held back in an HTB class of 8 bit/s (tc; the
 * kernel here has no netem, and HTB needs no action module): the server still receives the
 * first client's data but its ACKs never arrive, exactly what a client sees when the peer
 * host is gone. That client keeps writing; the kernel retransmits, with no ACK. The second
 * client keeps talking normally.
 *
 * Prints {"half_open":[fd],"healthy":[fds...]}, waits argv[1] ms (default 2000) while the
 * healthy client keeps exchanging data, asks for a report and exits. */
#include "testlib.h"
#include <netinet/tcp.h>

static struct sockaddr_in at(const char *ip, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = inet_addr(ip);
  a.sin_port = htons(port);
  return a;
}

__attribute__((noinline)) int connect_from(const char *ip, int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct sockaddr_in me = at(ip, 0);
  if (bind(s, (struct sockaddr *)&me, sizeof me) != 0) die("bind client");
  struct sockaddr_in server = at("127.0.0.2", port);
  if (connect(s, (struct sockaddr *)&server, sizeof server) != 0) die("connect");
  return s;
}

static struct tcp_info info(int fd) {
  struct tcp_info ti;
  socklen_t n = sizeof ti;
  memset(&ti, 0, sizeof ti);
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &n);
  return ti;
}

int main(int argc, char **argv) {
  int wait = argc > 1 ? atoi(argv[1]) : 2000;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = at("127.0.0.2", 0);
  if (bind(l, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  if (listen(l, 16) != 0) die("listen");
  socklen_t n = sizeof a;
  getsockname(l, (struct sockaddr *)&a, &n);
  int port = ntohs(a.sin_port);
  int gone = connect_from("127.0.0.3", port);
  int s1 = accept(l, NULL, NULL);
  int ok = connect_from("127.0.0.1", port);
  int s2 = accept(l, NULL, NULL);
  if (s1 < 0 || s2 < 0) die("accept");

  /* tc itself needs no shim: keep it out of the report directory. */
  if (system("exec 2>/dev/null; env -u LD_PRELOAD tc qdisc add dev lo root handle 1: htb default 20 && "
             "env -u LD_PRELOAD tc class add dev lo parent 1: classid 1:10 htb rate 8bit ceil "
             "8bit burst 1 cburst 1 && "
             "env -u LD_PRELOAD tc class add dev lo parent 1: classid 1:20 htb rate 10gbit && "
             "env -u LD_PRELOAD tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip "
             "dst 127.0.0.3/32 flowid 1:10") != 0)
    die("tc");
  /* The class's first packet may still pass (its bucket starts full): write until the kernel
   * is retransmitting with data unacknowledged. Bounded: 10 s. */
  for (int i = 0; i < 100; i++) {
    if (write(gone, "data", 4) != 4) die("write");
    sleep_ms(100);
    struct tcp_info ti = info(gone);
    if (ti.tcpi_unacked > 0 && ti.tcpi_retransmits > 0) break;
  }
  printf("{\"half_open\":[%d],\"healthy\":[%d,%d,%d,%d]}\n", gone, ok, s2, l, s1);
  fflush(stdout);
  char buf[64];
  for (int t = 0; t < wait; t += 50) {
    if (write(ok, "ping", 4) != 4 || read(s2, buf, sizeof buf) <= 0) die("healthy exchange");
    if (write(s2, "pong", 4) != 4 || read(ok, buf, sizeof buf) <= 0) die("healthy exchange");
    /* the server still reads what arrives */
    if (recv(s1, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno != EAGAIN) die("drain");
    sleep_ms(50);
  }
  if (request_report(1) != 0) return 98;
  return 0;
}
