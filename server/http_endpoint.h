// A tiny HTTP/1.1 server for Prometheus scrapes and Kubernetes probes, on its
// own thread (POSIX sockets + poll, no library):
//
//   GET /metrics  200, text/plain; version=0.0.4, body from `metrics`
//   GET /healthz  200 "ok" while the process runs (liveness)
//   GET /readyz   200 "ready" when `ready` returns true, else 503 "not ready"
//   other paths   404;  methods other than GET and HEAD: 405
//
// Every response closes its connection. Connections are served side by side by
// one poll loop, so a client that connects and stays silent delays nobody; it
// is dropped (408) after read_timeout_s. A request line + headers above
// max_header_bytes get 431, a malformed request line 400. Request bodies are
// never read; a query string is ignored. No exception escapes the thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace wavepool::server {

struct HttpEndpointOptions {
  // "HOST:PORT": "0.0.0.0:9090", "127.0.0.1:0", "[::]:9090", "localhost:9090",
  // or ":9090" / "*:9090" for every interface. Port 0 = any free port (see port()).
  std::string address;
  // Body of GET /metrics. Unset = /metrics answers 404.
  std::function<std::string()> metrics;
  // GET /readyz answers 200 when it returns true, 503 otherwise. Unset = ready.
  std::function<bool()> ready;
  // From accept to the end of the request headers, and again for sending the
  // response: a slow or silent client is dropped after this long.
  double read_timeout_s = 5;
  size_t max_header_bytes = 8192;  // request line + headers + the blank line
  int max_connections = 64;        // open at once; more wait in the listen backlog

  absl::Status Validate() const;
};

class HttpEndpoint {
 public:
  // Listens and starts the thread. INVALID_ARGUMENT for bad options or an
  // address that is not HOST:PORT or does not resolve; UNAVAILABLE when it
  // cannot be listened on (port in use, not an address of this machine).
  //
  // The callbacks run on the endpoint's thread, one at a time, while other
  // threads serve gRPC: they must be thread-safe against those, and quick (a
  // slow one delays every other probe). An exception from one becomes a 500.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(HttpEndpointOptions options);
  ~HttpEndpoint();  // Stop()
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The bound port (the chosen one when the address asked for port 0).
  int port() const { return port_; }
  // Closes the listening socket and every open connection and joins the
  // thread; responses not yet sent are dropped. Idempotent; not to be called
  // concurrently with itself or from a callback.
  void Stop();

 private:
  explicit HttpEndpoint(HttpEndpointOptions options) : options_(std::move(options)) {}
  void Run();

  HttpEndpointOptions options_;
  int listen_fd_ = -1;
  int wake_read_fd_ = -1, wake_write_fd_ = -1;  // Stop() writes a byte to end poll()
  int port_ = 0;
  std::thread thread_;
};

}  // namespace wavepool::server
