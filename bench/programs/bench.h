/* Shared helpers for fdguard's benchmark workloads: monotonic time, fatal errors, loopback
 * sockets. Every workload prints exactly one JSON line on stdout; diagnostics go to stderr.
 * Everything stays on 127.0.0.1 and every loop is bounded by its arguments. */
#ifndef FDGUARD_BENCH_H
#define FDGUARD_BENCH_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static inline void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(2);
}

static inline long arg_long(int argc, char **argv, int i, long fallback) {
  if (argc <= i) return fallback;
  char *end;
  long v = strtol(argv[i], &end, 10);
  if (*end != '\0' || v < 0) {
    fprintf(stderr, "bad argument %s\n", argv[i]);
    exit(2);
  }
  return v;
}

/* A listening TCP socket on 127.0.0.1, any port; its address in *addr. */
static inline int loopback_listener(struct sockaddr_in *addr, int backlog) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0) die("socket");
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (struct sockaddr *)addr, sizeof *addr) != 0) die("bind");
  if (listen(l, backlog) != 0) die("listen");
  socklen_t len = sizeof *addr;
  if (getsockname(l, (struct sockaddr *)addr, &len) != 0) die("getsockname");
  return l;
}

#endif
