/* The report signal and a host that has its own plans for it (tests/reliability_signals.rs).
 *
 * argv[1]:
 *   "takeover": after load, the host installs its own SIGUSR1 handler, raises SIGUSR1 five
 *     times and checks its handler ran five times; then asks for a report through the C API
 *     (found with dlsym, the weak-symbol way) at argv[2]. Exits normally (exit report).
 *   "ignored": started with SIGUSR1 ignored (SIG_IGN inherited across exec); raises SIGUSR1
 *     and waits for the report it asked for.
 * Both keep a connected socket opened by open_kept_socket() and check it still works.
 * Prints one JSON line: {"kept":fd,"handled":n,"api":rc}. */
#include "testlib.h"
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>

static atomic_int handled;
static void on_usr1(int sig) {
  (void)sig;
  atomic_fetch_add(&handled, 1);
}

__attribute__((noinline)) int open_kept_socket(int port) { return tcp_connect(port); }

static void check_works(int c, int l) {
  int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  if (a < 0) die("accept4");
  if (write(c, "ping", 4) != 4) die("write");
  char buf[4];
  if (read(a, buf, 4) != 4 || memcmp(buf, "ping", 4) != 0) die("read");
  close(a);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int port;
  int l = tcp_listener(&port);
  int c = open_kept_socket(port);
  int api = -1;
  if (strcmp(argv[1], "takeover") == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction");
    for (int i = 0; i < 5; i++) raise(SIGUSR1);
    sleep_ms(200); /* a report, if one were (wrongly) triggered, would be written by now */
    typedef uint32_t (*report_fn)(const char *, uint32_t);
    report_fn report = (report_fn)dlsym(RTLD_DEFAULT, "fdguard_report_to_path");
    if (report && argc > 2) api = (int)report(argv[2], 2 /* FDGUARD_FORMAT_JSON */);
  } else {
    struct sigaction old;
    sigaction(SIGUSR1, NULL, &old);
    if (old.sa_handler == SIG_IGN) {
      fprintf(stderr, "test program: SIGUSR1 is still ignored: fdguard did not install its handler\n");
      return 90;
    }
    if (request_report(1) != 0) return 98;
  }
  check_works(c, l);
  printf("{\"kept\":%d,\"listener\":%d,\"handled\":%d,\"api\":%d}\n", c, l, atomic_load(&handled), api);
  fflush(stdout);
  return 0;
}
