/*
 * c_client.c - the fdguard C API against a loopback backend.
 *
 * Starts a listener on 127.0.0.1 (port chosen by the kernel), connects to it, names the
 * connection with fdguard_label(), sets a checkpoint, opens a second connection and checks that
 * fdguard counts it as opened since the checkpoint, closes it and checks again, then writes a
 * JSON report to a path and a text report to an fd. Every bad-argument case of the API is
 * exercised too.
 *
 * Build and run (linked):
 *     cargo build -p fdguard
 *     cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude examples/c_client.c \
 *        -Ltarget/debug -lfdguard -o c_client
 *     LD_LIBRARY_PATH=target/debug ./c_client report.json report.txt
 *
 * Or preloaded instead of linked: build with -DFDGUARD_WEAK_SYMBOLS and without -lfdguard, and
 * run with LD_PRELOAD=target/debug/libfdguard.so (see "Weak symbols" in fdguard.h).
 *
 * Exit status 0 when every check passed; otherwise 1, with one line per failed check on stderr
 * (3 when built with FDGUARD_WEAK_SYMBOLS and fdguard is not loaded).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdguard.h"

/* The label the test looks for in the JSON report. */
#define BACKEND_LABEL "c-client/backend-a"

static int failures = 0;

static void check_rc(int line, const char *call, fdguard_result got, fdguard_result want) {
    if (got != want) {
        fprintf(stderr, "c_client.c:%d: %s returned %u (%s), expected %u (%s)\n", line, call,
                (unsigned)got, fdguard_result_str(got), (unsigned)want, fdguard_result_str(want));
        failures++;
    }
}

static void check(int line, const char *what, int ok) {
    if (!ok) {
        fprintf(stderr, "c_client.c:%d: check failed: %s\n", line, what);
        failures++;
    }
}

#define EXPECT(call, want) check_rc(__LINE__, #call, (call), (want))
#define CHECK(cond) check(__LINE__, #cond, (cond))

static void die(const char *what) {
    perror(what);
    exit(2);
}

/* A listening TCP socket on 127.0.0.1; its port goes to *port. */
static int listen_loopback(uint16_t *port) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");
    if (listen(fd, 16) != 0)
        die("listen");
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        die("getsockname");
    *port = ntohs(addr.sin_port);
    return fd;
}

static int connect_loopback(uint16_t port) {
    struct sockaddr_in addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("connect");
    return fd;
}

static int accept_one(int listener) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0)
        die("accept");
    return fd;
}

static int contains(const int *fds, size_t n, int fd) {
    size_t i;
    for (i = 0; i < n; i++)
        if (fds[i] == fd)
            return 1;
    return 0;
}

static void bad_arguments(int tracked_fd) {
    char long_label[FDGUARD_LABEL_MAX + 2];
    int fds[4];
    size_t count = 12345;
    uint64_t id = 0;

    EXPECT(fdguard_checkpoint(NULL), FDGUARD_RESULT_NULL_ARGUMENT);
    EXPECT(fdguard_open_since(1, NULL), FDGUARD_RESULT_NULL_ARGUMENT);
    EXPECT(fdguard_open_since(0, &count), FDGUARD_RESULT_UNKNOWN_CHECKPOINT);
    EXPECT(fdguard_open_since(UINT64_MAX, &count), FDGUARD_RESULT_UNKNOWN_CHECKPOINT);
    CHECK(count == 12345); /* not written on failure */
    EXPECT(fdguard_open_since_fds(1, fds, 4, NULL), FDGUARD_RESULT_NULL_ARGUMENT);
    EXPECT(fdguard_open_since_fds(1, NULL, 4, &count), FDGUARD_RESULT_NULL_ARGUMENT);
    EXPECT(fdguard_open_since_fds(UINT64_MAX, fds, 4, &count), FDGUARD_RESULT_UNKNOWN_CHECKPOINT);
    EXPECT(fdguard_live_sockets(NULL), FDGUARD_RESULT_NULL_ARGUMENT);

    EXPECT(fdguard_label(-1, "x"), FDGUARD_RESULT_BAD_FD);
    EXPECT(fdguard_label(999999, "x"), FDGUARD_RESULT_NOT_TRACKED);
    EXPECT(fdguard_label(STDIN_FILENO, "x"), FDGUARD_RESULT_NOT_TRACKED);
    memset(long_label, 'x', sizeof long_label - 1);
    long_label[sizeof long_label - 1] = '\0';
    EXPECT(fdguard_label(tracked_fd, long_label), FDGUARD_RESULT_LABEL_TOO_LONG);
    long_label[FDGUARD_LABEL_MAX] = '\0'; /* exactly FDGUARD_LABEL_MAX bytes: accepted */
    EXPECT(fdguard_label(tracked_fd, long_label), FDGUARD_RESULT_OK);
    EXPECT(fdguard_label(tracked_fd, "two\nlines"), FDGUARD_RESULT_BAD_LABEL);
    EXPECT(fdguard_label(tracked_fd, "\xff\xfe not utf-8"), FDGUARD_RESULT_BAD_LABEL);
    EXPECT(fdguard_untrack(-1), FDGUARD_RESULT_BAD_FD);
    EXPECT(fdguard_untrack(999999), FDGUARD_RESULT_NOT_TRACKED);

    EXPECT(fdguard_report(42), FDGUARD_RESULT_BAD_FORMAT);
    EXPECT(fdguard_report_to_path(NULL, FDGUARD_FORMAT_JSON), FDGUARD_RESULT_NULL_ARGUMENT);
    EXPECT(fdguard_report_to_path("", FDGUARD_FORMAT_JSON), FDGUARD_RESULT_BAD_PATH);
    EXPECT(fdguard_report_to_path("/nonexistent-fdguard-dir/r.json", FDGUARD_FORMAT_JSON),
           FDGUARD_RESULT_NO_SUCH_DIRECTORY);
    EXPECT(fdguard_report_to_path("/tmp", FDGUARD_FORMAT_JSON), FDGUARD_RESULT_PATH_NOT_A_FILE);
    EXPECT(fdguard_report_to_path("/tmp/r.json", 7), FDGUARD_RESULT_BAD_FORMAT);
    EXPECT(fdguard_report_to_fd(-1, FDGUARD_FORMAT_TEXT), FDGUARD_RESULT_BAD_FD);
    EXPECT(fdguard_report_to_fd(999999, FDGUARD_FORMAT_TEXT), FDGUARD_RESULT_BAD_FD);
    EXPECT(fdguard_report_to_fd(STDOUT_FILENO, 3), FDGUARD_RESULT_BAD_FORMAT);

    CHECK(strcmp(fdguard_result_str(FDGUARD_RESULT_OK), "success") == 0);
    CHECK(strcmp(fdguard_result_str(1), "unknown fdguard result code") == 0);
    CHECK(id == 0);
}

