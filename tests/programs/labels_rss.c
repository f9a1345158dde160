/* Labels live and die with their sockets (tests/labels.rs): N sockets are each created,
 * labelled and closed, while a few long-lived labelled sockets stay open; the resident set
 * is read before and after. Then a report is asked for (SIGUSR1).
 *
 * argv[1]: N. Prints {"ok":true,"rss_before_kib":A,"rss_after_kib":B,"kept":[fds],
 * "dup":fd}: the kept sockets are labelled "kept <i>"; `dup` is a dup of a labelled socket
 * whose original fd was closed (the label follows the socket, not the number). */
#define FDGUARD_WEAK_SYMBOLS
#include "testlib.h"
#include <fdguard.h>

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) die("status");
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

static void churn(long n) {
  char label[80];
  for (long i = 0; i < n; i++) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket");
    snprintf(label, sizeof label, "short-lived connection %ld to the backend pool", i);
    if (fdguard_label(s, label) != FDGUARD_RESULT_OK) die("fdguard_label");
    close(s);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (!fdguard_label) {
    printf("{\"ok\":false,\"why\":\"not preloaded\"}\n");
    return 0;
  }
  long n = atol(argv[1]);
  int kept[4];
  char label[32];
  for (int i = 0; i < 4; i++) {
    kept[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    snprintf(label, sizeof label, "kept %d", i);
    if (fdguard_label(kept[i], label) != FDGUARD_RESULT_OK) die("label");
  }
  int original = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fdguard_label(original, "moved by dup") != FDGUARD_RESULT_OK) die("label");
  int moved = dup(original);
  close(original);
  churn(20000); /* warm-up: the label store and the table reach their working size */
  long before = rss_kib();
  churn(n);
  long after = rss_kib();
  if (request_report(1) != 0) return 1;
  printf("{\"ok\":true,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"kept\":[%d,%d,%d,%d],"
         "\"dup\":%d}\n",
         before, after, kept[0], kept[1], kept[2], kept[3], moved);
  return 0;
}
