/* A storm of report signals while the program churns sockets (tests/reliability_signals.rs).
 *
 * Worker threads open, connect, accept and close sockets in a loop; a sender thread sends
 * `signals` SIGUSR1 to the process, one every `interval_us` microseconds. After `run_ms` the
 * workers stop and main returns at once, while the sender may still be sending: the exit
 * report races with signal reports. Each worker keeps one socket open through
 * keep_one_socket() so no report is empty.
 *
 * argv: workers signals interval_us run_ms
 * Prints one JSON line: {"keep":[...]}. */
#include "testlib.h"
#include <pthread.h>
#include <stdatomic.h>

static atomic_int running;
static int signals, interval_us;

static void *sender(void *arg) {
  (void)arg;
  for (int i = 0; i < signals; i++) {
    kill(getpid(), SIGUSR1);
    struct timespec ts = {0, interval_us * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  return NULL;
}

struct worker {
  int listener, port, kept;
};

__attribute__((noinline)) int keep_one_socket(int port) { return tcp_connect(port); }

static void *worker_main(void *arg) {
  struct worker *w = arg;
  while (atomic_load(&running)) {
    int c = tcp_connect(w->port);
    struct linger lg = {1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int a;
    do {
      a = accept4(w->listener, NULL, NULL, SOCK_CLOEXEC);
    } while (a < 0 && errno == EINTR);
    if (a < 0) die("accept4");
    close(a);
    close(c);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) return 2;
  int workers = atoi(argv[1]);
  signals = atoi(argv[2]);
  interval_us = atoi(argv[3]);
  int run_ms = atoi(argv[4]);
  struct worker *w = calloc(workers, sizeof *w);
  pthread_t *t = calloc(workers, sizeof *t);
  for (int i = 0; i < workers; i++) {
    w[i].listener = tcp_listener(&w[i].port);
    w[i].kept = keep_one_socket(w[i].port); /* before any signal: every report lists it */
  }
  atomic_store(&running, 1);
  for (int i = 0; i < workers; i++) pthread_create(&t[i], NULL, worker_main, &w[i]);
  pthread_t s;
  pthread_create(&s, NULL, sender, NULL);
  sleep_ms(run_ms);
  atomic_store(&running, 0);
  for (int i = 0; i < workers; i++) pthread_join(t[i], NULL);
  printf("{\"keep\":[");
  for (int i = 0; i < workers; i++) printf("%s%d,%d", i ? "," : "", w[i].listener, w[i].kept);
  printf("]}\n");
  fflush(stdout);
  return 0;
}
