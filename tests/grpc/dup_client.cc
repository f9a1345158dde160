// Duplicate-connection client scenario (grpc/grpc#38871 shape), C++ / libgrpc++ 1.51.1.
//
// Build:  g++ -std=c++17 -Wall -Wextra -O1 dup_client.cc $(pkg-config --cflags --libs grpc++) -o dup_client
//
// Usage:  dup_client TARGET [--wait-ms N | --wait-stdin] [--stdin-timeout-ms N]
//                           [--sample-ms N] [--api cq|callback] [--same-args]
//                           [--exit leak|close|hard]
//
// Two channels to TARGET with different ChannelArguments (so they do not share a
// subchannel) -> two TCP connections.  One call to /fdguard.Test/Echo on each via
// grpc::GenericStub (no codegen), then checkpoint "both_open".  Then wait for the server
// to go away: --wait-ms N sleeps N ms (sampling the original sockets' TCP state every
// --sample-ms, transitions go into the next checkpoint); --wait-stdin (default) waits
// for one line on stdin (bounded by --stdin-timeout-ms, default 60000).  Checkpoint
// "after_server_gone".  Exit: leak (default) = return from main without destroying the
// channels; close = destroy channels, checkpoint "after_close", then exit; hard = _exit(0).
//
// --api cq (default): PrepareUnaryCall + a private CompletionQueue that is shut down
//   after the call (nobody polls the channel afterwards).
// --api callback: GenericStub::UnaryCall with the callback API (global callback CQ).
//
// Checkpoint line (stdout, one JSON object per line, nothing else on stdout):
//   {"checkpoint":NAME,"pid":N,"kernel":[{"fd","inode","proto","local","remote","state"}..],
//    "report":PATH|null, ...}
// If FDGUARD_REPORT is set and FDGUARD_EXPECT_SHIM=1: raise(SIGUSR1) and wait (15 s,
// 20 ms poll) for FDGUARD_REPORT with %p -> pid, %n -> report sequence number (1-based).

#include <grpcpp/grpcpp.h>
#include <grpcpp/generic/generic_stub.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Sock {
  int fd = -1;
  unsigned long inode = 0;
  std::string proto;  // "" if unknown
  std::string local, remote, state;
};

const char* tcp_state_name(int st) {
  static const char* names[] = {"?",          "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
                                "FIN_WAIT1",  "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
                                "CLOSE_WAIT", "LAST_ACK",    "LISTEN",    "CLOSING",
                                "NEW_SYN_RECV"};
  if (st >= 1 && st <= 12) return names[st];
  return "?";
}

std::string decode_addr(const std::string& hex) {
  size_t colon = hex.find(':');
  if (colon == std::string::npos) return "";
  std::string ip = hex.substr(0, colon);
  unsigned port = static_cast<unsigned>(strtoul(hex.c_str() + colon + 1, nullptr, 16));
  unsigned char b[16];
  size_t n = ip.size() / 2;
  if (n != 4 && n != 16) return "";
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>(strtoul(ip.substr(2 * i, 2).c_str(), nullptr, 16));
  // /proc/net prints each 32-bit word in host (little-endian) order: reverse per word.
  unsigned char a[16];
  for (size_t w = 0; w < n / 4; ++w)
    for (int k = 0; k < 4; ++k) a[4 * w + k] = b[4 * w + 3 - k];
  char buf[INET6_ADDRSTRLEN];
  std::ostringstream out;
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (n == 4) {
    inet_ntop(AF_INET, a, buf, sizeof buf);
    out << buf << ':' << port;
  } else if (memcmp(a, mapped, 12) == 0) {
    inet_ntop(AF_INET, a + 12, buf, sizeof buf);
    out << buf << ':' << port;
  } else {
    inet_ntop(AF_INET6, a, buf, sizeof buf);
    out << '[' << buf << "]:" << port;
  }
  return out.str();
}

