#include "server/http_endpoint.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/metrics.h"

namespace wavepool::server {
namespace {

using Clock = std::chrono::steady_clock;

// After the response, the connection is half-closed and the client's leftover
// bytes (an oversized header, a body we never read) are drained for up to this
// long before close: closing with unread input sends RST, which can destroy the
// response before the client reads it.
constexpr auto kMaxDrain = std::chrono::milliseconds(1000);

// How long the listener rests after accept() ran out of descriptors or memory.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

bool SetNonBlockingCloexec(int fd) {
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return false;
  const int fdfl = fcntl(fd, F_GETFD);
  return fdfl >= 0 && fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) >= 0;
}

struct HostPort {
  std::string host;  // "" = every interface
  std::string port;
};

absl::StatusOr<HostPort> SplitAddress(std::string_view address) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", std::string(address), "\" ", std::string(why),
        "; expected HOST:PORT, e.g. 0.0.0.0:9090, [::]:9090 or 127.0.0.1:0"));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return bad("has no port");
  HostPort hp;
  std::string_view host = address.substr(0, colon);
  const std::string_view port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad("has an IPv6 host without [brackets]");
  }
  if (host != "*") hp.host = std::string(host);
  uint32_t port_number = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::from_chars(port.data(), port.data() + port.size(), port_number).ec != std::errc() ||
      port_number > 65535) {
    return bad("has a port that is not a number in 0..65535");
  }
  hp.port = std::string(port);
  return hp;
}

// Binds and listens on the first of HOST's addresses that allows it.
absl::StatusOr<int> Listen(std::string_view address, int backlog) {
  absl::StatusOr<HostPort> hp = SplitAddress(address);
  if (!hp.ok()) return hp.status();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const int gai = getaddrinfo(hp->host.empty() ? nullptr : hp->host.c_str(), hp->port.c_str(),
                              &hints, &list);
  if (gai != 0) {
    return absl::InvalidArgumentError(absl::StrCat("metrics address \"", std::string(address),
                                                   "\": host does not resolve: ", gai_strerror(gai)));
  }
  // Every interface: "::" with IPV6_V6ONLY off takes IPv4 too (as Go's
  // net.Listen(":port") does, whatever net.ipv6.bindv6only says); 0.0.0.0 is
  // the fallback where IPv6 is off.
  const bool wildcard = hp->host.empty();
  std::vector<const addrinfo*> candidates;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) candidates.push_back(ai);
  if (wildcard) {
    std::stable_partition(candidates.begin(), candidates.end(),
                          [](const addrinfo* ai) { return ai->ai_family == AF_INET6; });
  }
  int last_errno = EADDRNOTAVAIL;
  int fd = -1;
  for (const addrinfo* ai : candidates) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    // Lets a restarted server rebind while old connections sit in TIME_WAIT; on
    // Linux it still refuses a port another socket listens on.
    const int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (wildcard && ai->ai_family == AF_INET6) {
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0 ||
        !SetNonBlockingCloexec(fd)) {
      last_errno = errno;
      close(fd);
      fd = -1;
      continue;
    }
    break;
  }
  freeaddrinfo(list);
  if (fd >= 0) return fd;
  std::string why;
  switch (last_errno) {
    case EADDRINUSE:
      why = "the port is already in use";
      break;
    case EADDRNOTAVAIL:
      why = "the host is not an address of this machine";
      break;
    case EACCES:
      why = "permission denied (ports below 1024 need privilege)";
      break;
    default:
      why = std::strerror(last_errno);
  }
  return absl::UnavailableError(
      absl::StrCat("cannot listen on metrics address \"", std::string(address), "\": ", why));
}

std::string Response(int code, std::string_view reason, std::string_view content_type,
                     std::string_view body, bool head, std::string_view extra_headers = "") {
  std::string r = absl::StrCat("HTTP/1.1 ", code, " ");
  r += reason;
  r += "\r\nContent-Type: ";
  r += content_type;
  absl::StrAppend(&r, "\r\nContent-Length: ", body.size(), "\r\n");
  r += extra_headers;
  r += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (!head) r.append(body);
  return r;
}

std::string Plain(int code, std::string_view reason, std::string_view body, bool head = false,
                  std::string_view extra_headers = "") {
  return Response(code, reason, "text/plain; charset=utf-8", body, head, extra_headers);
}

