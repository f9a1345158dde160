/* Workload 4: many live loopback connections (both ends in this process), held open.
 * argv: CONNECTIONS REPORT_DIR.
 * Raises the soft RLIMIT_NOFILE to the hard limit, opens CONNECTIONS connections (2 fds each
 * plus the listener), then measures:
 *   - setup time per connection;
 *   - resident memory (/proc/self/statm) with all of them open;
 *   - when fdguard is loaded (FDGUARD_EXPECT_SHIM=1): the time to write a text and a JSON
 *     report, through the C API fdguard_report_to_path() when the library exports it, else by
 *     sending SIGUSR1 and waiting for the report file (FDGUARD_REPORT=REPORT_DIR/sig-%p-%n)
 *     to appear (text only: the format then comes from FDGUARD_FORMAT).
 *   - with FDGUARD_METRICS_DIR set (and the shim expected), instead of the reports: the
 *     metrics writer's cost, read from this process's own metrics file once an update has
 *     counted every socket (bounded: 120 s): the update's duration, the interval the writer
 *     chose after it, the file's size and series;
 * Prints one JSON line, whose "exit_at_unix_ns" (CLOCK_REALTIME, comparable across
 * processes) is taken just before main returns with every fd still open, so the caller can
 * time the exit (fdguard's exit report, valgrind's fd report). */
#include "bench.h"
#include <dirent.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>

/* From include/fdguard.h (looked up with dlsym so the workload builds and runs without it). */
typedef uint32_t (*report_to_path_fn)(const char *path, uint32_t format);
enum { FDGUARD_RESULT_OK = 7000, FDGUARD_FORMAT_TEXT = 1, FDGUARD_FORMAT_JSON = 2 };

static double unix_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static long resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, resident = 0;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Milliseconds to write one report through the C API (-1 on failure). */
static double report_capi(report_to_path_fn fn, const char *dir, const char *name, uint32_t fmt) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  double t0 = now_ns();
  uint32_t rc = fn(path, fmt);
  double ms = (now_ns() - t0) / 1e6;
  if (rc != FDGUARD_RESULT_OK) {
    fprintf(stderr, "fdguard_report_to_path(%s) = %u\n", path, rc);
    return -1;
  }
  return ms;
}

/* Milliseconds from SIGUSR1 until a report file for this pid appears (bounded: 60 s). */
static double report_signal(const char *dir) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "sig-%d-", (int)getpid());
  double t0 = now_ns();
  if (kill(getpid(), SIGUSR1) != 0) die("kill");
  while (now_ns() - t0 < 60e9) {
    DIR *d = opendir(dir);
    if (!d) die("opendir");
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL)
      if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
    closedir(d);
    if (found) return (now_ns() - t0) / 1e6;
    usleep(200);
  }
  return -1;
}

/* The value of the first sample of `name` in the Prometheus text `text` (-1 if none). */
static double prom_value(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    if (strncmp(line, name, n) == 0 && (line[n] == '{' || line[n] == ' ')) {
      const char *sp = strchr(line, '}');
      sp = sp ? sp + 1 : line + n;
      return strtod(sp, NULL);
    }
  }
  return -1;
}

/* The sum of every sample of `name`, and how many sample lines the text has. */
static double prom_sum(const char *text, const char *name, long *series) {
  size_t n = strlen(name);
  double sum = 0;
  *series = 0;
  for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    if (*line != '#' && *line != '\n') (*series)++;
    if (strncmp(line, name, n) == 0 && line[n] == '{') {
      const char *sp = strchr(line, '}');
      if (sp) sum += strtod(sp + 1, NULL);
    }
  }
  return sum;
}

struct metrics { double update_ms, interval_s, wait_s; long bytes, series; };

