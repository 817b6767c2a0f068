// The HTTP endpoint on 127.0.0.1:0, spoken to with a raw socket client so every
// byte of the request and the response is the test's own. Client sockets carry
// a 20 s receive timeout: a server that hangs fails the test instead of
// hanging it (no test waits for that long when the server is right).
#include "server/http_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics.h"

namespace wavepool::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A connected client socket, closed on destruction.
class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{.tv_sec = 20, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }
  // Ends the client's sending side (the server reads end of stream).
  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Everything until the server closes; "TIMEOUT" appended if it never does.
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    while (true) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) out += "TIMEOUT";
      return out;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string Exchange(int port, std::string_view request) {
  Client c(port);
  if (!c.connected()) return "CONNECT FAILED";
  if (!c.Send(request)) return "SEND FAILED";
  return c.ReadAll();
}

std::string Get(int port, std::string_view path) {
  return Exchange(port, std::string("GET ") + std::string(path) +
                            " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n");
}

std::string Body(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "NO BODY" : response.substr(end + 4);
}

struct Fixture {
  std::atomic<bool> ready{false};
  std::atomic<int> scrapes{0};
  std::unique_ptr<HttpEndpoint> endpoint;

  explicit Fixture(double read_timeout_s = 5) {
    HttpEndpointOptions o;
    o.address = "127.0.0.1:0";
    o.read_timeout_s = read_timeout_s;
    o.metrics = [this] {
      ++scrapes;
      return std::string("# TYPE up gauge\nup 1\n");
    };
    o.ready = [this] { return ready.load(); };
    absl::StatusOr<std::unique_ptr<HttpEndpoint>> ep = HttpEndpoint::Start(std::move(o));
    EXPECT_TRUE(ep.ok()) << ep.status();
    if (ep.ok()) endpoint = *std::move(ep);
  }
  int port() const { return endpoint ? endpoint->port() : 0; }
};

TEST(HttpEndpoint, MetricsHasPrometheusContentTypeAndCallbackBody) {
  Fixture f;
  ASSERT_NE(f.port(), 0);
  EXPECT_EQ(Get(f.port(), "/metrics"),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 21\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n"
            "\r\n"
            "# TYPE up gauge\nup 1\n");
  EXPECT_EQ(f.scrapes.load(), 1);
}

TEST(HttpEndpoint, HeadHasTheHeadersOfGetAndNoBody) {
  Fixture f;
  const std::string r =
      Exchange(f.port(), "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 21\r\n"));
  EXPECT_EQ(Body(r), "");
}

TEST(HttpEndpoint, ServesServerMetricsRender) {
  absl::StatusOr<std::unique_ptr<ServerMetrics>> m = ServerMetrics::Create("test");
  ASSERT_TRUE(m.ok());
  (*m)->ForModel("digits", 1).windows_total->Increment(5);
  HttpEndpointOptions o;
  o.address = "127.0.0.1:0";
  o.metrics = [&m] { return (*m)->Render(); };
  auto ep = HttpEndpoint::Start(std::move(o));
  ASSERT_TRUE(ep.ok()) << ep.status();
  const std::string body = Body(Get((*ep)->port(), "/metrics"));
  EXPECT_EQ(body, (*m)->Render());
  EXPECT_THAT(body, HasSubstr("wavepool_windows_total{model=\"digits\",version=\"1\"} 5\n"));
}

