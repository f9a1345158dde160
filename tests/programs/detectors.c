/* Known ground truth for every detector. argv[1] selects the scenario; the program prints
 * what it expects as one JSON line, asks for a report, then exits through argv[2]
 * ("return" by default, "_exit" for an abrupt exit).
 *   peer_closed  the server hangs up; the client keeps its fd past the grace period
 *   shutdown     the client calls shutdown(SHUT_WR) and never closes
 *   duplicate    three connections to backend A (one of them hung up on), one to backend B,
 *                and one earlier connection to A that was closed properly
 *   healthy      one idle long-lived connection, nothing else: no finding
 *   exit         a listener, a healthy connection and a hung-up one, left open at exit
 *   late_hangup  the server hangs up, the client reads the EOF and exits at once without
 *                closing (wget after an HTTP/1.0 response): open at exit, not a leak
 * Run with a short FDGUARD_GRACE_MS (e.g. 300) and FDGUARD_WATCH_MS (e.g. 50). */
#include "testlib.h"

__attribute__((noinline)) int start_backend(int *port) { return tcp_listener(port); }
__attribute__((noinline)) int connect_to_backend(int port) { return tcp_connect(port); }
__attribute__((noinline)) int connect_spare(int port) { return tcp_connect(port); }
__attribute__((noinline)) int serve_one(int l) {
  int fd = accept(l, NULL, NULL);
  if (fd < 0) die("accept");
  return fd;
}
__attribute__((noinline)) void stop_writing(int fd) {
  if (shutdown(fd, SHUT_WR) != 0) die("shutdown");
}

static int grace_ms(void) {
  const char *g = getenv("FDGUARD_GRACE_MS");
  return g ? atoi(g) : 60000;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "healthy";
  const char *how = argc > 2 ? argv[2] : "return";
  int port_a, port_b;
  int backend_a = start_backend(&port_a);
  int wait = grace_ms() + 400;
  if (strcmp(mode, "peer_closed") == 0) {
    int c = connect_to_backend(port_a);
    close(serve_one(backend_a)); /* the server hangs up */
    printf("{\"leak\":[%d],\"port\":%d}\n", c, port_a);
  } else if (strcmp(mode, "shutdown") == 0) {
    int c = connect_to_backend(port_a);
    int s = serve_one(backend_a);
    stop_writing(c);
    printf("{\"leak\":[%d],\"server_side\":%d,\"port\":%d}\n", c, s, port_a);
  } else if (strcmp(mode, "duplicate") == 0) {
    int backend_b = start_backend(&port_b);
    int earlier = connect_to_backend(port_a);
    close(serve_one(backend_a));
    close(earlier); /* a properly closed connection: shows up as recently closed */
    int c1 = connect_to_backend(port_a);
    int c2 = connect_spare(port_a);
    int c3 = connect_spare(port_a);
    int s1 = serve_one(backend_a), s2 = serve_one(backend_a), s3 = serve_one(backend_a);
    close(s3); /* c3's peer hangs up: the likely leak */
    int b = connect_to_backend(port_b);
    int sb = serve_one(backend_b);
    printf("{\"group\":[%d,%d,%d],\"suspect\":[%d],\"other\":%d,\"earlier\":%d,\"port\":%d,"
           "\"port_b\":%d,\"server_side\":[%d,%d,%d]}\n",
           c1, c2, c3, c3, b, earlier, port_a, port_b, s1, s2, sb);
  } else if (strcmp(mode, "healthy") == 0) {
    int c = connect_to_backend(port_a);
    int s = serve_one(backend_a);
    printf("{\"client\":%d,\"server_side\":%d,\"port\":%d}\n", c, s, port_a);
  } else if (strcmp(mode, "exit") == 0) {
    int healthy = connect_to_backend(port_a);
    int s = serve_one(backend_a);
    int gone = connect_spare(port_a);
    close(serve_one(backend_a));
    printf("{\"order\":[%d,%d,%d,%d],\"port\":%d}\n", gone, healthy, s, backend_a, port_a);
  } else if (strcmp(mode, "late_hangup") == 0) {
    int c = connect_to_backend(port_a);
    close(serve_one(backend_a));
    char buf[16];
    while (read(c, buf, sizeof buf) > 0) {
    }
    printf("{\"client\":%d,\"port\":%d}\n", c, port_a);
    fflush(stdout);
    return 0; /* exits a moment after the hang-up, the fd still open */
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  fflush(stdout);
  sleep_ms(wait);
  if (request_report(1) != 0) return 98;
  if (strcmp(how, "_exit") == 0) _exit(0);
  return 0;
}
