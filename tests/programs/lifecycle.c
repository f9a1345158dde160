/* Opens a known set of sockets through distinctly named functions, closes some, asks for a
 * report, and prints its ground truth as one JSON line: which fds are open and which closed.
 * argv[1]: how to end: "return", "exit", "_exit", "_Exit". */
#include "testlib.h"
#include <sys/un.h>

__attribute__((noinline)) int open_listener(int *port) { return tcp_listener(port); }
__attribute__((noinline)) int open_client_alpha(int port) { return tcp_connect(port); }
__attribute__((noinline)) int open_client_beta(int port) { return tcp_connect(port); }
__attribute__((noinline)) int accept_connection(int l) {
  struct sockaddr_in peer;
  socklen_t len = sizeof peer;
  int fd = accept4(l, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
  if (fd < 0) die("accept4");
  return fd;
}
__attribute__((noinline)) void make_pair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
}
__attribute__((noinline)) int duplicate_alpha(int fd) { return dup(fd); }

int main(int argc, char **argv) {
  const char *how = argc > 1 ? argv[1] : "return";
  int port;
  int l = open_listener(&port);
  int alpha = open_client_alpha(port);
  int beta = open_client_beta(port);
  int acc1 = accept_connection(l);
  int acc2 = accept_connection(l);
  int sv[2];
  make_pair(sv);
  int alpha_dup = duplicate_alpha(alpha);
  /* Close some: beta, one accepted connection, one pair end. */
  close(beta);
  close(acc2);
  close(sv[1]);
  printf("{\"open\":[%d,%d,%d,%d,%d],\"closed\":[%d,%d,%d],"
         "\"listener\":%d,\"alpha\":%d,\"alpha_dup\":%d,\"accepted\":%d,\"pair\":%d,\"port\":%d}\n",
         l, alpha, acc1, sv[0], alpha_dup, beta, acc2, sv[1], l, alpha, alpha_dup, acc1, sv[0], port);
  fflush(stdout);
  if (request_report(1) != 0) return 98;
  if (strcmp(how, "exit") == 0) exit(0);
  if (strcmp(how, "_exit") == 0) _exit(0);
  if (strcmp(how, "_Exit") == 0) _Exit(0);
  return 0;
}
