// The metrics / probe endpoint (server/http_endpoint.h): the bytes a client
// sends to --metrics-address. Its request parsing is private to the endpoint,
// so the target goes through its socket: one HttpEndpoint on 127.0.0.1 (any
// free port) for the process; each input is sent on a new connection, the
// writing side is closed, and the response is read to the end (every response
// closes its connection, so the endpoint has finished with the input when the
// read ends).
//
// Checked: an input with no complete request gets no response; any other gets
// exactly one "HTTP/1.1 <code> " status line with a code the endpoint
// documents (200, 400, 404, 405, 431, 503, 505) and a Content-Length equal to
// the body's length (no body for HEAD).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "server/http_endpoint.h"

namespace wavepool::fuzz {
namespace {

server::HttpEndpoint& Endpoint() {
  // Stopped at exit (its destructor joins the endpoint's thread).
  static const std::unique_ptr<server::HttpEndpoint> endpoint = [] {
    server::HttpEndpointOptions options;
    options.address = "127.0.0.1:0";
    options.metrics = [] { return std::string("# TYPE up gauge\nup 1\n"); };
    options.ready = [] { return true; };
    absl::StatusOr<std::unique_ptr<server::HttpEndpoint>> e =
        server::HttpEndpoint::Start(std::move(options));
    if (!e.ok()) Fail(e.status().ToString());
    return *std::move(e);
  }();
  return *endpoint;
}

// Sends `request`, closes the writing side, returns everything the endpoint sent.
std::string Exchange(std::string_view request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(Endpoint().port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    Fail(absl::StrCat("connect failed: ", std::strerror(errno)));
  }
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the endpoint answered (431) and closed early
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string response;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

}  // namespace
}  // namespace wavepool::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)wavepool::fuzz::Endpoint();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using wavepool::fuzz::Require;
  const std::string_view request(reinterpret_cast<const char*>(data), size);
  const std::string response = wavepool::fuzz::Exchange(request);
  const bool complete = request.find("\n\n") != std::string_view::npos ||
                        request.find("\r\n\r\n") != std::string_view::npos;
  if (response.empty()) {
    Require(!complete, "a complete request got no response");
    Require(size <= 8192, "a request over max_header_bytes got no 431");
    return 0;
  }
  Require(response.starts_with("HTTP/1.1 ") && response.size() > 12 && response[12] == ' ',
          "the response does not start with a status line");
  const auto number = [](std::string_view s, size_t* out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size() && !s.empty();
  };
  size_t code = 0;
  Require(number(std::string_view(response).substr(9, 3), &code), "no status code");
  static const std::set<size_t> kCodes = {200, 400, 404, 405, 431, 503, 505};
  Require(kCodes.count(code) == 1, absl::StrCat("undocumented status ", code));
  const size_t end = response.find("\r\n\r\n");
  Require(end != std::string::npos, "the response has no end of headers");
  const size_t cl = response.find("\r\nContent-Length: ");
  Require(cl != std::string::npos && cl < end, "the response has no Content-Length");
  size_t length = 0;
  const size_t digits = cl + 18;
  Require(number(std::string_view(response).substr(digits, response.find('\r', digits) - digits),
                 &length),
          "Content-Length is not a number");
  const size_t body = response.size() - (end + 4);
  Require(body == length || (body == 0 && request.starts_with("HEAD ")),
          absl::StrCat("Content-Length ", length, " but a body of ", body));
  return 0;
}