void read_tcp_table(const char* path, const char* proto, std::map<unsigned long, Sock>* out) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string sl, local, remote, st, txrx, tr, retr, uid, timeout;
    unsigned long inode = 0;
    if (!(ss >> sl >> local >> remote >> st >> txrx >> tr >> retr >> uid >> timeout >> inode)) continue;
    if (inode == 0) continue;
    Sock s;
    s.inode = inode;
    s.proto = proto;
    s.local = decode_addr(local);
    s.remote = decode_addr(remote);
    s.state = tcp_state_name(static_cast<int>(strtol(st.c_str(), nullptr, 16)));
    (*out)[inode] = s;
  }
}

std::vector<Sock> kernel_view() {
  std::vector<Sock> v;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return v;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string path = std::string("/proc/self/fd/") + e->d_name;
    char target[128];
    ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    unsigned long inode = 0;
    if (sscanf(target, "socket:[%lu]", &inode) != 1) continue;
    Sock s;
    s.fd = atoi(e->d_name);
    s.inode = inode;
    v.push_back(s);
  }
  closedir(d);
  std::map<unsigned long, Sock> table;
  read_tcp_table("/proc/self/net/tcp", "tcp", &table);
  read_tcp_table("/proc/self/net/tcp6", "tcp6", &table);
  for (auto& s : v) {
    auto it = table.find(s.inode);
    if (it != table.end()) {
      s.proto = it->second.proto;
      s.local = it->second.local;
      s.remote = it->second.remote;
      s.state = it->second.state;
    }
  }
  std::sort(v.begin(), v.end(), [](const Sock& a, const Sock& b) { return a.fd < b.fd; });
  return v;
}

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if (static_cast<unsigned char>(c) < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); o += b; }
    else o += c;
  }
  return o + "\"";
}

std::string json_opt(const std::string& s) { return s.empty() ? "null" : json_str(s); }

std::string kernel_json(const std::vector<Sock>& v) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < v.size(); ++i) {
    const Sock& s = v[i];
    if (i) o << ", ";
    o << "{\"fd\": " << s.fd << ", \"inode\": " << s.inode << ", \"proto\": " << json_opt(s.proto)
      << ", \"local\": " << json_opt(s.local) << ", \"remote\": " << json_opt(s.remote)
      << ", \"state\": " << json_opt(s.state) << '}';
  }
  o << ']';
  return o.str();
}

int g_report_seq = 0;

std::string expand_report_path(const std::string& tmpl, int seq) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '%' && i + 1 < tmpl.size()) {
      char n = tmpl[i + 1];
      if (n == 'p') { out += std::to_string(getpid()); ++i; continue; }
      if (n == 'n') { out += std::to_string(seq); ++i; continue; }
      if (n == '%') { out += '%'; ++i; continue; }
    }
    out += tmpl[i];
  }
  return out;
}

