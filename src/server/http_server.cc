#include "server/http_server.h"

#include <sys/socket.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <deque>
#include <mutex>
#include <random>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>

namespace brig::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

http::response<http::string_body> MakeResponse(const Request& request, http::status status, std::string body,
                                               std::string_view content_type) {
  http::response<http::string_body> res{status, request.version()};
  res.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(request.keep_alive());
  res.body() = std::move(body);
  return res;
}

namespace {

// An answer made before any handler ran (a bound was hit): a short JSON error.
http::response<http::string_body> LimitResponse(http::status status, std::string_view code, std::string_view message) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(false);
  res.body() = std::string(R"({"error": {"code": ")") + std::string(code) + R"(", "message": ")" +
               std::string(message) + "\"}}";
  res.prepare_payload();
  return res;
}

std::string NewRequestIdPrefix() {
  std::random_device rd;
  uint64_t v = (uint64_t{rd()} << 32) ^ rd();
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return std::string(buf, 8);
}

}  // namespace

class Connection;

struct HttpServer::Impl {
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  std::string id_prefix = NewRequestIdPrefix();
  std::atomic<uint64_t> next_id{1};
  // Requests dispatched and not yet answered in full (Drain waits for them).
  std::atomic<int64_t> active_requests{0};
  std::mutex connections_mu;
  std::vector<std::weak_ptr<Connection>> connections;
  HttpServer* server = nullptr;

  void Accept();
};

