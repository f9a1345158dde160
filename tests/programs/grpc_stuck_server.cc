// A C++ gRPC server (Debian's libgrpc++ 1.51.1, callback API, no codegen) with the bug of a
// streaming handler that never watches for cancellation: /fdguard.Test/Watch answers the first
// message, then neither reads, writes nor finishes, and ignores OnCancel. When such a client
// dies (SIGKILL), the transport shuts its socket down but the unfinished call keeps the
// transport, so the server's fd stays open in state CLOSE, which `ss -t` does not even show.
// /fdguard.Test/Echo is a correct handler (echo each message, finish when the client does).
//
// Prints {"listening":PORT} on stdout, then serves until stdin reaches EOF, and leaves with
// _exit(0): a server with unfinished calls cannot shut down cleanly (that is the bug).
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

namespace {

class Echo final : public grpc::ServerGenericBidiReactor {
 public:
  Echo() { StartRead(&message_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    StartWrite(&message_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    StartRead(&message_);
  }
  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer message_;
};

// THE BUG, on purpose: after the first answer nothing happens on this call any more, and a
// cancellation (the client went away) is ignored, so the call never finishes.
class Watch final : public grpc::ServerGenericBidiReactor {
 public:
  Watch() { StartRead(&message_); }
  void OnReadDone(bool ok) override {
    if (ok) StartWrite(&message_);
  }
  void OnWriteDone(bool /*ok*/) override {}
  void OnCancel() override {}
  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer message_;
};

class Service final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    if (context->method() == "/fdguard.Test/Watch") return new Watch();
    return new Echo();
  }
};

}  // namespace

int main() {
  Service service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "grpc_stuck_server: cannot listen\n");
    return 2;
  }
  std::printf("{\"listening\":%d}\n", port);
  std::fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
  }
  _exit(0);
}