// Returns the report path or "" (no shim expected / timeout).
std::string request_report(std::string* err) {
  const char* tmpl = getenv("FDGUARD_REPORT");
  const char* expect = getenv("FDGUARD_EXPECT_SHIM");
  if (!tmpl || !*tmpl || !expect || strcmp(expect, "1") != 0) return "";
  ++g_report_seq;
  std::string path = expand_report_path(tmpl, g_report_seq);
  double timeout_s = 15.0;
  if (const char* t = getenv("FDGUARD_REPORT_TIMEOUT_S")) timeout_s = atof(t);
  raise(SIGUSR1);
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
  struct stat st;
  while (Clock::now() < deadline) {
    if (stat(path.c_str(), &st) == 0) return path;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *err = "timeout waiting for " + path;
  fprintf(stderr, "dup_client.cc: %s\n", err->c_str());
  return "";
}

std::vector<Sock> checkpoint(const std::string& name, const std::string& extra_json) {
  std::string err;
  std::string report = request_report(&err);
  std::vector<Sock> v = kernel_view();
  std::ostringstream o;
  o << "{\"checkpoint\": " << json_str(name) << ", \"pid\": " << getpid()
    << ", \"kernel\": " << kernel_json(v) << ", \"report\": " << json_opt(report);
  if (!report.empty()) o << ", \"report_seq\": " << g_report_seq;
  if (!err.empty()) o << ", \"report_error\": " << json_str(err);
  o << ", \"grpc_version\": " << json_str(grpc::Version());
  if (!extra_json.empty()) o << ", " << extra_json;
  o << "}\n";
  std::string line = o.str();
  fwrite(line.data(), 1, line.size(), stdout);
  fflush(stdout);
  return v;
}

bool ends_with_port(const std::string& addr, const std::string& port) {
  std::string suf = ":" + port;
  return addr.size() >= suf.size() && addr.compare(addr.size() - suf.size(), suf.size(), suf) == 0;
}

bool echo_cq(grpc::GenericStub* stub, const std::string& payload) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  grpc::Slice slice(payload);
  grpc::ByteBuffer req(&slice, 1), resp;
  grpc::Status status;
  auto call = stub->PrepareUnaryCall(&ctx, "/fdguard.Test/Echo", req, &cq);
  call->StartCall();
  call->Finish(&resp, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  bool got = cq.Next(&tag, &ok);  // bounded by the call deadline
  cq.Shutdown();
  void* t2;
  bool ok2;
  while (cq.Next(&t2, &ok2)) {
  }
  if (!got || !ok || !status.ok()) {
    fprintf(stderr, "dup_client.cc: Echo failed: %d %s\n", static_cast<int>(status.error_code()),
            status.error_message().c_str());
    return false;
  }
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string out;
  for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out == payload;
}

bool echo_callback(grpc::GenericStub* stub, const std::string& payload) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(payload);
  grpc::ByteBuffer req(&slice, 1), resp;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub->UnaryCall(&ctx, "/fdguard.Test/Echo", grpc::StubOptions(), &req, &resp,
                  [&](grpc::Status s) {
                    std::lock_guard<std::mutex> l(mu);
                    status = s;
                    done = true;
                    cv.notify_all();
                  });
  std::unique_lock<std::mutex> l(mu);
  if (!cv.wait_for(l, std::chrono::seconds(15), [&] { return done; })) {
    fprintf(stderr, "dup_client.cc: callback Echo did not complete\n");
    // ctx/resp would be referenced after return: do not return, fail hard.
    _exit(3);
  }
  if (!status.ok()) {
    fprintf(stderr, "dup_client.cc: Echo failed: %d %s\n", static_cast<int>(status.error_code()),
            status.error_message().c_str());
    return false;
  }
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string out;
  for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out == payload;
}