// One TCP connection: reads requests one at a time (no pipelining: the next request is read
// after the response to this one is on the wire), hands each to the handler, writes what its
// Responder produces, in order, on the connection's strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, HttpServer::Impl& impl, const HttpLimits& limits, const Handler& handler,
             const AccessLog& log, std::atomic<size_t>& open)
      : stream_(std::move(socket)), impl_(impl), limits_(limits), handler_(handler), log_(log), open_(open) {
    open_.fetch_add(1);
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Connection() {
    if (current_) impl_.active_requests.fetch_sub(1);
    open_.fetch_sub(1);
  }

  void Run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }
  void RefuseBusy() {
    auto self = shared_from_this();
    auto res = std::make_shared<http::response<http::string_body>>(
        LimitResponse(http::status::service_unavailable, "busy", "too many connections; try again later"));
    res->set(http::field::retry_after, "1");
    stream_.expires_after(std::chrono::seconds(5));
    http::async_write(stream_, *res, [self, res](beast::error_code, size_t) { self->Close(); });
  }
  void Close() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->closed_ = true;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream_.close();
    });
  }

  // ---- called by the responder, on the strand.
  using WriteOp = std::function<void(std::function<void(beast::error_code)>)>;
  void Enqueue(WriteOp op, std::function<void(bool)> written, bool last) {
    queue_.push_back({std::move(op), std::move(written), last});
    if (!writing_) WriteNext();
  }
  // A whole answer, the last thing this request sends: straight to the socket if nothing is
  // queued before it and the socket takes it all now (the common case); what it does not
  // take goes through the queue, under the write timeout.
  void SendWhole(const http::response<http::string_body>& res) {
    std::string wire = SerializeResponse(res);
    size_t sent = 0;
    if (queue_.empty() && !writing_ && !failed()) {
      while (sent < wire.size()) {
        ssize_t n = ::send(stream_.socket().native_handle(), wire.data() + sent, wire.size() - sent,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
          sent += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          break;
        } else {
          // As a failed async write: the connection goes, and no log line (none is written
          // for an answer that did not go out).
          failed_ = true;
          return Close();
        }
      }
      if (sent == wire.size()) return Finished();
    }
    auto rest = std::make_shared<std::string>(wire.substr(sent));
    Enqueue(
        [self = shared_from_this(), rest](auto done) {
          net::async_write(self->stream_, net::buffer(*rest), [done, rest](beast::error_code ec, size_t) { done(ec); });
        },
        nullptr, true);
  }
  beast::tcp_stream& stream() { return stream_; }
  bool failed() const { return failed_ || closed_; }
  const HttpLimits& limits() const { return limits_; }
  void NoteBody(uint64_t n) { body_bytes_ += n; }
  void SetStatus(unsigned status) { status_ = status; }
  void SetKeepAlive(bool keep) { keep_alive_ = keep; }

 private:
  struct Pending {
    WriteOp op;
    std::function<void(bool)> written;
    bool last;
  };

  void ReadHeader() {
    if (closed_) return;
    parser_.emplace();
    // The URL is bounded apart (414), so the parser's limit leaves room for it.
    parser_->header_limit(static_cast<uint32_t>(limits_.header_bytes + limits_.url_bytes));
    parser_->body_limit(limits_.body_bytes);
    stream_.expires_after(requests_ == 0 ? limits_.header_timeout : limits_.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec == http::error::header_limit) return Reject(http::status::request_header_fields_too_large, "headers_too_large", "request headers too large");
    if (ec == http::error::body_limit) return Reject(http::status::payload_too_large, "body_too_large", "request body too large");
    if (ec) {
      // A closed connection or a timeout: nothing to answer. A malformed request: 400.
      if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == net::error::eof ||
          ec == net::error::connection_reset || ec == net::error::operation_aborted || buffer_.size() == 0)
        return Close();
      return Reject(http::status::bad_request, "bad_request", "malformed HTTP request");
    }
    const auto& req = parser_->get();
    if (req.target().size() > limits_.url_bytes) return Reject(http::status::uri_too_long, "url_too_long", "URL too long");
    size_t header_size = 0;
    for (const auto& f : req) header_size += f.name_string().size() + f.value().size() + 4;
    if (header_size > limits_.header_bytes) return Reject(http::status::request_header_fields_too_large, "headers_too_large", "request headers too large");
    // Request smuggling: a request framed two ways, or with a coding we do not speak, is
    // refused, and the connection with it.
    auto te = req.find(http::field::transfer_encoding);
    bool has_te = te != req.end();
    size_t te_count = has_te ? std::distance(req.equal_range(http::field::transfer_encoding).first, req.equal_range(http::field::transfer_encoding).second) : 0;
    size_t cl_count = std::distance(req.equal_range(http::field::content_length).first, req.equal_range(http::field::content_length).second);
    if (has_te && (cl_count > 0 || te_count > 1 || !beast::iequals(te->value(), "chunked")))
      return Reject(http::status::bad_request, "bad_request", "ambiguous request framing (Transfer-Encoding)");
    // "Content-Length: 5, 5" is two of them in one field (Beast takes it as 5).
    if (cl_count > 1 || (cl_count == 1 && req[http::field::content_length].find(',') != beast::string_view::npos))
      return Reject(http::status::bad_request, "bad_request", "more than one Content-Length");
    if (auto len = parser_->content_length(); len && *len > limits_.body_bytes)
      return Reject(http::status::payload_too_large, "body_too_large",
                    "request body larger than " + std::to_string(limits_.body_bytes) + " bytes");
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
      stream_.expires_after(limits_.body_timeout);
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    stream_.expires_after(limits_.body_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      // A chunk-size past 2^64 does not parse at all (Beast says bad_chunk), but it is a body
      // too large all the same: the client hears so, not a silent close.
      if (ec == http::error::body_limit || (ec == http::error::bad_chunk && self->ChunkSizeOverflows()))
        return self->Reject(http::status::payload_too_large, "body_too_large", "request body too large");
      if (ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension)
        return self->Reject(http::status::bad_request, "bad_request", "malformed chunked body");
      if (ec) return self->Close();
      self->Dispatch();
    });
  }

  // After a chunked-body parse error the unparsed input starts at the failing chunk header
  // (after the CRLF that ends the previous chunk): true if its size has more significant hex
  // digits than a uint64 holds.
  bool ChunkSizeOverflows() const {
    auto data = buffer_.cdata();
    std::string_view in(static_cast<const char*>(data.data()), data.size());
    if (in.starts_with("\r\n")) in.remove_prefix(2);
    while (in.starts_with('0')) in.remove_prefix(1);
    size_t digits = 0;
    while (digits < in.size() && std::isxdigit(static_cast<unsigned char>(in[digits]))) ++digits;
    return digits > 16;
  }

  void Reject(http::status status, std::string_view code, const std::string& message) {
    auto res = std::make_shared<http::response<http::string_body>>(LimitResponse(status, code, message));
    status_ = static_cast<unsigned>(status);
    stream_.expires_after(std::chrono::seconds(5));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      self->LingerClose();
    });
  }

  // Closing a socket with unread input makes the kernel send RST, which can destroy the
  // answer just written before the client reads it (a client still sending its body would
  // see "connection reset", not the 413). So: end our side (FIN), read and drop what the
  // client still sends, bounded in bytes and time, then close.
  void LingerClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    stream_.expires_after(std::chrono::seconds(2));
    linger_left_ = 1 << 20;
    LingerRead();
  }
  void LingerRead() {
    auto buf = std::make_shared<std::array<char, 16 << 10>>();
    stream_.async_read_some(net::buffer(*buf), [self = shared_from_this(), buf](beast::error_code ec, size_t n) {
      if (ec || n >= self->linger_left_) return self->Close();
      self->linger_left_ -= n;
      self->LingerRead();
    });
  }

  void Dispatch();

  void WriteNext() {
    if (queue_.empty()) return;
    writing_ = true;
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    stream_.expires_after(limits_.body_timeout);
    p.op([self = shared_from_this(), written = std::move(p.written), last = p.last](beast::error_code ec) mutable {
      self->writing_ = false;
      if (ec) self->failed_ = true;
      if (written) written(!ec);
      if (ec) {
        self->FailQueued();
        return self->Close();
      }
      if (last) return self->Finished();
      self->WriteNext();
    });
  }
  void FailQueued() {
    while (!queue_.empty()) {
      auto p = std::move(queue_.front());
      queue_.pop_front();
      if (p.written) p.written(false);
    }
  }
  void Finished();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl& impl_;
  const HttpLimits& limits_;
  const Handler& handler_;
  const AccessLog& log_;
  std::atomic<size_t>& open_;
  std::string remote_;
  std::deque<Pending> queue_;
  bool writing_ = false;
  bool failed_ = false;
  bool closed_ = false;
  bool keep_alive_ = false;
  uint64_t requests_ = 0;
  unsigned status_ = 0;
  uint64_t body_bytes_ = 0;
  size_t linger_left_ = 0;  // bytes LingerClose still drops
  std::shared_ptr<RequestContext> current_;
};

