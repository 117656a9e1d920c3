// The baseline of the cluster-messages benchmark (benchmarks/run): CAF's
// remote send with no batching, each message acknowledged before the next
// (what a sender that must know each message arrived does without an
// outbox), over the middleman on loopback, between two processes.
//
//   bench_caf_remote serve PORT            answers each string with its size
//   bench_caf_remote send HOST PORT N BYTES  sends N strings of BYTES, one at
//                                           a time; prints {"messages","seconds","rate"}
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

caf::behavior echo_size(caf::event_based_actor*) {
  return {[](const std::string& s) { return static_cast<uint64_t>(s.size()); }};
}

int serve(caf::actor_system& sys, uint16_t port) {
  auto a = sys.spawn(echo_size);
  auto bound = sys.middleman().publish(a, port, "127.0.0.1", true);
  if (!bound) {
    std::fprintf(stderr, "publish: %s\n", sys.render(bound.error()).c_str());
    return 1;
  }
  std::printf("%u\n", *bound);
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

int send(caf::actor_system& sys, const char* host, uint16_t port, long n, long bytes) {
  auto remote = sys.middleman().remote_actor(host, port);
  if (!remote) {
    std::fprintf(stderr, "connect: %s\n", sys.render(remote.error()).c_str());
    return 1;
  }
  caf::scoped_actor self{sys};
  const std::string payload(static_cast<std::size_t>(bytes), 'x');
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    bool ok = false;
    self->request(*remote, std::chrono::seconds(10), payload)
        .receive([&](uint64_t) { ok = true; }, [&](caf::error&) {});
    if (!ok) {
      std::fprintf(stderr, "message %ld was not answered\n", i);
      return 1;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"messages\":%ld,\"seconds\":%.6f,\"rate\":%.1f}\n", n, secs, double(n) / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  if (argc == 3 && std::string(argv[1]) == "serve") return serve(sys, static_cast<uint16_t>(std::atoi(argv[2])));
  if (argc == 6 && std::string(argv[1]) == "send")
    return send(sys, argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atol(argv[4]), std::atol(argv[5]));
  std::fprintf(stderr, "usage: bench_caf_remote serve PORT | send HOST PORT N BYTES\n");
  return 2;
}
