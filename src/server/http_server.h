// brig::server::HttpServer: HTTP/1.1 on Boost.Beast, bounded against clients that send too
// much or too slowly. It knows nothing of sessions: each request that parses and passes the
// bounds goes to one Handler, which answers through a Responder, now or later, from any
// thread.
//
// Bounds (HttpLimits), each answered before the handler runs:
//   - request line + headers over header_bytes: 431; a URL over url_bytes: 414;
//   - a body over body_bytes (by Content-Length, or while reading a chunked body, a chunk-size
//     too large for 64 bits included): 413; a malformed chunked body: 400. After such an
//     answer the server closes its side and drops what the client still sends (for up to
//     1 MiB or 2 s), so that the client reads the answer rather than a reset;
//   - both Content-Length and Transfer-Encoding, or any Transfer-Encoding but "chunked":
//     400 and the connection is closed (request smuggling: a proxy in front might frame
//     the request differently);
//   - more than max_connections open: the new connection gets 503 and is closed;
//   - a client slower than header_timeout to send its headers, or than body_timeout to send
//     its body, is disconnected (slowloris); an idle keep-alive connection after
//     idle_timeout. None of this holds a thread: all of it is asynchronous on io_threads.
//
// Thread-safety: Start/Stop from one thread; Responder calls from any thread.
#ifndef BRIG_SERVER_HTTP_SERVER_H_
#define BRIG_SERVER_HTTP_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include "brig/status.h"

namespace brig::server {

namespace http = boost::beast::http;

// The bytes Beast's serializer writes for `response` (status line, fields in order, blank
// line, body): a whole small answer is sent with one send() when the socket takes it, without
// Beast's write operation and its timer (~a fifth of the HTTP thread's time per non-durable
// execution, bench/RESULTS.md 2026-12-05). REQUIRES: not chunked (Content-Length or no body).
std::string SerializeResponse(const http::response<http::string_body>& response);
using Request = http::request<http::string_body>;

// Beast's string_view (boost's, in Boost 1.74) as the standard one.
inline std::string_view Sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

struct HttpLimits {
  size_t header_bytes = 16 << 10;
  size_t url_bytes = 8 << 10;
  uint64_t body_bytes = 32ull << 20;  // a 20 MiB file upload, base64 in JSON, fits
  size_t max_connections = 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds idle_timeout{30'000};
};

// One response in the making. Exactly one of Send, or StartStream + Write* + Finish, per
// request; every call may come from any thread. Dropping the last reference without
// answering sends 500 (a handler bug must not leave the client waiting).
class Responder {
 public:
  virtual ~Responder() = default;
  // The whole response. Content-Length is set here; keep-alive follows the request.
  virtual void Send(http::response<http::string_body> response) = 0;
  // Sends `header` (its status and fields). With `content_length` set, the body is the
  // bytes written after it, which must add up to it; otherwise it is sent chunked.
  virtual void StartStream(http::response<http::empty_body> header, std::optional<uint64_t> content_length) = 0;
  // Queues bytes of the body; `written` (optional) runs once they are on the wire or the
  // connection failed (false), so that a producer can wait before making more.
  virtual void Write(std::string bytes, std::function<void(bool ok)> written = nullptr) = 0;
  // Ends the body (the last chunk when chunked).
  virtual void Finish() = 0;
  // Closes the connection without ending the body (a producer that cannot go on: the
  // client sees a short response, never a wrong one).
  virtual void Abort() = 0;
  // False once the client has gone away (a producer may stop early).
  virtual bool ClientConnected() const = 0;
};

struct RequestContext {
  Request request;
  std::string request_id;  // unique per server, for logs and the X-Request-Id header
  std::string remote;      // peer address
  std::chrono::steady_clock::time_point received;
  std::string principal;   // who called (a token's name), set by the handler for the log
};

using Handler = std::function<void(std::shared_ptr<RequestContext>, std::shared_ptr<Responder>)>;
// Called once per finished response, for the request log and metrics.
using AccessLog = std::function<void(const RequestContext&, unsigned status, uint64_t body_bytes)>;

class HttpServer {
 public:
  HttpServer(HttpLimits limits, Handler handler, AccessLog log);
  ~HttpServer();

  // Binds host:port (port 0 picks a free one, see port()) and starts `io_threads` threads.
  // InvalidArgument for an address that does not parse, Unavailable if it cannot bind.
  Status Start(const std::string& host, uint16_t port, int io_threads);
  uint16_t port() const { return port_; }
  // The io_context its io_threads run (from construction to destruction; run from Start
  // to Stop): for others whose handlers belong on the I/O threads (WorkerPoolOptions::io).
  boost::asio::io_context& io_context();
  // Stops accepting new connections; open ones continue.
  void StopAccepting();
  // Waits until every request dispatched so far is answered in full (or the connection
  // closed), for at most `timeout`; false if some were not.
  bool Drain(std::chrono::milliseconds timeout);
  // Closes every connection and joins the threads.
  void Stop();
  size_t open_connections() const { return open_connections_.load(); }

  struct Impl;

 private:
  HttpLimits limits_;
  Handler handler_;
  AccessLog log_;
  std::unique_ptr<Impl> impl_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::atomic<size_t> open_connections_{0};
};

// A JSON or text response with the common headers (X-Content-Type-Options: nosniff, no
// caching of API answers).
http::response<http::string_body> MakeResponse(const Request& request, http::status status,
                                               std::string body, std::string_view content_type);

}  // namespace brig::server

#endif  // BRIG_SERVER_HTTP_SERVER_H_