namespace {

class ResponderImpl : public Responder, public std::enable_shared_from_this<ResponderImpl> {
 public:
  explicit ResponderImpl(std::shared_ptr<Connection> conn, bool keep_alive, unsigned version, bool head)
      : conn_(std::move(conn)), keep_alive_(keep_alive), version_(version), head_(head) {}
  ~ResponderImpl() override {
    if (!answered_.exchange(true)) {
      // Nobody answered: a handler bug. Answer for it rather than leave the client waiting.
      auto res = std::make_shared<http::response<http::string_body>>(
          LimitResponse(http::status::internal_server_error, "internal", "the request was dropped without an answer"));
      auto conn = conn_;
      net::post(conn->stream().get_executor(), [conn, res] {
        conn->SetStatus(500);
        conn->SetKeepAlive(false);
        conn->Enqueue([conn, res](auto done) { http::async_write(conn->stream(), *res, [done, res](beast::error_code ec, size_t) { done(ec); }); },
                      nullptr, true);
      });
    }
  }

  void Send(http::response<http::string_body> response) override {
    if (answered_.exchange(true)) return;
    response.keep_alive(keep_alive_ && response.keep_alive());
    response.version(version_);
    response.prepare_payload();
    // HEAD: the headers a GET would get (Content-Length included), no body.
    if (head_) response.body().clear();
    auto res = std::make_shared<http::response<http::string_body>>(std::move(response));
    auto conn = conn_;
    // dispatch: answered on the connection's strand (a handler that answers at once, or an
    // execution run on the I/O thread), it goes out now rather than after a queued hop.
    net::dispatch(conn->stream().get_executor(), [conn, res] {
      conn->SetStatus(res->result_int());
      conn->SetKeepAlive(res->keep_alive());
      conn->NoteBody(res->body().size());
      conn->SendWhole(*res);
    });
  }

  void StartStream(http::response<http::empty_body> header, std::optional<uint64_t> content_length) override {
    if (answered_.exchange(true)) return;
    header.version(version_);
    header.keep_alive(keep_alive_ && header.keep_alive());
    if (content_length) {
      header.content_length(*content_length);
    } else {
      header.chunked(true);
    }
    chunked_ = !content_length;
    auto res = std::make_shared<http::response<http::empty_body>>(std::move(header));
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*res);
    auto conn = conn_;
    net::post(conn->stream().get_executor(), [conn, res, sr] {
      conn->SetStatus(res->result_int());
      conn->SetKeepAlive(res->keep_alive());
      conn->Enqueue([conn, res, sr](auto done) { http::async_write_header(conn->stream(), *sr, [done, res, sr](beast::error_code ec, size_t) { done(ec); }); },
                    nullptr, false);
    });
  }

