/* Exact accounting under concurrency (tests/reliability_concurrency.rs).
 *
 * N threads each run C cycles of: socket + connect to the thread's own listener, accept4 on
 * the other end, dup, dup2 onto a per-thread fd number, fcntl(F_DUPFD_CLOEXEC), then close
 * everything in a varying order (every fd number is reused at once by the other threads: the
 * kernel hands out the lowest free number). Every 16th cycle adds a socketpair. Closes use
 * SO_LINGER 0 (RST) so 160,000 loopback connections leave no TIME_WAIT behind.
 *
 * argv: threads cycles leak_every signal_ms
 *   leak_every > 0: every leak_every-th cycle also opens a client through leak_client_socket()
 *   and keeps it (its accepted end is closed). signal_ms > 0: a reporter thread raises
 *   SIGUSR1 at that period while the threads churn (reports race with the churn).
 * Prints one JSON line: {"listeners":[...],"leaked":[...]} (ground truth at exit). */
#include "testlib.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

static int cycles, leak_every, signal_ms;
static atomic_int running;

struct worker {
  int index, listener, port;
  int leaked[4096];
  int nleaked;
};

__attribute__((noinline)) int open_thread_listener(int *port) { return tcp_listener(port); }

__attribute__((noinline)) int leak_client_socket(int port) { return tcp_connect(port); }

__attribute__((noinline)) static int churn_client_socket(int port) { return tcp_connect(port); }

static void abortive(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static void xclose(int fd) {
  if (close(fd) != 0) die("close");
}

static int accept_one(int l) {
  struct sockaddr_in peer;
  socklen_t len = sizeof peer;
  int a = accept4(l, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
  if (a < 0) die("accept4");
  return a;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  int dup2_target = 900 + w->index; /* private number: dup2 replaces only our own fd */
  for (int i = 0; i < cycles; i++) {
    int c = churn_client_socket(w->port);
    int a = accept_one(w->listener);
    abortive(c);
    abortive(a);
    int d = dup(c);
    if (d < 0) die("dup");
    if (dup2(a, dup2_target) != dup2_target) die("dup2");
    int f = fcntl(c, F_DUPFD_CLOEXEC, 0);
    if (f < 0) die("fcntl");
    switch (i % 3) { /* vary the order so numbers come back in different orders */
    case 0: xclose(c); xclose(d); xclose(a); xclose(f); xclose(dup2_target); break;
    case 1: xclose(dup2_target); xclose(f); xclose(a); xclose(d); xclose(c); break;
    default: xclose(a); xclose(c); xclose(dup2_target); xclose(d); xclose(f); break;
    }
    if (i % 16 == 5) {
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
      xclose(sv[1]);
      xclose(sv[0]);
    }
    if (leak_every > 0 && i % leak_every == leak_every - 1 && w->nleaked < 4096) {
      int k = leak_client_socket(w->port);
      int ka = accept_one(w->listener);
      xclose(ka);
      w->leaked[w->nleaked++] = k;
    }
  }
  return NULL;
}

static void *signaller(void *arg) {
  (void)arg;
  while (atomic_load(&running)) {
    kill(getpid(), SIGUSR1);
    sleep_ms(signal_ms);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) return 2;
  int threads = atoi(argv[1]);
  cycles = atoi(argv[2]);
  leak_every = atoi(argv[3]);
  signal_ms = atoi(argv[4]);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  struct worker *w = calloc(threads, sizeof *w);
  pthread_t *t = calloc(threads, sizeof *t);
  for (int i = 0; i < threads; i++) {
    w[i].index = i;
    w[i].listener = open_thread_listener(&w[i].port);
  }
  atomic_store(&running, 1);
  pthread_t sig;
  if (signal_ms > 0) pthread_create(&sig, NULL, signaller, NULL);
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker_main, &w[i]);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  atomic_store(&running, 0);
  if (signal_ms > 0) pthread_join(sig, NULL);
  printf("{\"listeners\":[");
  for (int i = 0; i < threads; i++) printf("%s%d", i ? "," : "", w[i].listener);
  printf("],\"leaked\":[");
  int first = 1;
  for (int i = 0; i < threads; i++)
    for (int k = 0; k < w[i].nleaked; k++) {
      printf("%s%d", first ? "" : ",", w[i].leaked[k]);
      first = 0;
    }
  printf("]}\n");
  fflush(stdout);
  return 0;
}
