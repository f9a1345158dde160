// cpp_client.cpp - the fdguard C API from C++, against a loopback backend.
//
// The same scenario as c_client.c, written the way a C++ gRPC wrapper would: sockets owned by
// an RAII class, each client connection named after its "subchannel" with fdguard_label(), a
// checkpoint around a unit of work, and a JSON report written at the end.
//
// Build and run (linked):
//     cargo build -p fdguard
//     c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -o cpp_client
//         examples/cpp_client.cpp -Ltarget/debug -lfdguard     (one line)
//     LD_LIBRARY_PATH=target/debug ./cpp_client report.json
//
// Exit status 0 when every check passed; otherwise 1, with one line per failed check on stderr.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "fdguard.h"

namespace {

// The label the test looks for in the JSON report.
const char *const kSubchannelLabel = "cpp-client/subchannel-7";

int failures = 0;

void check_rc(int line, const char *call, fdguard_result got, fdguard_result want) {
    if (got != want) {
        std::fprintf(stderr, "cpp_client.cpp:%d: %s returned %u (%s), expected %u (%s)\n", line,
                     call, static_cast<unsigned>(got), fdguard_result_str(got),
                     static_cast<unsigned>(want), fdguard_result_str(want));
        failures++;
    }
}

void check(int line, const char *what, bool ok) {
    if (!ok) {
        std::fprintf(stderr, "cpp_client.cpp:%d: check failed: %s\n", line, what);
        failures++;
    }
}

#define EXPECT(call, want) check_rc(__LINE__, #call, (call), (want))
#define CHECK(cond) check(__LINE__, #cond, (cond))

[[noreturn]] void die(const char *what) {
    std::perror(what);
    std::exit(2);
}

// Owns one socket fd.
class Socket {
  public:
    explicit Socket(int fd) : fd_(fd) {
        if (fd_ < 0)
            die("socket");
    }
    Socket(Socket &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Socket(const Socket &) = delete;
    Socket &operator=(const Socket &) = delete;
    Socket &operator=(Socket &&) = delete;
    ~Socket() { reset(); }

    int fd() const { return fd_; }
    void reset() {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
}

Socket listen_loopback(std::uint16_t &port) {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (::bind(s.fd(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        die("bind");
    if (::listen(s.fd(), 16) != 0)
        die("listen");
    if (::getsockname(s.fd(), reinterpret_cast<sockaddr *>(&addr), &len) != 0)
        die("getsockname");
    port = ntohs(addr.sin_port);
    return s;
}

Socket connect_loopback(std::uint16_t port) {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = loopback(port);
    if (::connect(s.fd(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        die("connect");
    return s;
}

// The fds fdguard says were opened since `checkpoint`, sized the documented way.
std::vector<int> open_since(std::uint64_t checkpoint) {
    for (int attempt = 0; attempt < 5; attempt++) {
        std::size_t count = 0;
        EXPECT(fdguard_open_since(checkpoint, &count), FDGUARD_RESULT_OK);
        std::vector<int> fds(count + 8);
        fdguard_result rc = fdguard_open_since_fds(checkpoint, fds.data(), fds.size(), &count);
        if (rc == FDGUARD_RESULT_OK) {
            fds.resize(count);
            return fds;
        }
        EXPECT(rc, FDGUARD_RESULT_BUFFER_TOO_SMALL);
    }
    check(__LINE__, "open_since: the buffer never fit", false);
    return {};
}

bool contains(const std::vector<int> &fds, int fd) {
    for (int f : fds)
        if (f == fd)
            return true;
    return false;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s REPORT.json\n", argv[0]);
        return 2;
    }
    CHECK(std::string(fdguard_version()) == FDGUARD_VERSION);

    std::uint16_t port = 0;
    Socket listener = listen_loopback(port);
    EXPECT(fdguard_untrack(listener.fd()), FDGUARD_RESULT_OK);

    Socket subchannel = connect_loopback(port);
    Socket backend_side(::accept(listener.fd(), nullptr, nullptr));
    EXPECT(fdguard_label(subchannel.fd(), kSubchannelLabel), FDGUARD_RESULT_OK);

    std::uint64_t checkpoint = 0;
    EXPECT(fdguard_checkpoint(&checkpoint), FDGUARD_RESULT_OK);
    {
        Socket retry = connect_loopback(port);
        Socket retry_backend(::accept(listener.fd(), nullptr, nullptr));
        EXPECT(fdguard_label(retry.fd(), "cpp-client/retry"), FDGUARD_RESULT_OK);
        std::vector<int> opened = open_since(checkpoint);
        CHECK(opened.size() == 2);
        CHECK(contains(opened, retry.fd()) && contains(opened, retry_backend.fd()));
    }
    // Both sockets of the unit of work were closed by their destructors.
    CHECK(open_since(checkpoint).empty());

    std::size_t live = 0;
    EXPECT(fdguard_live_sockets(&live), FDGUARD_RESULT_OK);
    CHECK(live >= 2);

    // A few bad arguments, C++ side.
    EXPECT(fdguard_label(subchannel.fd(), std::string(FDGUARD_LABEL_MAX + 1, 'x').c_str()),
           FDGUARD_RESULT_LABEL_TOO_LONG);
    EXPECT(fdguard_checkpoint(nullptr), FDGUARD_RESULT_NULL_ARGUMENT);
    EXPECT(fdguard_open_since(checkpoint + 1000, &live), FDGUARD_RESULT_UNKNOWN_CHECKPOINT);
    EXPECT(fdguard_report_to_path(nullptr, FDGUARD_FORMAT_JSON), FDGUARD_RESULT_NULL_ARGUMENT);

    EXPECT(fdguard_report_to_path(argv[1], FDGUARD_FORMAT_JSON), FDGUARD_RESULT_OK);

    if (failures != 0) {
        std::fprintf(stderr, "cpp_client: %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("cpp_client: all checks passed (fdguard %s)\n", fdguard_version());
    return 0;
}