void usage() {
  fprintf(stderr,
          "usage: dup_client TARGET [--wait-ms N | --wait-stdin] [--stdin-timeout-ms N] "
          "[--sample-ms N] [--api cq|callback] [--same-args] [--exit leak|close|hard]\n");
  exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  std::string target = argv[1];
  long wait_ms = -1;  // -1: wait for a stdin line
  long stdin_timeout_ms = 60000;
  long sample_ms = 50;
  std::string api = "cq", exit_mode = "leak";
  bool same_args = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--wait-ms") wait_ms = atol(next().c_str());
    else if (a == "--wait-stdin") wait_ms = -1;
    else if (a == "--stdin-timeout-ms") stdin_timeout_ms = atol(next().c_str());
    else if (a == "--sample-ms") sample_ms = atol(next().c_str());
    else if (a == "--api") api = next();
    else if (a == "--same-args") same_args = true;
    else if (a == "--exit") exit_mode = next();
    else usage();
  }
  if ((api != "cq" && api != "callback") ||
      (exit_mode != "leak" && exit_mode != "close" && exit_mode != "hard"))
    usage();
  std::string port = target.substr(target.rfind(':') + 1);

  grpc::ChannelArguments args_a, args_b;
  args_a.SetString("grpc.primary_user_agent", "fdguard-a");
  args_a.SetInt("fdguard.channel_id", 1);
  args_b.SetString("grpc.primary_user_agent", same_args ? "fdguard-a" : "fdguard-b");
  args_b.SetInt("fdguard.channel_id", same_args ? 1 : 2);
  auto creds = grpc::InsecureChannelCredentials();
  auto* ch_a = new std::shared_ptr<grpc::Channel>(grpc::CreateCustomChannel(target, creds, args_a));
  auto* ch_b = new std::shared_ptr<grpc::Channel>(grpc::CreateCustomChannel(target, creds, args_b));
  auto* stub_a = new grpc::GenericStub(*ch_a);
  auto* stub_b = new grpc::GenericStub(*ch_b);
  fprintf(stderr, "dup_client.cc: grpc %s target %s api %s pid %d\n", grpc::Version().c_str(),
          target.c_str(), api.c_str(), getpid());

  auto echo = api == "cq" ? echo_cq : echo_callback;
  if (!echo(stub_a, "a") || !echo(stub_b, "b")) {
    fprintf(stderr, "dup_client.cc: calls failed\n");
    return 1;
  }

  std::vector<Sock> v = checkpoint("both_open", "\"api\": " + json_str(api));
  std::vector<unsigned long> inodes;
  for (auto& s : v)
    if (!s.proto.empty() && ends_with_port(s.remote, port)) inodes.push_back(s.inode);
  fprintf(stderr, "dup_client.cc: %zu connection(s) to port %s\n", inodes.size(), port.c_str());

  // Wait for the server to go away, sampling the original sockets.
  auto t0 = Clock::now();
  std::ostringstream trans;
  trans << '[';
  bool first = true;
  std::string last;
  auto sample = [&]() {
    std::vector<Sock> cur = kernel_view();
    std::ostringstream st;
    st << '{';
    for (size_t i = 0; i < inodes.size(); ++i) {
      std::string state = "CLOSED_FD";
      for (auto& s : cur)
        if (s.inode == inodes[i]) state = s.state.empty() ? "" : s.state;
      if (i) st << ", ";
      st << "\"" << inodes[i] << "\": " << json_opt(state);
    }
    st << '}';
    if (st.str() != last) {
      double t = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!first) trans << ", ";
      first = false;
      trans << "{\"t\": " << static_cast<long>(t * 1000) / 1000.0 << ", \"states\": " << st.str() << '}';
      fprintf(stderr, "dup_client.cc: t=%.3fs %s\n", t, st.str().c_str());
      last = st.str();
    }
  };
  sample();
  if (wait_ms >= 0) {
    auto deadline = t0 + std::chrono::milliseconds(wait_ms);
    while (Clock::now() < deadline) {
      auto step = std::chrono::milliseconds(sample_ms > 0 ? sample_ms : wait_ms + 1);
      auto left = deadline - Clock::now();
      std::this_thread::sleep_for(left < step ? left : step);
      if (sample_ms > 0) sample();
    }
  } else {
    // One line on stdin (or EOF), bounded by stdin_timeout_ms; sample meanwhile.
    auto deadline = t0 + std::chrono::milliseconds(stdin_timeout_ms);
    bool got = false;
    while (!got && Clock::now() < deadline) {
      struct pollfd p = {0, POLLIN, 0};
      int r = poll(&p, 1, sample_ms > 0 ? static_cast<int>(sample_ms) : 100);
      if (r > 0) {
        char c;
        while (read(0, &c, 1) == 1 && c != '\n') {
        }
        got = true;
      }
      if (sample_ms > 0) sample();
    }
    if (!got) fprintf(stderr, "dup_client.cc: stdin wait timed out\n");
  }
  trans << ']';
  std::ostringstream extra;
  extra << "\"api\": " << json_str(api) << ", \"transitions\": " << trans.str();
  checkpoint("after_server_gone", extra.str());

  if (exit_mode == "close") {
    delete stub_a;
    delete stub_b;
    delete ch_a;
    delete ch_b;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    checkpoint("after_close", "\"api\": " + json_str(api));
  } else if (exit_mode == "hard") {
    fflush(stdout);
    fflush(stderr);
    _exit(0);
  }
  // leak: channels/stubs intentionally never destroyed.
  return 0;
}
