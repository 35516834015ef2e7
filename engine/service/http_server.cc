#include "service/http_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
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
#include <optional>
#include <set>

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

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  asio::io_context& io;
  Handler handler;
  HttpLimits limits;
  std::shared_ptr<asio::ssl::context> tls;
  tcp::acceptor acceptor;
  std::atomic<bool> stopped{false};
  size_t connections = 0;

  Impl(asio::io_context& i, Handler h, HttpLimits l, std::shared_ptr<asio::ssl::context> t)
      : io(i), handler(std::move(h)), limits(l), tls(std::move(t)), acceptor(i) {}

  void Accept();
};

namespace {

// One connection: read a request, answer it, repeat while keep-alive.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<HttpServer::Impl> server, Stream stream)
      : server_(std::move(server)), stream_(std::move(stream)) {
    ++server_->connections;
  }
  ~Session() { --server_->connections; }

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(
          std::chrono::seconds(server_->limits.request_seconds));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->Read(true);
                              });
    } else {
      Read(true);
    }
  }

 private:
  void Read(bool first) {
    parser_.emplace();
    parser_->body_limit(server_->limits.body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_->limits.header_bytes));
    // The first request of a connection and every later one get the idle
    // timeout to begin; a request once begun must finish in request_seconds.
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(
        first ? server_->limits.request_seconds : server_->limits.idle_seconds));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return Close();
    }
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
    try {
      res = server_->handler(req);
    } catch (const std::exception&) {
      res = ErrorResponse(500, "internal error; the service log has details", req);
    }
    if (server_->stopped) res.keep_alive(false);
    Send(std::move(res), !res.keep_alive());
  }

  void Send(Response res, bool close) {
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
    beast::error_code ec;
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    } else {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Response> res_;
};

}  // namespace

void HttpServer::Impl::Accept() {
  if (stopped) return;
  acceptor.async_accept(io, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      if (self->connections >= self->limits.max_connections) {
        socket.close(ec);  // overloaded: the client retries
      } else if (self->tls) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
            self,
            beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *self->tls))
            ->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(self, beast::tcp_stream(std::move(socket)))
            ->Start();
      }
    }
    self->Accept();
  });
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
