// A small HTTP/1.1 server on Boost.Beast: one io_context, asynchronous
// sessions (no thread per connection), keep-alive, optional TLS.
//
// Every complete request goes to the Handler on the io_context's thread; the
// handler answers synchronously, so it must be quick (it may read the state
// store, never run a recipe). Requests over the body limit get 413, malformed
// requests 400.
//
// Idle or slow clients cannot starve the others: a request's headers must
// arrive within header_seconds (from the connection's start, or from a kept-
// alive connection's next first byte); one client address holds at most
// max_connections_per_client connections and all together max_connections. A
// connection over a cap first takes the place of the longest-waiting
// connection that has not begun a request (of that address, or of anyone for
// the overall cap); when every one is busy it goes to a small reserve that
// answers GET /health only (anything else: 503 with Retry-After) and reads
// with a 2-second header timeout. So /health is answered while thousands of
// connections sit idle. The server's own state is touched only on the
// io_context's thread: run the io_context on one thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "keyonce/status.h"
#include "service/http_limits.h"

namespace boost::asio::ssl {
class context;
}

namespace keyonce::service {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Handler = std::function<Response(const Request&)>;

class HttpServer {
 public:
  // tls: when set, every connection is TLS (certificate and key loaded by the caller).
  HttpServer(boost::asio::io_context& io, Handler handler, HttpLimits limits,
             std::shared_ptr<boost::asio::ssl::context> tls);
  ~HttpServer();
  // Binds and starts accepting. port 0 picks a free port: see port().
  Status Listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // Stops accepting; connections finish the request in flight and close.
  void Stop();

  struct Impl;  // public only so the connection sessions can name it

 private:
  std::shared_ptr<Impl> impl_;
};

// A JSON reply with the right headers (no caching, no sniffing).
Response JsonResponse(unsigned status, std::string body, unsigned version, bool keep_alive);
// {"error": message} (+ "field").
Response ErrorResponse(unsigned status, const std::string& message, const Request& req,
                       const std::string& field = "");

}  // namespace keyonce::service
