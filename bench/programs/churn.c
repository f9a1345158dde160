/* Workload 1: socket()+close() churn on one thread.
 * argv: OPS [NESTING]. NESTING extra frames sit between main and the loop, to show how the
 * cost of a stack capture grows with depth. Prints {"ns_per_op": ..., "ops": ...}. */
#include "bench.h"

static void churn(long ops) {
  for (long i = 0; i < ops; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    close(fd);
  }
}

/* Not a tail call (the addition after it), so each level really is a frame. */
__attribute__((noinline)) static long nest(long depth, long ops) {
  if (depth <= 0) {
    double t0 = now_ns();
    churn(ops);
    return (long)(now_ns() - t0);
  }
  long r = nest(depth - 1, ops);
  __asm__ volatile("" ::: "memory");
  return r + 0 * depth;
}

int main(int argc, char **argv) {
  long ops = arg_long(argc, argv, 1, 100000);
  long depth = arg_long(argc, argv, 2, 0);
  if (depth > 1000) depth = 1000;
  churn(ops / 20 + 1); /* warm-up: first-socket work, page faults, caches */
  long elapsed = nest(depth, ops);
  printf("{\"ns_per_op\": %.1f, \"ops\": %ld, \"nesting\": %ld}\n", (double)elapsed / (double)ops,
         ops, depth);
  return 0;
}