// `request` is the request line and headers, up to and including the blank line.
std::string Route(std::string_view request, const HttpEndpointOptions& options) {
  const size_t eol = request.find('\n');
  std::string_view line = request.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // method SP target SP version, single spaces (RFC 9112 section 3).
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1 ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Plain(400, "Bad Request", "malformed request line\n");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!version.starts_with("HTTP/")) return Plain(400, "Bad Request", "malformed request line\n");
  if (!version.starts_with("HTTP/1.")) {
    return Plain(505, "HTTP Version Not Supported", "HTTP/1.x only\n");
  }
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    return Plain(405, "Method Not Allowed", "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
  }
  target = target.substr(0, target.find('?'));
  if (target == "/healthz") return Plain(200, "OK", "ok\n", head);
  if (target == "/readyz") {
    if (!options.ready || options.ready()) return Plain(200, "OK", "ready\n", head);
    return Plain(503, "Service Unavailable", "not ready\n", head);
  }
  if (target == "/metrics" && options.metrics) {
    return Response(200, "OK", kPrometheusContentType, options.metrics(), head);
  }
  return Plain(404, "Not Found", "not found; try /metrics, /healthz or /readyz\n", head);
}

struct Connection {
  enum class State { kReading, kWriting, kDraining, kClosed };
  int fd = -1;
  State state = State::kReading;
  std::string in;
  std::string out;
  size_t sent = 0;
  Clock::time_point deadline;
};

void Close(Connection& c) {
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
  c.state = Connection::State::kClosed;
}

class Loop {
 public:
  explicit Loop(const HttpEndpointOptions& options)
      : options_(options),
        timeout_(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(options.read_timeout_s))) {}

  // Returns when the wake pipe becomes readable.
  void Run(int listen_fd, int wake_fd) {
    std::vector<pollfd> fds;
    while (true) {
      fds.clear();
      fds.push_back({wake_fd, POLLIN, 0});
      const bool accepting = conns_.size() < static_cast<size_t>(options_.max_connections) &&
                             Clock::now() >= accept_paused_until_;
      fds.push_back({accepting ? listen_fd : -1, POLLIN, 0});  // fd -1: poll skips it
      for (const Connection& c : conns_) {
        fds.push_back({c.fd, static_cast<short>(c.state == Connection::State::kWriting ? POLLOUT
                                                                                         : POLLIN),
                       0});
      }
      if (poll(fds.data(), fds.size(), PollTimeoutMs()) < 0) {
        if (errno == EINTR) continue;
        return;  // EFAULT / EINVAL / ENOMEM: nothing sensible left to do
      }
      if (fds[0].revents != 0) return;
      for (size_t i = 0; i < conns_.size(); ++i) {
        if (fds[i + 2].revents != 0) Guarded(conns_[i], &Loop::Step);
      }
      const Clock::time_point now = Clock::now();
      for (Connection& c : conns_) {
        if (c.state != Connection::State::kClosed && now >= c.deadline) Guarded(c, &Loop::Expire);
      }
      std::erase_if(conns_, [](const Connection& c) { return c.state == Connection::State::kClosed; });
      if (accepting && fds[1].revents != 0) Accept(listen_fd);
    }
  }

  ~Loop() {
    for (Connection& c : conns_) Close(c);
  }

 private:
  int PollTimeoutMs() const {
    const bool paused = accept_paused_until_ > Clock::now();
    if (conns_.empty() && !paused) return -1;
    Clock::time_point first = paused ? accept_paused_until_ : Clock::time_point::max();
    for (const Connection& c : conns_) first = std::min(first, c.deadline);
    const auto ms =
        std::chrono::ceil<std::chrono::milliseconds>(first - Clock::now()).count();
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
  }

  // Any exception while serving one connection (a throwing callback is
  // already a 500, see Read; this is for bad_alloc) costs that connection only.
  void Guarded(Connection& c, void (Loop::*step)(Connection&)) {
    try {
      (this->*step)(c);
    } catch (...) {
      Close(c);
    }
  }

  void Accept(int listen_fd) {
    while (conns_.size() < static_cast<size_t>(options_.max_connections)) {
      const int fd = accept(listen_fd, nullptr, nullptr);
      if (fd < 0) {
        // Out of descriptors or memory: the listener stays readable, so pause
        // it rather than spin; EAGAIN and a connection that died in the
        // backlog need nothing.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          accept_paused_until_ = Clock::now() + kAcceptPause;
        }
        return;
      }
      if (!SetNonBlockingCloexec(fd)) {
        close(fd);
        continue;
      }
      Connection c;
      c.fd = fd;
      c.deadline = Clock::now() + timeout_;
      conns_.push_back(std::move(c));
    }
  }

  void Step(Connection& c) {
    switch (c.state) {
      case Connection::State::kReading:
        return Read(c);
      case Connection::State::kWriting:
        return Write(c);
      case Connection::State::kDraining:
        return Drain(c);
      case Connection::State::kClosed:
        return;
    }
  }

  void Read(Connection& c) {
    char buf[4096];
    // A client may send its request and half-close at once (shutdown(SHUT_WR),
    // `nc -N`): the end of its stream then arrives in the same read as the
    // request, which must still be answered (found by fuzz/http_fuzzer).
    bool client_done = false;
    while (true) {
      const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
      if (n == 0) {
        client_done = true;
        break;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return Close(c);
      }
      c.in.append(buf, static_cast<size_t>(n));
      if (c.in.size() > options_.max_header_bytes) break;
    }
    // Headers end at the first empty line; bare LF line ends are tolerated.
    size_t end = c.in.find("\r\n\r\n");
    size_t end_len = 4;
    const size_t lf = c.in.find("\n\n");
    if (lf != std::string::npos && (end == std::string::npos || lf < end)) {
      end = lf;
      end_len = 2;
    }
    if (end != std::string::npos && end + end_len <= options_.max_header_bytes) {
      std::string response;
      try {
        response = Route(std::string_view(c.in).substr(0, end + end_len), options_);
      } catch (const std::exception& e) {
        response = Plain(500, "Internal Server Error", absl::StrCat(e.what(), "\n"));
      } catch (...) {
        response = Plain(500, "Internal Server Error", "unknown exception\n");
      }
      return Respond(c, std::move(response));
    }
    if (end != std::string::npos || c.in.size() > options_.max_header_bytes) {
      return Respond(c, Plain(431, "Request Header Fields Too Large",
                              absl::StrCat("request line + headers exceed ",
                                           options_.max_header_bytes, " bytes\n")));
    }
    if (client_done) return Close(c);  // the client gave up before a whole request
  }

  void Respond(Connection& c, std::string response) {
    c.in.clear();
    c.in.shrink_to_fit();
    c.out = std::move(response);
    c.sent = 0;
    c.state = Connection::State::kWriting;
    c.deadline = Clock::now() + timeout_;
    Write(c);
  }

  void Write(Connection& c) {
    while (c.sent < c.out.size()) {
      const ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // wait for POLLOUT
        if (errno == EINTR) continue;
        return Close(c);
      }
      c.sent += static_cast<size_t>(n);
    }
    shutdown(c.fd, SHUT_WR);
    c.out.clear();
    c.out.shrink_to_fit();
    c.state = Connection::State::kDraining;
    c.deadline = Clock::now() + std::min(timeout_, Clock::duration(kMaxDrain));
    Drain(c);
  }

  void Drain(Connection& c) {
    char buf[4096];
    while (true) {
      const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      return Close(c);  // EOF or error: done
    }
  }

  void Expire(Connection& c) {
    if (c.state == Connection::State::kReading) {
      // Best effort, one non-blocking send; the client may not be reading.
      const std::string r = Plain(408, "Request Timeout", "no complete request in time\n");
      (void)send(c.fd, r.data(), r.size(), MSG_NOSIGNAL);
    }
    Close(c);
  }

  const HttpEndpointOptions& options_;
  const Clock::duration timeout_;
  std::vector<Connection> conns_;
  Clock::time_point accept_paused_until_;
};

}  // namespace

