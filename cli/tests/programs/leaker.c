/*
 * leaker PORT COUNT EVERY_MS PIDFILE [STABLE_PORT]
 *
 * Never preloaded: the subject of `fdguard inspect` and `fdguard watch`. With STABLE_PORT, first
 * opens two connections to 127.0.0.1:STABLE_PORT from open_pool_connection() (a healthy pool that
 * stays put). Then opens COUNT connections to 127.0.0.1:PORT from open_leaky_connection(), one
 * every EVERY_MS milliseconds (0: all at once), and never closes any: when the server hangs up,
 * they sit in CLOSE_WAIT. Publishes its pid in PIDFILE (atomically) once the pool is up and the
 * first leaky connection is open, and appends one line per leaky connection to PIDFILE.count.
 * Lives at most 120 s; SIGTERM ends it at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_term(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("leaker: connect");
        exit(90);
    }
    return fd;
}

__attribute__((noinline)) static int open_pool_connection(int port) { return connect_to(port); }

__attribute__((noinline)) static int open_leaky_connection(int port) { return connect_to(port); }

static void publish(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        perror("leaker: pidfile");
        exit(91);
    }
}

static void count_one(const char *pidfile) {
    char path[4096];
    snprintf(path, sizeof path, "%s.count", pidfile);
    FILE *f = fopen(path, "a");
    if (f == NULL || fputs("1\n", f) < 0 || fclose(f) != 0) {
        perror("leaker: count");
        exit(92);
    }
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && !stop_requested) {
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: leaker PORT COUNT EVERY_MS PIDFILE [STABLE_PORT]\n");
        return 64;
    }
    signal(SIGTERM, on_term);
    int port = atoi(argv[1]);
    int count = atoi(argv[2]);
    long every_ms = atol(argv[3]);
    const char *pidfile = argv[4];
    if (argc > 5) {
        (void)open_pool_connection(atoi(argv[5]));
        (void)open_pool_connection(atoi(argv[5]));
    }
    for (int i = 0; i < count && !stop_requested; i++) {
        (void)open_leaky_connection(port); /* deliberately never closed */
        count_one(pidfile);
        if (i == 0) {
            publish(pidfile);
        }
        if (every_ms > 0) {
            sleep_ms(every_ms);
        }
    }
    for (int i = 0; i < 1200 && !stop_requested; i++) {
        sleep_ms(100);
    }
    return 0;
}