/* Waits (at most 120 s) until this process's metrics file counts `sockets` socket fds. */
static int wait_for_metrics(const char *dir, long sockets, struct metrics *m) {
  char path[4096];
  snprintf(path, sizeof path, "%s/fdguard-%d.prom", dir, (int)getpid());
  static char text[1 << 20];
  double t0 = now_ns();
  while (now_ns() - t0 < 120e9) {
    FILE *f = fopen(path, "r");
    if (f) {
      size_t len = fread(text, 1, sizeof text - 1, f);
      fclose(f);
      text[len] = 0;
      long series = 0;
      if ((long)prom_sum(text, "fdguard_sockets", &series) == sockets) {
        m->update_ms = prom_value(text, "fdguard_metrics_update_duration_seconds") * 1e3;
        m->interval_s = prom_value(text, "fdguard_metrics_interval_seconds");
        m->bytes = (long)len;
        m->series = series;
        m->wait_s = (now_ns() - t0) / 1e9;
        return 0;
      }
    }
    usleep(20000);
  }
  fprintf(stderr, "no metrics update counting %ld sockets in %s within 120 s\n", sockets, path);
  return -1;
}

int main(int argc, char **argv) {
  long conns = arg_long(argc, argv, 1, 1000);
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
  if ((rlim_t)(2 * conns + 64) > rl.rlim_cur) {
    fprintf(stderr, "%ld connections need %ld fds; the limit is %ld\n", conns, 2 * conns + 64,
            (long)rl.rlim_cur);
    return 2;
  }
  /* Grow the kernel's fd table to its final size first. Growing it later, while a second
   * thread exists (fdguard's reporter thread, any threaded host), waits for an RCU grace
   * period per doubling (fs/file.c expand_fdtable: synchronize_rcu when the table is shared):
   * tens of milliseconds of idle wall time that would swamp the per-connection cost. */
  int top = (int)(2 * conns + 32);
  if (dup2(0, top) != top) die("dup2");
  close(top);
  struct sockaddr_in addr;
  int l = loopback_listener(&addr, 4096);
  double t0 = now_ns();
  for (long i = 0; i < conns; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) die("socket");
    if (connect(c, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    if (accept(l, NULL, NULL) < 0) die("accept");
  }
  double setup = now_ns() - t0;
  long rss = resident_bytes();

  const char *via = "none";
  double text_ms = -1, json_ms = -1;
  const char *expect = getenv("FDGUARD_EXPECT_SHIM");
  const char *metrics_dir = getenv("FDGUARD_METRICS_DIR");
  struct metrics m = {-1, -1, -1, -1, -1};
  if (expect && strcmp(expect, "1") == 0 && metrics_dir && *metrics_dir) {
    via = "metrics";
    if (wait_for_metrics(metrics_dir, 2 * conns + 1, &m) != 0) return 3;
  } else if (expect && strcmp(expect, "1") == 0) {
    report_to_path_fn fn = (report_to_path_fn)dlsym(RTLD_DEFAULT, "fdguard_report_to_path");
    if (fn) {
      via = "capi";
      text_ms = report_capi(fn, dir, "live.txt", FDGUARD_FORMAT_TEXT);
      json_ms = report_capi(fn, dir, "live.json", FDGUARD_FORMAT_JSON);
    } else {
      via = "signal";
      text_ms = report_signal(dir);
    }
  }
  printf("{\"ns_per_op\": %.1f, \"connections\": %ld, \"sockets\": %ld, \"rss_bytes\": %ld, "
         "\"report_via\": \"%s\", \"report_text_ms\": %.2f, \"report_json_ms\": %.2f, "
         "\"metrics_update_ms\": %.3f, \"metrics_interval_s\": %.3f, \"metrics_bytes\": %ld, "
         "\"metrics_series\": %ld, \"metrics_wait_s\": %.3f, \"exit_at_unix_ns\": %.0f}\n",
         setup / (double)conns, conns, 2 * conns + 1, rss, via, text_ms, json_ms, m.update_ms,
         m.interval_s, m.bytes, m.series, m.wait_s, unix_ns());
  fflush(stdout);
  return 0;
}
