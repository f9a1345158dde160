/* Sockets from a thread with the smallest stack glibc accepts (tests/stack_budget.rs).
 *
 * argv[1]:
 *   "work": a thread whose stack is 16 KiB (or the next 4 KiB step glibc accepts: its static
 *     TLS lives there too) creates the process's FIRST socket (so fdguard's own start-up runs
 *     on that small stack), a listener, a connected client in small_stack_client(), the
 *     accepted end, a socketpair, and one more socket from a signal handler running on that
 *     same stack. Prints {"ok":true,"stack":N,"keep":[fds...],"client":C}.
 *     argv[2] "exit": the small thread then calls exit(0) itself (the exit report must not be
 *     built on it); "return": it returns and main returns.
 *   "measure": on a 1 MiB thread whose stack is painted, measures the bytes of stack that a
 *     socket()+close() and a connect()+accept() use (after one warm-up of each, so lazy
 *     binding is not counted). Prints {"ok":true,"socket":B,"connect":B}. */
#include "testlib.h"
#include <pthread.h>
#include <stdint.h>

static int listener_port;
static int handler_socket = -1;
static int keep[8];
static int nkeep;
static size_t stack_size;

static void on_usr2(int sig) {
  (void)sig;
  handler_socket = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

__attribute__((noinline)) int small_stack_client(int port) { return tcp_connect(port); }

static void *work(void *arg) {
  const char *how = arg;
  int first = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (first < 0) die("socket");
  int l = tcp_listener(&listener_port);
  int c = small_stack_client(listener_port);
  int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  if (a < 0) die("accept4");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  signal(SIGUSR2, on_usr2);
  raise(SIGUSR2);
  if (handler_socket < 0) die("socket in handler");
  int fds[] = {first, l, c, a, sv[0], sv[1], handler_socket};
  for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++) keep[nkeep++] = fds[i];
  printf("{\"ok\":true,\"stack\":%zu,\"client\":%d,\"keep\":[", stack_size, c);
  for (int i = 0; i < nkeep; i++) printf("%s%d", i ? "," : "", keep[i]);
  printf("]}\n");
  fflush(stdout);
  if (strcmp(how, "exit") == 0) exit(0);
  return NULL;
}

#define PAINT (256 * 1024)
static uintptr_t painted_top;

__attribute__((noinline)) static void paint(void) {
  char buf[PAINT];
  memset(buf, 0xA5, sizeof buf);
  __asm__ volatile("" : : "r"(buf) : "memory");
  painted_top = (uintptr_t)buf + sizeof buf;
}

__attribute__((noinline)) static size_t touched(void) {
  const char *top = (const char *)painted_top;
  const char *p = top - PAINT;
  while (p < top && (unsigned char)*p == 0xA5) p++;
  return (size_t)(top - p);
}

static size_t measured_socket, measured_connect;

__attribute__((noinline)) static void one_socket(void) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  close(s);
}

__attribute__((noinline)) static void one_connection(int l, int port) {
  int c = tcp_connect(port);
  int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  if (a < 0) die("accept4");
  close(a);
  close(c);
}

static void *measure(void *arg) {
  (void)arg;
  int port;
  int l = tcp_listener(&port);
  one_socket();
  one_connection(l, port);
  paint();
  size_t base = touched();
  one_socket();
  measured_socket = touched() - base;
  paint();
  base = touched();
  one_connection(l, port);
  measured_connect = touched() - base;
  close(l);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_t t;
  if (strcmp(argv[1], "measure") == 0) {
    pthread_attr_setstacksize(&attr, 1 << 20);
    if (pthread_create(&t, &attr, measure, NULL) != 0) die("pthread_create");
    pthread_join(t, NULL);
    printf("{\"ok\":true,\"socket\":%zu,\"connect\":%zu}\n", measured_socket, measured_connect);
    return 0;
  }
  if (argc < 3) return 2;
  int rc = EINVAL;
  for (stack_size = 16384; stack_size <= 32768 && rc == EINVAL; stack_size += 4096) {
    pthread_attr_setstacksize(&attr, stack_size);
    rc = pthread_create(&t, &attr, work, argv[2]);
    if (rc == 0) break;
  }
  if (rc != 0) {
    errno = rc;
    die("pthread_create");
  }
  pthread_join(t, NULL);
  return 0;
}
