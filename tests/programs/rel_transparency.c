/* What a host can see of fdguard (tests/reliability_transparency.rs): its threads
 * (/proc/self/task, with names) and its fds (/proc/self/fd, with targets).
 * argv[1]: "quiet" (never opens a socket), "quiet-signal" (same, then raises SIGUSR1 — only
 * run with fdguard, whose handler it is — and looks again), "socket" (opens one socket, then
 * looks). Prints one JSON line per look: {"threads":[names...],"fds":["N -> target",...]}. */
#include "testlib.h"
#include <dirent.h>

static void look(void) {
  printf("{\"threads\":[");
  DIR *d = opendir("/proc/self/task");
  if (!d) die("opendir task");
  struct dirent *e;
  int first = 1;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], name[64] = {0};
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f) {
      if (fgets(name, sizeof name, f)) name[strcspn(name, "\n")] = 0;
      fclose(f);
    }
    printf("%s\"%s\"", first ? "" : ",", name);
    first = 0;
  }
  closedir(d);
  printf("],\"fds\":[");
  d = opendir("/proc/self/fd");
  if (!d) die("opendir fd");
  first = 1;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
    char path[300], target[256] = {0};
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) n = 0;
    target[n] = 0;
    /* Socket and pipe inode numbers differ between runs; keep the kind only. */
    char *bracket = strchr(target, '[');
    if (bracket) *bracket = 0;
    printf("%s\"%s -> %s\"", first ? "" : ",", e->d_name, target);
    first = 0;
  }
  closedir(d);
  printf("]}\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "socket") == 0) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket");
    sleep_ms(100);
  }
  look();
  if (strcmp(argv[1], "quiet-signal") == 0) {
    raise(SIGUSR1);
    sleep_ms(300);
    look();
  }
  return 0;
}
