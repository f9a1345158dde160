/* close() and dup2() called from a signal handler while other threads create and close
 * sockets (tests/reliability_signals.rs).
 *
 * Main opens K "victim" client sockets (connected to a listener) and K "target" fds on
 * /dev/null. Worker threads churn sockets. The main thread sends SIGUSR2 to the workers in
 * turn; handler call j does dup2(victim[j], target[j]) then close(victim[j]). So at the end
 * every target is a socket (a dup of its victim) and every victim is closed; the handler
 * often interrupts a worker in the middle of socket()/accept()/close(), including fdguard's
 * own bookkeeping for them.
 *
 * argv: workers K
 * Prints one JSON line: {"keep":[listeners...],"targets":[...],"victims":[...]}. */
#include "testlib.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#define MAXK 2000
static int victim[MAXK], target[MAXK], k_total;
static atomic_int next_job, handled, running;

static void on_usr2(int sig) {
  (void)sig;
  int saved = errno;
  int j = atomic_fetch_add(&next_job, 1);
  if (j < k_total) {
    if (dup2(victim[j], target[j]) != target[j]) _exit(97);
    if (close(victim[j]) != 0) _exit(96);
    atomic_fetch_add(&handled, 1);
  }
  errno = saved;
}

struct worker {
  int listener, port;
};

__attribute__((noinline)) int open_worker_listener(int *port) { return tcp_listener(port); }
__attribute__((noinline)) int open_victim(int port) { return tcp_connect(port); }

static void *worker_main(void *arg) {
  struct worker *w = arg;
  while (atomic_load(&running)) {
    int c = tcp_connect(w->port);
    struct linger lg = {1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int a = accept4(w->listener, NULL, NULL, SOCK_CLOEXEC);
    if (a < 0) die("accept4");
    int d = dup(a);
    close(d);
    close(a);
    close(c);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int workers = atoi(argv[1]);
  k_total = atoi(argv[2]);
  if (k_total > MAXK) return 2;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, NULL);

  int port;
  int l = tcp_listener(&port);
  for (int j = 0; j < k_total; j++) {
    victim[j] = open_victim(port);
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (a < 0) die("accept4");
    close(a);
    target[j] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (target[j] < 0) die("open");
  }
  struct worker *w = calloc(workers, sizeof *w);
  pthread_t *t = calloc(workers, sizeof *t);
  for (int i = 0; i < workers; i++) w[i].listener = open_worker_listener(&w[i].port);
  /* Only the workers take SIGUSR2: block it here before they start, unblock in them. */
  atomic_store(&running, 1);
  for (int i = 0; i < workers; i++) pthread_create(&t[i], NULL, worker_main, &w[i]);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, NULL);
  for (int j = 0; j < k_total; j++) {
    pthread_kill(t[j % workers], SIGUSR2);
    /* Wait (bounded) for this one to be handled, so every job runs in a worker. */
    for (int spin = 0; atomic_load(&handled) <= j && spin < 20000; spin++) {
      struct timespec ts = {0, 50000};
      nanosleep(&ts, NULL);
    }
  }
  atomic_store(&running, 0);
  for (int i = 0; i < workers; i++) pthread_join(t[i], NULL);
  if (atomic_load(&handled) != k_total) {
    fprintf(stderr, "test program: only %d of %d handler jobs ran\n", atomic_load(&handled), k_total);
    return 95;
  }
  printf("{\"keep\":[%d", l);
  for (int i = 0; i < workers; i++) printf(",%d", w[i].listener);
  printf("],\"targets\":[");
  for (int j = 0; j < k_total; j++) printf("%s%d", j ? "," : "", target[j]);
  printf("],\"victims\":[");
  for (int j = 0; j < k_total; j++) printf("%s%d", j ? "," : "", victim[j]);
  printf("]}\n");
  fflush(stdout);
  return 0;
}
