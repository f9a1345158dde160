/*
 * holder PORT PIDFILE [block-usr1|dfl-usr1]
 *
 * Connects to 127.0.0.1:PORT from open_marker_connection(), publishes its pid in PIDFILE
 * (atomically), then waits up to 10 s. SIGTERM makes it exit(5) normally, so the exit report
 * is written; it exits 6 when the wait runs out. With `block-usr1` it blocks SIGUSR1 first,
 * so it can never answer `fdguard report` (the timeout path). With `dfl-usr1` it resets
 * SIGUSR1 to SIG_DFL after fdguard installed its handler, as many daemons do at start: a
 * SIGUSR1 would now kill it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_term(int sig) {
    (void)sig;
    stop_requested = 1;
}

__attribute__((noinline)) static int open_marker_connection(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("holder: connect");
        exit(90);
    }
    return fd;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: holder PORT PIDFILE [block-usr1|dfl-usr1]\n");
        return 64;
    }
    if (argc > 3 && strcmp(argv[3], "block-usr1") == 0) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigprocmask(SIG_BLOCK, &set, NULL);
    }
    signal(SIGTERM, on_term);
    if (argc > 3 && strcmp(argv[3], "dfl-usr1") == 0) {
        signal(SIGUSR1, SIG_DFL);
    }
    int fd = open_marker_connection(atoi(argv[1]));

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 || rename(tmp, argv[2]) != 0) {
        perror("holder: pidfile");
        return 91;
    }
    for (int i = 0; i < 200 && !stop_requested; i++) {
        usleep(50 * 1000);
    }
    (void)fd; /* deliberately left open: the exit report must list it */
    return stop_requested ? 5 : 6;
}