TEST(HttpEndpoint, HealthzIsOkAndQueryStringsAreIgnored) {
  Fixture f;
  const std::string r = Get(f.port(), "/healthz");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(Body(r), "ok\n");
  EXPECT_THAT(Get(f.port(), "/healthz?verbose=1"), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(HttpEndpoint, ReadyzFollowsTheCallback) {
  Fixture f;
  std::string r = Get(f.port(), "/readyz");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_EQ(Body(r), "not ready\n");
  f.ready = true;
  r = Get(f.port(), "/readyz");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(Body(r), "ready\n");
}

TEST(HttpEndpoint, UnknownPathIs404) {
  Fixture f;
  EXPECT_THAT(Get(f.port(), "/"), StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(Get(f.port(), "/metricsx"), StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_EQ(f.scrapes.load(), 0);
}

TEST(HttpEndpoint, OtherMethodsAre405EvenWithAnUnreadBody) {
  Fixture f;
  std::string r = Exchange(f.port(), "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(r, HasSubstr("Allow: GET, HEAD\r\n"));
  // 64 KiB of body the server never reads: it drains it after answering, so
  // the client still gets the 405 rather than a connection reset.
  const std::string body(64 << 10, 'x');
  r = Exchange(f.port(), "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n" +
                             body);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_EQ(f.scrapes.load(), 0);
}

TEST(HttpEndpoint, OversizedHeadersAre431) {
  Fixture f;
  const std::string big(9000, 'a');
  std::string r =
      Exchange(f.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  // A request line alone over the limit, never ended.
  r = Exchange(f.port(), "GET /" + big);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  // Just under the limit is fine: 8192 bytes in all, blank line included.
  const std::string head = "GET /healthz HTTP/1.1\r\nX-Pad: ";
  const std::string pad(8192 - head.size() - 4, 'p');
  r = Exchange(f.port(), head + pad + "\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(f.scrapes.load(), 0);
}

TEST(HttpEndpoint, MalformedRequestLinesAre400And505) {
  Fixture f;
  EXPECT_THAT(Exchange(f.port(), "GARBAGE\r\n\r\n"), StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(Exchange(f.port(), "GET  /healthz HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(Exchange(f.port(), "GET /healthz FTP/1.0\r\n\r\n"),
              StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(Exchange(f.port(), "GET /healthz HTTP/2.0\r\n\r\n"),
              StartsWith("HTTP/1.1 505 HTTP Version Not Supported\r\n"));
  // Bare LF line ends (nc, hand-typed requests) are accepted.
  EXPECT_THAT(Exchange(f.port(), "GET /healthz HTTP/1.0\n\n"), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(HttpEndpoint, RequestArrivingInPiecesIsAssembled) {
  Fixture f;
  Client c(f.port());
  ASSERT_TRUE(c.connected());
  for (std::string_view piece : {"GE", "T /hea", "lthz HTTP/1.1\r", "\nHost: x\r\n", "\r\n"}) {
    ASSERT_TRUE(c.Send(piece));
  }
  EXPECT_THAT(c.ReadAll(), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(HttpEndpoint, ClientThatHalfClosesAfterItsRequestGetsTheResponse) {
  // Found by fuzz/http_fuzzer: when a whole request and the end of the
  // client's stream (shutdown(SHUT_WR), `nc -N`) were both waiting by the time
  // the endpoint read, it closed the connection unanswered. A scrape whose
  // callback holds the endpoint's thread makes them both wait.
  std::promise<void> in_callback, release;
  std::shared_future<void> released = release.get_future().share();
  HttpEndpointOptions o;
  o.address = "127.0.0.1:0";
  o.metrics = [&] {
    in_callback.set_value();
    released.wait();
    return std::string("up 1\n");
  };
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> ep = HttpEndpoint::Start(std::move(o));
  ASSERT_TRUE(ep.ok()) << ep.status();
  const int port = (*ep)->port();
  std::thread scrape([port] { EXPECT_THAT(Get(port, "/metrics"), StartsWith("HTTP/1.1 200 OK")); });
  in_callback.get_future().wait();
  Client whole(port), partial(port);
  ASSERT_TRUE(whole.connected() && partial.connected());
  ASSERT_TRUE(whole.Send("GET /healthz HTTP/1.0\r\n\r\n"));
  whole.ShutdownWrite();
  ASSERT_TRUE(partial.Send("GET /healthz HTTP/1.0\r\n"));
  partial.ShutdownWrite();
  release.set_value();
  EXPECT_THAT(whole.ReadAll(), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(partial.ReadAll(), "");  // half a request, then the end: closed, no answer
  scrape.join();
}

TEST(HttpEndpoint, SilentClientDoesNotBlockTheNextRequest) {
  // A 10-minute read timeout: had the server served connections one at a
  // time, the request below would wait for it and the client's 20 s receive
  // timeout would fail the test.
  Fixture f(/*read_timeout_s=*/600);
  Client silent(f.port());
  ASSERT_TRUE(silent.connected());
  Client half(f.port());
  ASSERT_TRUE(half.connected());
  ASSERT_TRUE(half.Send("GET /metr"));  // and never the rest
  EXPECT_THAT(Get(f.port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(Get(f.port(), "/metrics"), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(HttpEndpoint, SilentClientIsDroppedWith408AfterTheReadTimeout) {
  Fixture f(/*read_timeout_s=*/0.2);
  Client silent(f.port());
  ASSERT_TRUE(silent.connected());
  EXPECT_THAT(silent.ReadAll(), StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
}

TEST(HttpEndpoint, ManySequentialAndConcurrentRequests) {
  Fixture f;
  for (int i = 0; i < 200; ++i) {
    ASSERT_THAT(Get(f.port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n")) << "request " << i;
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (Get(f.port(), "/metrics") ==
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 21\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            "# TYPE up gauge\nup 1\n") {
          ++ok;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
  EXPECT_EQ(f.scrapes.load(), 400);
}

TEST(HttpEndpoint, LargeBodyIsSentWhole) {
  const std::string big(1 << 20, 'm');  // larger than a socket buffer: needs POLLOUT rounds
  HttpEndpointOptions o;
  o.address = "127.0.0.1:0";
  o.metrics = [&big] { return big; };
  auto ep = HttpEndpoint::Start(std::move(o));
  ASSERT_TRUE(ep.ok()) << ep.status();
  const std::string r = Get((*ep)->port(), "/metrics");
  EXPECT_THAT(r, HasSubstr("Content-Length: 1048576\r\n"));
  EXPECT_TRUE(Body(r) == big) << "body of " << Body(r).size() << " bytes differs";
}

TEST(HttpEndpoint, ThrowingCallbackIs500AndTheEndpointLivesOn) {
  HttpEndpointOptions o;
  o.address = "127.0.0.1:0";
  o.metrics = []() -> std::string { throw std::runtime_error("scrape failed"); };
  o.ready = []() -> bool { throw 42; };
  auto ep = HttpEndpoint::Start(std::move(o));
  ASSERT_TRUE(ep.ok()) << ep.status();
  const std::string r = Get((*ep)->port(), "/metrics");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 500 Internal Server Error\r\n"));
  EXPECT_EQ(Body(r), "scrape failed\n");
  EXPECT_THAT(Get((*ep)->port(), "/readyz"), StartsWith("HTTP/1.1 500 Internal Server Error\r\n"));
  EXPECT_THAT(Get((*ep)->port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(HttpEndpoint, StopClosesConnectionsAndTheListener) {
  Fixture f(/*read_timeout_s=*/600);
  const int port = f.port();
  Client idle(port);
  ASSERT_TRUE(idle.connected());
  ASSERT_THAT(Get(port, "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));  // idle is accepted by now
  f.endpoint->Stop();
  EXPECT_EQ(idle.ReadAll(), "") << "closed without a response";
  EXPECT_EQ(Get(port, "/healthz"), "CONNECT FAILED");
  f.endpoint->Stop();  // idempotent
}

TEST(HttpEndpoint, BadAddressesAreInvalidArgument) {
  for (const char* address : {"", "nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http",
                              "127.0.0.1:65536", "127.0.0.1:-1", "::1:9090"}) {
    HttpEndpointOptions o;
    o.address = address;
    auto ep = HttpEndpoint::Start(std::move(o));
    EXPECT_EQ(ep.status().code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_THAT(std::string(ep.status().message()), HasSubstr("expected HOST:PORT")) << address;
  }
  HttpEndpointOptions o;
  o.address = "127.0.0.1:0";
  o.read_timeout_s = 0;
  EXPECT_EQ(HttpEndpoint::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpEndpoint, PortInUseAndForeignHostAreUnavailable) {
  Fixture f;
  HttpEndpointOptions o;
  o.address = "127.0.0.1:" + std::to_string(f.port());
  auto taken = HttpEndpoint::Start(o);
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(taken.status().message()), HasSubstr("already in use"));
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
  o.address = "192.0.2.1:0";
  auto foreign = HttpEndpoint::Start(o);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr("not an address of this machine"));
}

TEST(HttpEndpoint, BracketedIpv6AndWildcardHostsListen) {
  HttpEndpointOptions o;
  o.address = "*:0";
  auto any = HttpEndpoint::Start(o);
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_THAT(Get((*any)->port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  o.address = "[::1]:0";
  auto v6 = HttpEndpoint::Start(o);
  if (!v6.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << v6.status();
  EXPECT_GT((*v6)->port(), 0);
}

}  // namespace
}  // namespace wavepool::server
