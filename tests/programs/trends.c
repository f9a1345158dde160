/* Trends over time with known ground truth (issue 10: growth, reconnect_churn). argv[1]:
 *   growth  a pool of 4 connections to backend B, made once and kept (healthy); and one more
 *           connection to backend A every 60 ms, 40 times, none ever closed (the leak)
 *   churn   connections to backend D made and closed at a steady 10 per second throughout
 *           (healthy: that is this program's norm); to backend C 5 per second for 3 s, then
 *           500 per second for 0.8 s (a reconnect storm)
 * Prints the ground truth as one JSON line, asks for a report and exits. Run with
 * FDGUARD_WATCH_MS=50 (a sample every 50 ms). */
#include "testlib.h"
#include <pthread.h>

static void *accept_and_close(void *arg) {
  int l = *(int *)arg;
  for (;;) {
    int s = accept(l, NULL, NULL);
    if (s >= 0) close(s);
  }
  return NULL;
}

__attribute__((noinline)) int connect_pool(int port) { return tcp_connect(port); }
__attribute__((noinline)) int connect_leak(int port) { return tcp_connect(port); }
__attribute__((noinline)) void reconnect(int port) { close(tcp_connect(port)); }

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "growth";
  if (strcmp(mode, "growth") == 0) {
    int port_a, port_b;
    int a = tcp_listener(&port_a), b = tcp_listener(&port_b);
    (void)a;
    int pool[4], leaked[40];
    for (int i = 0; i < 4; i++) pool[i] = connect_pool(port_b);
    for (int i = 0; i < 40; i++) {
      leaked[i] = connect_leak(port_a);
      sleep_ms(60);
    }
    printf("{\"leaked\":[");
    for (int i = 0; i < 40; i++) printf("%s%d", i ? "," : "", leaked[i]);
    printf("],\"pool\":[%d,%d,%d,%d],\"port_a\":%d,\"port_b\":%d,\"listener_b\":%d}\n", pool[0],
           pool[1], pool[2], pool[3], port_a, port_b, b);
  } else if (strcmp(mode, "churn") == 0) {
    int port_c, port_d;
    static int lc, ld;
    lc = tcp_listener(&port_c);
    ld = tcp_listener(&port_d);
    pthread_t tc, td;
    pthread_create(&tc, NULL, accept_and_close, &lc);
    pthread_create(&td, NULL, accept_and_close, &ld);
    long start = now_ms(), next_d = start, next_c = start;
    while (now_ms() - start < 3800) {
      long t = now_ms();
      int storm = t - start >= 3000;
      if (t >= next_d) {
        reconnect(port_d);
        next_d += 100;
      }
      if (t >= next_c) {
        reconnect(port_c);
        next_c += storm ? 2 : 200;
      }
      sleep_ms(1);
    }
    printf("{\"storm_port\":%d,\"steady_port\":%d}\n", port_c, port_d);
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  fflush(stdout);
  if (request_report(1) != 0) return 98;
  return 0;
}
