/*
 * as_nobody PROGRAM [ARGS…]
 *
 * Drops every privilege (supplementary groups, gid and uid 65534, "nobody") and execs
 * PROGRAM: how a root test runs fdguard as an ordinary user who may not inspect root's
 * processes. Must be started as root.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: as_nobody PROGRAM [ARGS...]\n");
        return 64;
    }
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
        perror("as_nobody: dropping privileges");
        return 90;
    }
    execv(argv[1], argv + 1);
    perror("as_nobody: exec");
    return 91;
}