absl::Status HttpEndpointOptions::Validate() const {
  if (!(read_timeout_s > 0) || !std::isfinite(read_timeout_s) || read_timeout_s > 3600) {
    return absl::InvalidArgumentError(
        absl::StrCat("read_timeout_s (", read_timeout_s, ") must be > 0 and <= 3600"));
  }
  if (max_header_bytes < 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_header_bytes (", max_header_bytes, ") must be >= 64"));
  }
  if (max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_connections (", max_connections, ") must be >= 1"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(HttpEndpointOptions options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto ep = std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(options)));
  absl::StatusOr<int> fd = Listen(ep->options_.address, ep->options_.max_connections);
  if (!fd.ok()) return fd.status();
  ep->listen_fd_ = *fd;
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (getsockname(ep->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return absl::InternalError(absl::StrCat("getsockname: ", std::strerror(errno)));
  }
  ep->port_ = ntohs(bound.ss_family == AF_INET6
                        ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  ep->wake_read_fd_ = pipe_fds[0];
  ep->wake_write_fd_ = pipe_fds[1];
  if (!SetNonBlockingCloexec(pipe_fds[0]) || !SetNonBlockingCloexec(pipe_fds[1])) {
    return absl::InternalError(absl::StrCat("fcntl: ", std::strerror(errno)));
  }
  try {
    ep->thread_ = std::thread([raw = ep.get()] { raw->Run(); });
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot start the metrics thread: ", e.what()));
  }
  return ep;
}

void HttpEndpoint::Run() {
  try {
    Loop loop(options_);
    loop.Run(listen_fd_, wake_read_fd_);
  } catch (...) {
    // Only bad_alloc outside a connection can get here; the endpoint stops
    // answering, and the server's probes will say so.
  }
}

void HttpEndpoint::Stop() {
  if (thread_.joinable()) {
    const char byte = 1;
    while (write(wake_write_fd_, &byte, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_read_fd_, &wake_write_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

HttpEndpoint::~HttpEndpoint() { Stop(); }

}  // namespace wavepool::server