int main(int argc, char **argv) {
    uint16_t port = 0;
    int listener, client_a, server_a, client_b, server_b, text_fd;
    uint64_t checkpoint = 0;
    size_t count = 0, live_before = 0, live_after = 0;
    int fds[8];

    if (argc != 3) {
        fprintf(stderr, "usage: %s REPORT.json REPORT.txt\n", argv[0]);
        return 2;
    }
#ifdef FDGUARD_WEAK_SYMBOLS
    if (fdguard_version == NULL) {
        fprintf(stderr, "c_client: fdguard is not loaded; run with LD_PRELOAD=libfdguard.so\n");
        return 3;
    }
#endif
    CHECK(strcmp(fdguard_version(), FDGUARD_VERSION) == 0);

    listener = listen_loopback(&port);
    client_a = connect_loopback(port);
    server_a = accept_one(listener);
    EXPECT(fdguard_label(client_a, BACKEND_LABEL), FDGUARD_RESULT_OK);
    /* The listener is meant to live as long as the program: keep it out of reports. */
    EXPECT(fdguard_untrack(listener), FDGUARD_RESULT_OK);
    EXPECT(fdguard_untrack(listener), FDGUARD_RESULT_OK);
    EXPECT(fdguard_label(listener, "listener"), FDGUARD_RESULT_NOT_TRACKED);

    EXPECT(fdguard_checkpoint(&checkpoint), FDGUARD_RESULT_OK);
    CHECK(checkpoint != 0);
    EXPECT(fdguard_open_since(checkpoint, &count), FDGUARD_RESULT_OK);
    CHECK(count == 0);

    EXPECT(fdguard_live_sockets(&live_before), FDGUARD_RESULT_OK);
    client_b = connect_loopback(port);
    server_b = accept_one(listener);
    EXPECT(fdguard_live_sockets(&live_after), FDGUARD_RESULT_OK);
    CHECK(live_after == live_before + 2);

    /* Both ends of the second connection were opened since the checkpoint. */
    EXPECT(fdguard_open_since(checkpoint, &count), FDGUARD_RESULT_OK);
    CHECK(count == 2);
    EXPECT(fdguard_open_since_fds(checkpoint, fds, 1, &count), FDGUARD_RESULT_BUFFER_TOO_SMALL);
    EXPECT(fdguard_open_since_fds(checkpoint, NULL, 0, &count), FDGUARD_RESULT_BUFFER_TOO_SMALL);
    count = 0;
    EXPECT(fdguard_open_since_fds(checkpoint, fds, 8, &count), FDGUARD_RESULT_OK);
    CHECK(count == 2 && contains(fds, count, client_b) && contains(fds, count, server_b));

    bad_arguments(client_b);

    close(client_b);
    close(server_b);
    EXPECT(fdguard_open_since(checkpoint, &count), FDGUARD_RESULT_OK);
    CHECK(count == 0);
    EXPECT(fdguard_open_since_fds(checkpoint, NULL, 0, &count), FDGUARD_RESULT_OK);
    CHECK(count == 0);
    EXPECT(fdguard_live_sockets(&count), FDGUARD_RESULT_OK);
    CHECK(count == live_before);
    EXPECT(fdguard_label(client_b, "closed"), FDGUARD_RESULT_NOT_TRACKED);

    EXPECT(fdguard_report_to_path(argv[1], FDGUARD_FORMAT_JSON), FDGUARD_RESULT_OK);
    text_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (text_fd < 0)
        die(argv[2]);
    EXPECT(fdguard_report_to_fd(text_fd, FDGUARD_FORMAT_TEXT), FDGUARD_RESULT_OK);
    close(text_fd);
    /* The place FDGUARD_REPORT names, in the format FDGUARD_FORMAT names. */
    EXPECT(fdguard_report(FDGUARD_FORMAT_CONFIGURED), FDGUARD_RESULT_OK);

    close(client_a);
    close(server_a);
    close(listener);
    if (failures != 0) {
        fprintf(stderr, "c_client: %d check(s) failed\n", failures);
        return 1;
    }
    printf("c_client: all checks passed (fdguard %s)\n", fdguard_version());
    return 0;
}
