/*
 * pprof_leak DIR
 *
 * Leaks client connections from leak_backend_connection() (the listener's side hangs up at
 * once, so they sit in CLOSE_WAIT, never closed) and keeps one healthy connection from
 * keep_connection(); asks libfdguard.so (C API, found with dlsym) for JSON reports into DIR:
 *   r1.json, r2.json  after 2 leaks (r1 lets the watcher date the hang-ups, so r2 has
 *                     peer_closed findings with FDGUARD_GRACE_MS=0);
 *   r3.json, r4.json  after the 3rd leak and the healthy connection.
 * Prints {"ok":true,"port":P}, then _exit(0) (no exit report: FDGUARD_EXIT_REPORT=never).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef uint32_t (*report_to_path_fn)(const char *path, uint32_t format);
enum { RESULT_OK = 7000, FORMAT_JSON = 2 };

static struct sockaddr_in addr;
static int listener;

static void fail(const char *what) {
    perror(what);
    _exit(99);
}

__attribute__((noinline)) static int leak_backend_connection(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) fail("connect");
    int accepted = accept(listener, NULL, NULL);
    if (accepted < 0) fail("accept");
    close(accepted);
    return fd;
}

__attribute__((noinline)) static int keep_connection(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) fail("connect");
    if (accept(listener, NULL, NULL) < 0) fail("accept");
    return fd;
}

static void report(report_to_path_fn fn, const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (fn(path, FORMAT_JSON) != RESULT_OK) fail(path);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    report_to_path_fn fn = (report_to_path_fn)dlsym(RTLD_DEFAULT, "fdguard_report_to_path");
    if (!fn) {
        fprintf(stderr, "libfdguard.so is not loaded\n");
        return 3;
    }
    listener = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
        fail("listener");
    leak_backend_connection();
    leak_backend_connection();
    report(fn, argv[1], "r1.json");
    report(fn, argv[1], "r2.json");
    leak_backend_connection();
    keep_connection();
    report(fn, argv[1], "r3.json");
    report(fn, argv[1], "r4.json");
    printf("{\"ok\":true,\"port\":%d}\n", ntohs(addr.sin_port));
    fflush(stdout);
    _exit(0);
}
