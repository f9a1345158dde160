/* Workloads 2 and 3: the full loopback lifecycle: socket, connect, accept on the other side,
 * close both. argv: OPS_PER_THREAD THREADS. Each thread has its own listener (created before
 * the clock starts). Prints {"ns_per_op": wall time / total lifecycles, ...}. */
#include "bench.h"
#include <pthread.h>

struct worker {
  pthread_t thread;
  long ops;
  int listener;
  struct sockaddr_in addr;
};

static pthread_barrier_t start;

static void lifecycle(struct worker *w) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (c < 0) die("socket");
  if (connect(c, (struct sockaddr *)&w->addr, sizeof w->addr) != 0) die("connect");
  int a = accept(w->listener, NULL, NULL);
  if (a < 0) die("accept");
  /* The accepting side closes first, as a server ending a connection would: the TIME_WAIT
   * then belongs to the server side and never holds a client port. (Client-first closes
   * leave tens of thousands of client ports in TIME_WAIT across rounds, and connect() slows
   * five-fold searching for a free port.) */
  close(a);
  close(c);
}

static void *run(void *arg) {
  struct worker *w = arg;
  for (long i = 0; i < w->ops / 20 + 1; i++) lifecycle(w); /* warm-up */
  pthread_barrier_wait(&start);
  for (long i = 0; i < w->ops; i++) lifecycle(w);
  return NULL;
}

int main(int argc, char **argv) {
  long ops = arg_long(argc, argv, 1, 10000);
  long threads = arg_long(argc, argv, 2, 1);
  if (threads < 1 || threads > 64) {
    fprintf(stderr, "1..64 threads\n");
    return 2;
  }
  struct worker *workers = calloc((size_t)threads, sizeof *workers);
  if (!workers) die("calloc");
  pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
  for (long t = 0; t < threads; t++) {
    workers[t].ops = ops;
    workers[t].listener = loopback_listener(&workers[t].addr, 128);
    if (pthread_create(&workers[t].thread, NULL, run, &workers[t]) != 0) die("pthread_create");
  }
  pthread_barrier_wait(&start);
  double t0 = now_ns();
  for (long t = 0; t < threads; t++) pthread_join(workers[t].thread, NULL);
  double elapsed = now_ns() - t0;
  printf("{\"ns_per_op\": %.1f, \"ops\": %ld, \"threads\": %ld}\n",
         elapsed / (double)(ops * threads), ops * threads, threads);
  return 0;
}
