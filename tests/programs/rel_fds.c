/* Hosts that manage fds themselves (tests/reliability_fds.rs). argv[1] picks the scenario;
 * each prints one JSON line with its ground truth ("open": the socket fds that must be listed,
 * and more per scenario), then asks for report #1 (SIGUSR1) and exits normally (report #2).
 *
 *   ranges       close_range() over part of a row of sockets, close_range(CLOEXEC) over
 *                another part (closes nothing), then closefrom() over the tail.
 *   dup2-onto    dup2() and dup3() of one tracked socket onto another tracked socket.
 *   daemon       closes every fd from 3 to 1023 with close(), then opens new sockets.
 *   daemon-stdio closes fds 0..1023 including stdio, opens sockets (they get 0, 1, 2) and asks
 *                for a report on stderr: nothing may be written into the socket at fd 2.
 *                Prints nothing (stdout is gone); exit status 0 = nothing arrived.
 *   reuse        1000 times: close a socket and open the next one at once, so the number is
 *                reused immediately, alternating two creating functions.
 *   highfd       raises the soft RLIMIT_NOFILE to the hard limit, dup2()s a socket to
 *                limit-1 and F_DUPFD()s one to limit-5000.
 *   fclose       fdopen() + fclose() two sockets (glibc closes them internally, unseen) and
 *                reuses one number for a regular file. */
#include "testlib.h"
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/syscall.h>

static int port;
__attribute__((noinline)) int first_owner(void) { return tcp_connect(port); }
__attribute__((noinline)) int second_owner(void) { return tcp_connect(port); }
__attribute__((noinline)) int row_socket(void) { return tcp_connect(port); }
__attribute__((noinline)) int after_daemonize(void) { return tcp_connect(port); }

static void print_fds(const char *key, const int *fds, int n, int last) {
  printf("\"%s\":[", key);
  for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", fds[i]);
  printf("]%s", last ? "}\n" : ",");
}

/* Accepts and closes every pending connection on listener `l`. */
static void drain(int l) {
  int flags = fcntl(l, F_GETFL);
  fcntl(l, F_SETFL, flags | O_NONBLOCK);
  int a;
  while ((a = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0) close(a);
  fcntl(l, F_SETFL, flags);
}

static int finish(void) {
  fflush(stdout);
  if (request_report(1) != 0) return 98;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *mode = argv[1];
  if (strcmp(mode, "daemon-stdio") == 0) {
    for (int fd = 0; fd < 1024; fd++) close(fd);
    int l = tcp_listener(&port);       /* fd 0 */
    int c = tcp_connect(port);         /* fd 1 */
    int a = accept4(l, NULL, NULL, 0); /* fd 2: "stderr" is now a socket */
    if (l != 0 || c != 1 || a != 2) return 81;
    raise(SIGUSR1);
    sleep_ms(1500);
    char buf[64];
    ssize_t n = recv(c, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) return 80; /* fdguard wrote into the host's socket */
    return 0;
  }
  int l = tcp_listener(&port);
  if (strcmp(mode, "ranges") == 0) {
    /* Ten sockets at consecutive numbers 100..109 (whatever else the process inherited). */
    int s[10];
    for (int i = 0; i < 10; i++) {
      int fd = row_socket();
      s[i] = 100 + i;
      if (dup2(fd, s[i]) != s[i]) die("dup2");
      close(fd);
    }
    drain(l);
    if (close_range(s[2], s[4], 0) != 0) die("close_range");
    if (close_range(s[5], s[6], CLOSE_RANGE_CLOEXEC) != 0) die("close_range cloexec");
    closefrom(s[8]);
    int open[] = {l, s[0], s[1], s[5], s[6], s[7]};
    int closed[] = {s[2], s[3], s[4], s[8], s[9]};
    printf("{");
    print_fds("open", open, 6, 0);
    print_fds("closed", closed, 5, 1);
    return finish();
  }
  if (strcmp(mode, "dup2-onto") == 0) {
    int port2;
    int l2 = tcp_listener(&port2);
    int a = first_owner();
    int b = tcp_connect(port2);
    int c = tcp_connect(port2);
    if (dup2(a, b) != b) die("dup2");
    if (dup3(a, c, O_CLOEXEC) != c) die("dup3");
    drain(l);
    drain(l2);
    int open[] = {l, l2, a, b, c};
    printf("{\"a\":%d,\"b\":%d,\"c\":%d,\"port\":%d,", a, b, c, port);
    print_fds("open", open, 5, 1);
    return finish();
  }
  if (strcmp(mode, "daemon") == 0) {
    for (int i = 0; i < 20; i++) row_socket();
    for (int fd = 3; fd < 1024; fd++) close(fd);
    l = tcp_listener(&port);
    int c = after_daemonize();
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    int open[] = {l, c, a};
    printf("{\"client\":%d,", c);
    print_fds("open", open, 3, 1);
    return finish();
  }
  if (strcmp(mode, "reuse") == 0) {
    int s = first_owner();
    int first_number = s;
    for (int i = 0; i < 1000; i++) {
      close(s);
      s = (i % 2) ? first_owner() : second_owner();
      if (s != first_number) return 83;
      drain(l);
    }
    int open[] = {l, s};
    printf("{\"fd\":%d,\"last_owner\":\"%s\",", s, "first_owner");
    print_fds("open", open, 2, 1);
    return finish();
  }
  if (strcmp(mode, "highfd") == 0) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
    int top = (int)rl.rlim_max - 1;
    int s = first_owner();
    if (dup2(s, top) != top) die("dup2 top");
    int mid = fcntl(s, F_DUPFD, top - 5000);
    if (mid != top - 5000) die("F_DUPFD");
    drain(l);
    int open[] = {l, s, mid, top};
    printf("{\"top\":%d,\"mid\":%d,\"source\":%d,", top, mid, s);
    print_fds("open", open, 4, 1);
    return finish();
  }
  if (strcmp(mode, "fclose") == 0) {
    int s1 = first_owner();
    int s2 = second_owner();
    int kept = row_socket();
    drain(l);
    FILE *f1 = fdopen(s1, "r+");
    FILE *f2 = fdopen(s2, "r+");
    if (!f1 || !f2) die("fdopen");
    fclose(f1);
    fclose(f2);
    int file = open("/dev/null", O_RDONLY | O_CLOEXEC); /* lowest free: s1's old number */
    if (file != s1) return 84;
    int open_[] = {l, kept};
    printf("{\"ghosts\":[%d,%d],", s1, s2);
    print_fds("open", open_, 2, 1);
    return finish();
  }
  return 2;
}
