/* fork() while fdguard is busy (tests/fork_report.rs): one thread writes reports back to back
 * (through the C API, which reads every label), another relabels sockets and sets
 * checkpoints, and the main thread forks again and again. Each child labels a socket, sets a
 * checkpoint, writes a report and exits with exit(0) (the test asks for an exit report), so it
 * takes every path where it could meet a lock held by a parent thread that does not exist in
 * the child. The parent waits for each child at most 10 s, then kills it and counts it hung.
 *
 * argv[1]: forks; argv[2]: labelled sockets. Prints {"ok":true,"forks":N,"hung":H}. */
#define FDGUARD_WEAK_SYMBOLS
#include "testlib.h"
#include <fcntl.h>
#include <fdguard.h>
#include <pthread.h>
#include <sys/wait.h>

static volatile int stop;
static int socks[4096];
static int nsocks;
static int devnull;

static void *reporter(void *arg) {
  (void)arg;
  while (!stop) fdguard_report_to_fd(devnull, FDGUARD_FORMAT_JSON);
  return NULL;
}

static void *labeller(void *arg) {
  (void)arg;
  char label[64];
  for (unsigned long round = 0; !stop; round++) {
    for (int i = 0; i < nsocks && !stop; i++) {
      snprintf(label, sizeof label, "backend %d, round %lu", i, round);
      fdguard_label(socks[i], label);
    }
    uint64_t id;
    fdguard_checkpoint(&id);
  }
  return NULL;
}

static int child(void) {
  uint64_t id;
  if (fdguard_label(socks[0], "child") != FDGUARD_RESULT_OK) return 3;
  if (fdguard_checkpoint(&id) != FDGUARD_RESULT_OK) return 4;
  size_t n;
  if (fdguard_open_since(id, &n) != FDGUARD_RESULT_OK) return 5;
  if (fdguard_report_to_fd(devnull, FDGUARD_FORMAT_TEXT) != FDGUARD_RESULT_OK) return 6;
  exit(0);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  if (!fdguard_label) {
    printf("{\"ok\":false,\"why\":\"not preloaded\"}\n");
    return 0;
  }
  int forks = atoi(argv[1]);
  nsocks = atoi(argv[2]);
  if (nsocks > 4096) nsocks = 4096;
  devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  for (int i = 0; i < nsocks; i++) {
    socks[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (socks[i] < 0) die("socket");
    fdguard_label(socks[i], "initial");
  }
  pthread_t r, l;
  pthread_create(&r, NULL, reporter, NULL);
  pthread_create(&l, NULL, labeller, NULL);
  int hung = 0, failed = 0;
  for (int i = 0; i < forks; i++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) _exit(child());
    int status = 0, done = 0;
    for (int ms = 0; ms < 10000 && !done; ms++) {
      if (waitpid(pid, &status, WNOHANG) == pid) done = 1;
      else sleep_ms(1);
    }
    if (!done) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      hung++;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failed++;
    }
  }
  stop = 1;
  pthread_join(r, NULL);
  pthread_join(l, NULL);
  printf("{\"ok\":true,\"forks\":%d,\"hung\":%d,\"failed\":%d}\n", forks, hung, failed);
  return 0;
}
