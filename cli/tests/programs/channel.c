/*
 * channel MODE PORT   — processes whose sockets reached them in every way but socket(2),
 * asked for reports through the request channel (cli/tests/channel_origins.rs).
 *
 *   reexec    connects to 127.0.0.1:PORT from connect_before_exec(), clears FD_CLOEXEC and
 *             re-executes itself as `channel reexec-child FD`: the new image holds only that
 *             inherited socket (found open when libfdguard.so loads).
 *   scm       makes a socketpair with a raw system call (fdguard never sees it), forks a
 *             child that connects two sockets to PORT and sends them over the pair
 *             (SCM_RIGHTS): one received with recvmsg() in receive_one(), one with recvmmsg()
 *             in receive_batch(). Also connects a socket made by a raw socket(2) system call
 *             (untracked), and closes a tracked one (at fd 40) with a raw close(2) (a close
 *             fdguard cannot see, as libuv makes).
 *   fdlimit   lowers RLIMIT_NOFILE to 64, connects from connect_at_the_limit(), then fills
 *             every free fd with /dev/null until EMFILE.
 *
 * Prints one JSON line on stdout when ready ({"pid":…, …}), then waits up to 30 s; SIGTERM
 * makes it exit(5) normally.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_term(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void die(const char *what) {
    perror(what);
    exit(90);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

static int connect_to(int port) {
    struct sockaddr_in addr = loopback(port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    return fd;
}

static int wait_for_term(void) {
    for (int i = 0; i < 600 && !stop_requested; i++) usleep(50 * 1000);
    return stop_requested ? 5 : 6;
}

__attribute__((noinline)) static int connect_before_exec(int port) {
    return connect_to(port);
}

__attribute__((noinline)) static int connect_at_the_limit(int port) {
    return connect_to(port);
}

/* The child's half of `scm`: two connected sockets, each in its own SCM_RIGHTS message. */
static void send_two(int via, int port) {
    for (int i = 0; i < 2; i++) {
        int fd = connect_to(port);
        char byte = 'x';
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        union {
            struct cmsghdr header;
            char space[CMSG_SPACE(sizeof(int))];
        } control;
        memset(&control, 0, sizeof control);
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.space;
        msg.msg_controllen = sizeof control.space;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        if (sendmsg(via, &msg, 0) != 1) die("sendmsg");
        close(fd);
    }
}

static int fd_of(struct msghdr *msg) {
    struct cmsghdr *c = CMSG_FIRSTHDR(msg);
    if (c == NULL || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

__attribute__((noinline)) static int receive_one(int via) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    char space[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space;
    msg.msg_controllen = sizeof space;
    if (recvmsg(via, &msg, 0) != 1) die("recvmsg");
    return fd_of(&msg);
}

__attribute__((noinline)) static int receive_batch(int via) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    char space[CMSG_SPACE(sizeof(int))];
    struct mmsghdr m;
    memset(&m, 0, sizeof m);
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
    m.msg_hdr.msg_control = space;
    m.msg_hdr.msg_controllen = sizeof space;
    if (recvmmsg(via, &m, 1, 0, NULL) != 1) die("recvmmsg");
    return fd_of(&m.msg_hdr);
}

__attribute__((noinline)) static int raw_socket_to(int port) {
    struct sockaddr_in addr = loopback(port);
    int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || syscall(SYS_connect, fd, &addr, sizeof addr) != 0) die("raw connect");
    return fd;
}

static int scm(int port) {
    int pair[2];
    if (syscall(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, pair) != 0) die("raw socketpair");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        close(pair[0]);
        send_two(pair[1], port);
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("sender");
    close(pair[1]);
    int one = receive_one(pair[0]);
    int batch = receive_batch(pair[0]);
    int raw = raw_socket_to(port);
    /* A tracked socket moved to a high number (dup2: tracked), then closed there by a raw
     * close(2). High, so that no descriptor fdguard opens for a report takes the number (the
     * lowest free one is always lower) and closes it, which would retire the record. */
    int first = connect_to(port);
    int gone = dup2(first, 40);
    if (gone != 40) die("dup2");
    close(first);
    if (syscall(SYS_close, gone) != 0) die("raw close");
    printf("{\"pid\":%d,\"recvmsg\":%d,\"recvmmsg\":%d,\"raw\":%d,\"pair\":%d,\"gone\":%d}\n",
           (int)getpid(), one, batch, raw, pair[0], gone);
    fflush(stdout);
    return wait_for_term();
}

static int fdlimit(int port) {
    struct rlimit lim = {.rlim_cur = 64, .rlim_max = 64};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) die("setrlimit");
    int fd = connect_at_the_limit(port);
    int filled = 0;
    for (;;) {
        int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (n < 0) break;
        filled++;
    }
    int err = errno;
    printf("{\"pid\":%d,\"fd\":%d,\"filled\":%d,\"errno\":%d}\n", (int)getpid(), fd, filled, err);
    fflush(stdout);
    return wait_for_term();
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: channel reexec|scm|fdlimit PORT\n");
        return 64;
    }
    signal(SIGTERM, on_term);
    int port = atoi(argv[2]);
    if (strcmp(argv[1], "reexec") == 0) {
        int fd = connect_before_exec(port);
        if (fcntl(fd, F_SETFD, 0) != 0) die("fcntl");
        char number[16];
        snprintf(number, sizeof number, "%d", fd);
        execl("/proc/self/exe", argv[0], "reexec-child", number, (char *)NULL);
        die("exec");
    }
    if (strcmp(argv[1], "reexec-child") == 0) {
        printf("{\"pid\":%d,\"fd\":%s}\n", (int)getpid(), argv[2]);
        fflush(stdout);
        return wait_for_term();
    }
    if (strcmp(argv[1], "scm") == 0) return scm(port);
    if (strcmp(argv[1], "fdlimit") == 0) return fdlimit(port);
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 64;
}
