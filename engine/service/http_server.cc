#include "service/http_server.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <utility>

namespace keyonce::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Response JsonResponse(unsigned status, std::string body, unsigned version, bool keep_alive) {
  Response res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response ErrorResponse(unsigned status, const std::string& message, const Request& req,
                       const std::string& field) {
  boost::json::object o{{"error", message}};
  if (!field.empty()) o["field"] = field;
  return JsonResponse(status, boost::json::serialize(o), req.version(), req.keep_alive());
}

namespace {

Response PlainError(http::status status, const std::string& message) {
  boost::json::object o{{"error", message}};
  Response res = JsonResponse(static_cast<unsigned>(status), boost::json::serialize(o), 11, false);
  return res;
}

// How long a reserve connection may take to send its request's headers: it
// is there for a health check, which sends them at once.
constexpr int kReserveHeaderSeconds = 2;
// The first read of a request: what a request's headers usually need.
constexpr size_t kFirstRead = 4096;
// How long the rest of a refused request is read and dropped (Drain).
constexpr int kDrainSeconds = 2;

bool IsHealthCheck(const Request& req) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  return path == "/health" && (req.method() == http::verb::get || req.method() == http::verb::head);
}

}  // namespace

// What the server knows of each connection: whose it is, whether it counts
// against the caps or the reserve, and whether it is waiting for a request's
// first byte (only those may be evicted: evicting one loses no request).
struct HttpConnection {
  virtual ~HttpConnection() = default;
  // Closes the socket; the session ends when its pending operation returns.
  virtual void Evict() = 0;

  asio::ip::address client;
  bool reserve = false;
  bool counted = false;
  std::optional<std::list<HttpConnection*>::iterator> waiting;
};

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  asio::io_context& io;
  Handler handler;
  HttpLimits limits;
  std::shared_ptr<asio::ssl::context> tls;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  std::atomic<bool> stopped{false};
  size_t connections = 0;  // counted against the caps
  size_t reserve_used = 0;
  std::map<asio::ip::address, size_t> per_client;
  std::list<HttpConnection*> waiting;  // oldest first

  Impl(asio::io_context& i, Handler h, HttpLimits l, std::shared_ptr<asio::ssl::context> t)
      : io(i), handler(std::move(h)), limits(l), tls(std::move(t)), acceptor(i), accept_retry(i) {}

  void Accept();
  void OnAccept(tcp::socket socket);
  template <class Stream>
  void StartSession(Stream stream, const asio::ip::address& client, bool reserve);

  void Admit(HttpConnection* c) {
    c->counted = true;
    if (c->reserve) {
      ++reserve_used;
    } else {
      ++connections;
      ++per_client[c->client];
    }
  }
  // Idempotent: at eviction (so the caps see the place free at once) and at the end.
  void Release(HttpConnection* c) {
    Busy(c);
    if (!c->counted) return;
    c->counted = false;
    if (c->reserve) {
      --reserve_used;
      return;
    }
    --connections;
    auto it = per_client.find(c->client);
    if (it != per_client.end() && --it->second == 0) per_client.erase(it);
  }
  void Waiting(HttpConnection* c) {
    if (!c->waiting) c->waiting = waiting.insert(waiting.end(), c);
  }
  void Busy(HttpConnection* c) {
    if (c->waiting) waiting.erase(*std::exchange(c->waiting, std::nullopt));
  }
  // Evicts the longest-waiting connection that `pick` accepts; false if none.
  template <class Pick>
  bool EvictOldest(Pick pick) {
    for (HttpConnection* c : waiting) {
      if (pick(*c)) {
        Release(c);
        c->Evict();
        return true;
      }
    }
    return false;
  }
};

namespace {

// One connection: read a request, answer it, repeat while keep-alive.
template <class Stream>
class Session : public HttpConnection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>;

  Session(std::shared_ptr<HttpServer::Impl> server, Stream stream,
          const asio::ip::address& client_address, bool in_reserve)
      : server_(std::move(server)), stream_(std::move(stream)) {
    client = client_address;
    reserve = in_reserve;
    server_->Admit(this);
    server_->Waiting(this);
    // The first request's headers (and the TLS handshake before them) must be
    // in by this time, however slowly they trickle.
    header_deadline_ = std::chrono::steady_clock::now() +
                       std::chrono::seconds(
                           reserve ? std::min(kReserveHeaderSeconds, server_->limits.header_seconds)
                                   : server_->limits.header_seconds);
  }
  ~Session() override { server_->Release(this); }

