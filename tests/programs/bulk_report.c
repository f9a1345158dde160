/* A report of thousands of sockets (tests/bulk_report.rs): enough that the report reads the
 * kernel on helper threads (src/platform/workers.rs). 2,500 loopback connections (both ends:
 * 5,001 sockets with the listener), the server end of every 10th closed (its client end in
 * CLOSE_WAIT), 3 sockets made by raw socket(2) syscalls (untracked), and one tracked socket
 * closed behind fdguard's back by a raw close(2) whose number is reused by a file (a ghost).
 * Writes one JSON report through the C API to argv[1]; then closes all but a few sockets (the
 * fd table keeps its size) and writes a second to argv[2]. Prints the ground truth:
 * {"ok":true,"shrunk":{"kept":[fd,fd],"late_untracked":fd,"open_fds":N,"report_ok":B},
 *  "clients":[[fd,local_port],...],"close_wait":[fd,...],"untracked":[fd,...],"ghost":fd,
 *  "open_fds":N,"threads_before":T,"threads_after":T,"report_ok":B} (after "ok":true) */
#define FDGUARD_WEAK_SYMBOLS
#include "testlib.h"
#include <dirent.h>
#include <fcntl.h>
#include <fdguard.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define CONNECTIONS 2500

static int count_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) die("opendir");
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
  int port;
  int l = tcp_listener(&port);
  if (listen(l, 4096) != 0) die("listen");
  static int client[CONNECTIONS], server[CONNECTIONS], local_port[CONNECTIONS];
  for (int i = 0; i < CONNECTIONS; i++) {
    client[i] = tcp_connect(port);
    server[i] = accept(l, NULL, NULL);
    if (server[i] < 0) die("accept");
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    getsockname(client[i], (struct sockaddr *)&a, &n);
    local_port[i] = ntohs(a.sin_port);
  }
  for (int i = 0; i < CONNECTIONS; i += 10) close(server[i]);
  int untracked[3];
  for (int i = 0; i < 3; i++) {
    untracked[i] = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    if (untracked[i] < 0) die("raw socket");
  }
  /* The ghost: a tracked client closed by a raw syscall, its number taken by a file. */
  int ghost = client[CONNECTIONS - 1];
  syscall(SYS_close, ghost);
  int file = open("/dev/null", O_RDONLY);
  if (file < 0 || syscall(SYS_dup3, file, ghost, 0) != ghost) die("reuse the ghost's number");
  syscall(SYS_close, file);
  sleep_ms(100); /* the FINs arrive */
  int threads_before = count_dir("/proc/self/task");
  fdguard_result rc = fdguard_report_to_path(argv[1], FDGUARD_FORMAT_JSON);
  int threads_after = count_dir("/proc/self/task");
  int open_fds = count_dir("/proc/self/fd") - 1;
  /* Then most of them go: the fd table keeps its size (8,192 numbers) for a dozen fds, and the
   * report lists the fds from /proc/self/fd instead of asking every number. */
  int kept_client = client[1], kept_server = server[1];
  for (int i = 2; i < CONNECTIONS - 1; i++) close(client[i]);
  for (int i = 2; i < CONNECTIONS; i++)
    if (i % 10 != 0) close(server[i]);
  int late_untracked = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
  if (late_untracked < 0) die("raw socket");
  fdguard_result rc2 = argc > 2 ? fdguard_report_to_path(argv[2], FDGUARD_FORMAT_JSON)
                                : FDGUARD_RESULT_OK;
  int open_fds2 = count_dir("/proc/self/fd") - 1;
  printf("{\"ok\":true,\"shrunk\":{\"kept\":[%d,%d],\"late_untracked\":%d,\"open_fds\":%d,"
         "\"report_ok\":%s},\"clients\":[",
         kept_client, kept_server, late_untracked, open_fds2,
         rc2 == FDGUARD_RESULT_OK ? "true" : "false");
  for (int i = 0; i < CONNECTIONS - 1; i++)
    printf("%s[%d,%d]", i ? "," : "", client[i], local_port[i]);
  printf("],\"close_wait\":[");
  for (int i = 0; i < CONNECTIONS; i += 10) printf("%s%d", i ? "," : "", client[i]);
  printf("],\"untracked\":[%d,%d,%d],\"ghost\":%d,\"open_fds\":%d,\"threads_before\":%d,"
         "\"threads_after\":%d,\"report_ok\":%s}\n",
         untracked[0], untracked[1], untracked[2], ghost, open_fds, threads_before,
         threads_after, rc == FDGUARD_RESULT_OK ? "true" : "false");
  return 0;
}
