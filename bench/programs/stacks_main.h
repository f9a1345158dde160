/* The symbolisation workload's main (included by the stacks.c fdguard-bench generates, after
 * it defines STACKS socket-creating functions in `openers`).
 * argv: distinct|same COUNT REPORT_DIR. "distinct" creates COUNT sockets through COUNT
 * different functions (COUNT distinct stacks), "same" creates COUNT sockets through one.
 * Then writes a text and a JSON report with fdguard_report_to_path() and prints how long
 * each took. */
#include <dlfcn.h>
#include <stdint.h>

/* From include/fdguard.h (looked up with dlsym so the workload builds and runs without it). */
typedef uint32_t (*report_to_path_fn)(const char *path, uint32_t format);
enum { FDGUARD_RESULT_OK = 7000, FDGUARD_FORMAT_TEXT = 1, FDGUARD_FORMAT_JSON = 2 };

static double timed_report(report_to_path_fn fn, const char *dir, const char *name,
                           uint32_t format) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  double t0 = now_ns();
  uint32_t rc = fn(path, format);
  return rc == FDGUARD_RESULT_OK ? (now_ns() - t0) / 1e6 : -1.0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: stacks distinct|same COUNT REPORT_DIR\n");
    return 2;
  }
  int distinct = strcmp(argv[1], "distinct") == 0;
  long n = arg_long(argc, argv, 2, STACKS);
  if (n > STACKS) n = STACKS;
  for (long i = 0; i < n; i++)
    if (openers[distinct ? i : 0]() < 0) die("socket");
  report_to_path_fn fn = (report_to_path_fn)dlsym(RTLD_DEFAULT, "fdguard_report_to_path");
  double text = -1, json = -1;
  if (fn) {
    text = timed_report(fn, argv[3], "stacks.txt", FDGUARD_FORMAT_TEXT);
    json = timed_report(fn, argv[3], "stacks.json", FDGUARD_FORMAT_JSON);
  }
  printf("{\"sockets\": %ld, \"stacks\": %ld, \"report_text_ms\": %.2f, "
         "\"report_json_ms\": %.2f}\n",
         n, distinct ? n : 1, text, json);
  return 0;
}
