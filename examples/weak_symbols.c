/*
 * weak_symbols.c - call fdguard only when it is present.
 *
 * Built WITHOUT -lfdguard. Run normally, it prints "fdguard: absent" and does its work; run
 * with LD_PRELOAD=libfdguard.so, it prints "fdguard: present", wraps its work in a checkpoint,
 * checks that the work closed what it opened, and writes a JSON report to the path given as
 * its first argument (if any).
 *
 *     cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude examples/weak_symbols.c -o weak
 *     ./weak                                                  # fdguard: absent
 *     LD_PRELOAD=target/debug/libfdguard.so ./weak report.json   # fdguard: present
 *
 * Exit status 0 on success, 1 when a check failed.
 */
#define _POSIX_C_SOURCE 200809L

/* Declare every fdguard function weak: its address is NULL unless a loaded library defines it. */
#define FDGUARD_WEAK_SYMBOLS
#include "fdguard.h"

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* Check every function the program calls: an older library may lack newer ones. */
static int fdguard_present(void) {
    return fdguard_version != NULL && fdguard_checkpoint != NULL && fdguard_open_since != NULL &&
           fdguard_label != NULL && fdguard_report_to_path != NULL &&
           fdguard_result_str != NULL;
}

/* The "work": open two sockets, name one, close both. */
static int work(int with_fdguard) {
    int a = socket(AF_INET, SOCK_STREAM, 0);
    int b = socket(AF_INET, SOCK_DGRAM, 0);
    if (a < 0 || b < 0) {
        perror("socket");
        return 1;
    }
    if (with_fdguard && fdguard_label(a, "weak-symbols/work") != FDGUARD_RESULT_OK) {
        fprintf(stderr, "weak_symbols: fdguard_label failed\n");
        return 1;
    }
    close(a);
    close(b);
    return 0;
}

int main(int argc, char **argv) {
    uint64_t checkpoint = 0;
    size_t open_during = 0, still_open = 0;
    fdguard_result rc;
    int leak;

    if (!fdguard_present()) {
        printf("fdguard: absent\n");
        return work(0);
    }
    printf("fdguard: present (version %s)\n", fdguard_version());
    rc = fdguard_checkpoint(&checkpoint);
    if (rc != FDGUARD_RESULT_OK) {
        fprintf(stderr, "weak_symbols: fdguard_checkpoint: %s\n", fdguard_result_str(rc));
        return 1;
    }
    /* One socket left open on purpose, so the report has something to show. */
    leak = socket(AF_INET, SOCK_STREAM, 0);
    if (leak < 0 || fdguard_label(leak, "weak-symbols/kept") != FDGUARD_RESULT_OK)
        return 1;
    if (fdguard_open_since(checkpoint, &open_during) != FDGUARD_RESULT_OK || open_during != 1) {
        fprintf(stderr, "weak_symbols: expected 1 socket open since the checkpoint, got %zu\n",
                open_during);
        return 1;
    }
    if (work(1) != 0)
        return 1;
    rc = fdguard_open_since(checkpoint, &still_open);
    if (rc != FDGUARD_RESULT_OK || still_open != 1) {
        fprintf(stderr, "weak_symbols: work() leaked sockets (%zu open since the checkpoint)\n",
                still_open);
        return 1;
    }
    if (argc > 1) {
        rc = fdguard_report_to_path(argv[1], FDGUARD_FORMAT_JSON);
        if (rc != FDGUARD_RESULT_OK) {
            fprintf(stderr, "weak_symbols: report to %s: %s\n", argv[1], fdguard_result_str(rc));
            return 1;
        }
        printf("report written to %s\n", argv[1]);
    }
    close(leak);
    return 0;
}