  void Start() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_at(header_deadline_);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->Read(true);
                              });
    } else {
      Read(true);
    }
  }

  void Evict() override {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
  }

 private:
  void Read(bool first) {
    parser_.emplace();
    parser_->body_limit(server_->limits.body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_->limits.header_bytes));
    first_ = first;
    if (buffer_.size() > 0) return Begun();  // a pipelined request is already here
    server_->Waiting(this);
    // A new connection has until its header deadline; a kept-alive one may
    // wait idle_seconds for the next request to begin.
    auto& lowest = beast::get_lowest_layer(stream_);
    if (first) {
      lowest.expires_at(header_deadline_);
    } else {
      lowest.expires_after(std::chrono::seconds(server_->limits.idle_seconds));
    }
    // The first bytes on their own (the parser waits for whole headers), so
    // that the moment a request begins is seen: from then on the connection
    // is busy, never evicted, and on the header clock.
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->OnRead(ec);
                              self->buffer_.commit(n);
                              self->Begun();
                            });
  }

  void Begun() {
    server_->Busy(this);
    if (!first_) {
      beast::get_lowest_layer(stream_).expires_after(
          std::chrono::seconds(server_->limits.header_seconds));
    }
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // The body, if any, has request_seconds.
  void OnHeader(beast::error_code ec) {
    if (ec || parser_->is_done()) return OnRead(ec);
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(server_->limits.request_seconds));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::bad_descriptor) {
      return Close();
    }
    // The errors below are answered before the request was read to its end.
    unread_ = true;
    if (ec == http::error::body_limit) {
      return Send(PlainError(http::status::payload_too_large,
                             "the request body is too large (limit " +
                                 std::to_string(server_->limits.body_bytes) + " bytes)"),
                  true);
    }
    if (ec == http::error::header_limit) {
      return Send(PlainError(http::status::request_header_fields_too_large,
                             "the request headers are too large"),
                  true);
    }
    if (ec) return Send(PlainError(http::status::bad_request, "malformed HTTP request"), true);
    Request req = parser_->release();
    Response res;
    if (reserve && !IsHealthCheck(req)) {
      res = PlainError(http::status::service_unavailable,
                       "too many connections from your address; try again shortly");
      res.set(http::field::retry_after, "1");
    } else {
      try {
        res = server_->handler(req);
      } catch (const std::exception&) {
        res = ErrorResponse(500, "internal error; the service log has details", req);
      }
    }
    // A reserve connection answers one request: its place is for the next one.
    const bool close = server_->stopped || reserve || !res.keep_alive();
    Send(std::move(res), close);
  }

  void Send(Response res, bool close) {
    server_->Busy(this);
    res_ = std::make_shared<Response>(std::move(res));
    if (close) res_->keep_alive(false);
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::seconds(server_->limits.request_seconds));
    http::async_write(stream_, *res_,
                      [self = this->shared_from_this(), close](beast::error_code ec, size_t) {
                        if (ec || close) return self->Close();
                        self->res_.reset();
                        self->Read(false);
                      });
  }

  void Close() {
    server_->Release(this);
    beast::error_code ec;
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    } else {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      if (unread_ && !ec) Drain();
    }
  }

  // After an error reply to a request that was not read to its end (413,
  // 431, 400): the client may still be sending, and closing on unread bytes
  // resets the connection, which can destroy the reply before the client has
  // read it. So what comes is read and dropped for a moment, then it closes.
  void Drain() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(kDrainSeconds));
    stream_.async_read_some(asio::buffer(drain_),
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              if (!ec) self->Drain();
                            });
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Response> res_;
  std::chrono::steady_clock::time_point header_deadline_;
  bool first_ = true;
  bool unread_ = false;
  std::array<char, 4096> drain_;
};

}  // namespace

template <class Stream>
void HttpServer::Impl::StartSession(Stream stream, const asio::ip::address& client, bool reserve) {
  std::make_shared<Session<Stream>>(shared_from_this(), std::move(stream), client, reserve)
      ->Start();
}

void HttpServer::Impl::OnAccept(tcp::socket socket) {
  beast::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  socket.set_option(tcp::no_delay(true), ec);
  const asio::ip::address client = remote.address();
  auto mine = per_client.find(client);
  const bool over_client =
      mine != per_client.end() && mine->second >= limits.max_connections_per_client;
  const bool over_all = connections >= limits.max_connections;
  bool reserve = false;
  if (over_client) {
    reserve =
        !EvictOldest([&](const HttpConnection& c) { return !c.reserve && c.client == client; });
  } else if (over_all) {
    reserve = !EvictOldest([](const HttpConnection& c) { return !c.reserve; });
  }
  if (reserve && reserve_used >= limits.reserve_connections &&
      !EvictOldest([](const HttpConnection& c) { return c.reserve; })) {
    socket.close(ec);  // every place is busy with a request: the client retries
    return;
  }
  if (tls) {
    StartSession(beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls),
                 client, reserve);
  } else {
    StartSession(beast::tcp_stream(std::move(socket)), client, reserve);
  }
}

void HttpServer::Impl::Accept() {
  if (stopped) return;
  acceptor.async_accept(io, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped) return;
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
        ec == asio::error::no_memory) {
      // Out of file descriptors: free one from a connection that waits for
      // nothing, or try again shortly, instead of spinning on the error.
      if (!self->EvictOldest([](const HttpConnection&) { return true; })) {
        self->accept_retry.expires_after(std::chrono::milliseconds(100));
        self->accept_retry.async_wait([self](beast::error_code e) {
          if (!e) self->Accept();
        });
        return;
      }
    } else if (!ec) {
      self->OnAccept(std::move(socket));
    }
    self->Accept();
  });
}

uint64_t OpenFilesNeeded(const HttpLimits& limits) {
  // Every connection, the reserve, and room for the state store, logs and runs.
  return limits.max_connections + limits.reserve_connections + 256;
}

uint64_t RaiseOpenFilesLimit(const HttpLimits& limits) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  const rlim_t want = static_cast<rlim_t>(OpenFilesNeeded(limits));
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min(want, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(rl.rlim_cur);
}

HttpServer::HttpServer(asio::io_context& io, Handler handler, HttpLimits limits,
                       std::shared_ptr<asio::ssl::context> tls)
    : impl_(std::make_shared<Impl>(io, std::move(handler), limits, std::move(tls))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return Status::Invalid("listen: '" + host + "' is not an IP address");
  tcp::endpoint ep(addr, port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Io("listening on " + host + ":" + std::to_string(port) + ": " + ec.message());
  }
  impl_->Accept();
  return Status::OK();
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void HttpServer::Stop() {
  if (impl_->stopped.exchange(true)) return;
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace keyonce::service
