/*
 * close_server PORTFILE
 *
 * A server that holds every connection it accepts and never reads or closes one: the
 * handler forgot the peer. It greets each client with a line; a client that disconnects
 * without reading it resets the connection (close with unread data sends RST), so the
 * server's socket goes to state CLOSE — which `ss -tan` cannot show, since the kernel
 * unhashes it. Listens on an ephemeral loopback port, written (with the pid) to PORTFILE
 * atomically as "PID PORT". Accepts at most 64 connections; lives at most 120 s.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((noinline)) static int accept_and_forget(int listener) {
    int fd = accept(listener, NULL, NULL);
    if (fd >= 0 && write(fd, "hello\n", 6) != 6) {
        perror("close_server: write");
    }
    return fd; /* never read, never closed */
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: close_server PORTFILE\n");
        return 64;
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 64) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
        perror("close_server: listen");
        return 90;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d %d\n", (int)getpid(), ntohs(addr.sin_port)) < 0 || fclose(f) != 0 ||
        rename(tmp, argv[1]) != 0) {
        perror("close_server: portfile");
        return 91;
    }
    struct pollfd p = {listener, POLLIN, 0};
    int accepted = 0;
    for (int tick = 0; tick < 1200; tick++) {
        if (accepted < 64 && poll(&p, 1, 100) > 0) {
            if (accept_and_forget(listener) >= 0) {
                accepted++;
            }
        } else if (accepted >= 64) {
            usleep(100 * 1000);
        }
    }
    return 0;
}
