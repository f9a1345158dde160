/* Connections that never get connected, with known ground truth (issue 10, stuck_connecting):
 *   syn_sent   a non-blocking connect to a loopback listener whose accept queue is full
 *              (listen backlog 0, one connection already queued and never accepted): the
 *              kernel drops the SYN, the socket stays in SYN_SENT, retransmitting
 *   failed     a blocking connect refused (ECONNREFUSED) and a non-blocking one refused
 *              (EINPROGRESS, then the kernel's CLOSE): both fds kept, never closed
 *   healthy    the queued connection (ESTABLISHED from the client's side), a connection to
 *              another listener with its accepted end, both listeners, and a refused
 *              connect whose fd was closed properly (not listed at all)
 * Prints the ground truth as one JSON line, waits argv[1] ms (default 1500), asks for a
 * report and exits. Run with a short FDGUARD_CONNECT_MS and FDGUARD_GRACE_MS. */
#include "testlib.h"
#include <fcntl.h>

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

/* A port nobody listens on: bind one, note it, close it. */
static int closed_port(void) {
  int port;
  int l = tcp_listener(&port);
  close(l);
  return port;
}

__attribute__((noinline)) int connect_nonblocking(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct sockaddr_in a = loopback(port);
  if (connect(s, (struct sockaddr *)&a, sizeof a) == 0 || errno != EINPROGRESS) die("connect");
  return s;
}

__attribute__((noinline)) int connect_refused(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct sockaddr_in a = loopback(port);
  if (connect(s, (struct sockaddr *)&a, sizeof a) == 0 || errno != ECONNREFUSED) die("refused");
  return s;
}

int main(int argc, char **argv) {
  int wait = argc > 1 ? atoi(argv[1]) : 1500;
  int full_port;
  int full = tcp_listener(&full_port);
  if (listen(full, 0) != 0) die("listen 0");
  int queued = tcp_connect(full_port); /* fills the accept queue; never accepted */
  int syn_sent = connect_nonblocking(full_port);

  int nowhere = closed_port();
  int refused = connect_refused(nowhere);
  int refused_nb = connect_nonblocking(nowhere);
  close(connect_refused(nowhere)); /* handled properly */

  int port;
  int l = tcp_listener(&port);
  int c = tcp_connect(port);
  int s = accept(l, NULL, NULL);
  if (s < 0) die("accept");
  printf("{\"syn_sent\":[%d],\"failed\":[%d,%d],\"healthy\":[%d,%d,%d,%d,%d]}\n", syn_sent,
         refused, refused_nb, queued, c, s, full, l);
  fflush(stdout);
  sleep_ms(wait);
  if (request_report(1) != 0) return 98;
  return 0;
}