  void Write(std::string bytes, std::function<void(bool)> written) override {
    if (bytes.empty()) {
      if (written) written(!conn_->failed());
      return;
    }
    auto data = std::make_shared<std::string>(std::move(bytes));
    auto conn = conn_;
    bool chunked = chunked_;
    net::post(conn->stream().get_executor(), [conn, data, chunked, written = std::move(written)]() mutable {
      conn->NoteBody(data->size());
      conn->Enqueue(
          [conn, data, chunked](auto done) {
            if (chunked) {
              net::async_write(conn->stream(), http::make_chunk(net::buffer(*data)),
                               [done, data](beast::error_code ec, size_t) { done(ec); });
            } else {
              net::async_write(conn->stream(), net::buffer(*data), [done, data](beast::error_code ec, size_t) { done(ec); });
            }
          },
          std::move(written), false);
    });
  }

  void Finish() override {
    auto conn = conn_;
    bool chunked = chunked_;
    net::post(conn->stream().get_executor(), [conn, chunked] {
      conn->Enqueue(
          [conn, chunked](auto done) {
            if (chunked) {
              static const std::string kLastChunk = "0\r\n\r\n";
              net::async_write(conn->stream(), net::buffer(kLastChunk), [done](beast::error_code ec, size_t) { done(ec); });
            } else {
              done(beast::error_code{});
            }
          },
          nullptr, true);
    });
  }

  void Abort() override {
    answered_ = true;
    conn_->Close();
  }

  bool ClientConnected() const override { return !conn_->failed(); }

 private:
  std::shared_ptr<Connection> conn_;
  std::atomic<bool> answered_{false};
  bool keep_alive_;
  unsigned version_;
  bool head_;
  bool chunked_ = false;
};

}  // namespace

void Connection::Dispatch() {
  ++requests_;
  auto ctx = std::make_shared<RequestContext>();
  ctx->request = parser_->release();
  ctx->request_id = impl_.id_prefix + "-" + std::to_string(impl_.next_id.fetch_add(1));
  ctx->remote = remote_;
  ctx->received = std::chrono::steady_clock::now();
  current_ = ctx;
  impl_.active_requests.fetch_add(1);
  status_ = 0;
  body_bytes_ = 0;
  // No read is pending while the handler works: the request is answered first.
  stream_.expires_never();
  auto responder = std::make_shared<ResponderImpl>(shared_from_this(), ctx->request.keep_alive(), ctx->request.version(),
                                                   ctx->request.method() == http::verb::head);
  handler_(ctx, responder);
}

std::string SerializeResponse(const http::response<http::string_body>& res) {
  std::string out;
  out.reserve(160 + res.body().size());
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(res.result_int());
  out += ' ';
  out += Sv(res.reason());
  out += "\r\n";
  for (const auto& f : res) {
    out += Sv(f.name_string());
    out += ": ";
    out += Sv(f.value());
    out += "\r\n";
  }
  out += "\r\n";
  out += res.body();
  return out;
}

void Connection::Finished() {
  if (current_ && log_) log_(*current_, status_, body_bytes_);
  if (current_) impl_.active_requests.fetch_sub(1);
  current_.reset();
  if (keep_alive_ && !closed_) return ReadHeader();
  Close();
}

void HttpServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      auto conn = std::make_shared<Connection>(std::move(socket), *this, server->limits_, server->handler_, server->log_,
                                               server->open_connections_);
      {
        std::lock_guard lock(connections_mu);
        std::erase_if(connections, [](const auto& w) { return w.expired(); });
        connections.push_back(conn);
      }
      if (server->open_connections_.load() > server->limits_.max_connections) {
        conn->RefuseBusy();
      } else {
        conn->Run();
      }
    }
    Accept();
  });
}

HttpServer::HttpServer(HttpLimits limits, Handler handler, AccessLog log)
    : limits_(limits), handler_(std::move(handler)), log_(std::move(log)), impl_(std::make_unique<Impl>()) {
  impl_->server = this;
}

HttpServer::~HttpServer() { Stop(); }

net::io_context& HttpServer::io_context() { return impl_->ioc; }

Status HttpServer::Start(const std::string& host, uint16_t port, int io_threads) {
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("cannot parse listen address '" + host + "': use an IP address such as 127.0.0.1");
  tcp::endpoint endpoint{address, port};
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::Unavailable("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->work.emplace(impl_->ioc.get_executor());
  impl_->Accept();
  for (int i = 0; i < std::max(1, io_threads); ++i) threads_.emplace_back([this] { impl_->ioc.run(); });
  return Status::Ok();
}

void HttpServer::StopAccepting() {
  net::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
}

bool HttpServer::Drain(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->active_requests.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void HttpServer::Stop() {
  if (threads_.empty()) return;
  StopAccepting();
  {
    std::lock_guard lock(impl_->connections_mu);
    for (auto& w : impl_->connections)
      if (auto c = w.lock()) c->Close();
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace brig::server
