/* A library whose constructor installs a SIGUSR1 handler (tests/reliability_signals.rs). Linked
 * into rel_early_handler, so the dynamic loader runs its constructor before the program's
 * main; the test checks whether that is before or after fdguard's own constructor and that
 * the handler still runs either way it can. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static atomic_int early_calls;
static int found_other_handler = -1;

static void on_usr1(int sig, siginfo_t *info, void *ctx) {
  (void)sig;
  (void)info;
  (void)ctx;
  atomic_fetch_add(&early_calls, 1);
}

__attribute__((constructor)) static void install_early_handler(void) {
  struct sigaction old;
  sigaction(SIGUSR1, NULL, &old);
  found_other_handler = old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
}

int early_handler_calls(void) { return atomic_load(&early_calls); }
int early_handler_found_other(void) { return found_other_handler; }
