/* Small helpers shared by fdguard's C test programs (header-only, loopback only). */
#ifndef FDGUARD_TESTLIB_H
#define FDGUARD_TESTLIB_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

__attribute__((unused)) static void die(const char *what) {
  fprintf(stderr, "test program: %s: %s\n", what, strerror(errno));
  exit(99);
}

__attribute__((unused)) static int tcp_listener(int *port) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0) die("socket");
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  if (listen(l, 128) != 0) die("listen");
  socklen_t n = sizeof a;
  getsockname(l, (struct sockaddr *)&a, &n);
  *port = ntohs(a.sin_port);
  return l;
}

__attribute__((unused)) static int tcp_connect(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
  return s;
}

__attribute__((unused)) static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Path of report number `seq` of this process, from FDGUARD_REPORT's %p/%n template. */
__attribute__((unused)) static void report_path(int seq, char *out, size_t cap) {
  const char *t = getenv("FDGUARD_REPORT");
  size_t o = 0;
  if (!t) { out[0] = 0; return; }
  for (const char *p = t; *p && o + 24 < cap; p++) {
    if (p[0] == '%' && p[1] == 'p') { o += snprintf(out + o, cap - o, "%d", (int)getpid()); p++; }
    else if (p[0] == '%' && p[1] == 'n') { o += snprintf(out + o, cap - o, "%d", seq); p++; }
    else out[o++] = *p;
  }
  out[o] = 0;
}

/* Raises the report signal and waits (bounded, 10 s) for report `seq` to appear. */
__attribute__((unused)) static int request_report(int seq) {
  char path[4096];
  report_path(seq, path, sizeof path);
  raise(SIGUSR1);
  if (!strchr(path, '/')) { /* stderr or unset: give the reporter a moment */
    sleep_ms(300);
    return 0;
  }
  for (int i = 0; i < 1000; i++) {
    struct stat st;
    if (path[0] && stat(path, &st) == 0) return 0;
    sleep_ms(10);
  }
  fprintf(stderr, "test program: report %s did not appear\n", path);
  return -1;
}
#endif
