// Http1Client (http1.h): HTTP/1.1 over Beast, one thread, several requests
// in flight as coroutines on one io_context.

#include "connectors/common/net/http1.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace keyonce::connectors::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = Http1Client::Clock;
// The io_context's own executor rather than any_io_executor: no type erasure
// per operation.
using Executor = asio::io_context::executor_type;
using TcpStream = beast::basic_stream<tcp, Executor>;
using TlsStream = beast::ssl_stream<TcpStream>;
template <class T>
using Awaitable = asio::awaitable<T, Executor>;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable_t<Executor>());
constexpr auto kMaxIdle = std::chrono::seconds(118);  // curl's CURLOPT_MAXAGE_CONN

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ProxyInEnvironment() {
  for (const char* name : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* v = std::getenv(name);
    if (v && *v) return true;
  }
  return false;
}

// An http(s) URL this client carries, split; nullopt: leave it to curl.
struct Url {
  bool tls = false;
  std::string host;         // for connecting, SNI and verification (no brackets)
  std::string port;         // digits
  std::string host_header;  // host[:port] as sent in Host
  std::string target;       // path and query, "/" at least
  std::string origin;       // scheme://host:port, the pool's key
  bool ip_literal = false;
};

std::optional<Url> ParseUrl(std::string_view url) {
  Url u;
  if (url.size() > 8 && EqualsNoCase(url.substr(0, 8), "https://")) {
    u.tls = true;
    url.remove_prefix(8);
  } else if (url.size() > 7 && EqualsNoCase(url.substr(0, 7), "http://")) {
    url.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  size_t end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : url.substr(end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host, port;
  if (authority.front() == '[') {  // [IPv6]
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    if (host.empty() ||
        host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
      return std::nullopt;
    }
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
    u.ip_literal = true;
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (host.empty()) return std::nullopt;
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
        return std::nullopt;
      }
    }
    u.ip_literal = host.find_first_not_of("0123456789.") == std::string_view::npos;
  }
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    int p = std::stoi(std::string(port));
    if (p < 1 || p > 65535) return std::nullopt;
  }
  std::string_view path = rest.substr(0, rest.find('#'));
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return std::nullopt;
    }
  }
  u.host.assign(host);
  for (char& c : u.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const char* default_port = u.tls ? "443" : "80";
  u.port = port.empty() ? default_port : std::string(port);
  u.host_header = authority.front() == '[' ? "[" + u.host + "]" : u.host;
  if (u.port != default_port) u.host_header += ":" + u.port;
  u.target = path.empty() || path.front() != '/' ? "/" + std::string(path) : std::string(path);
  u.origin = (u.tls ? "https://" : "http://") + u.host_header + "/" + u.port;
  return u;
}

// Headers whose handling is curl's business (framing, encodings).
bool CurlManagedHeaders(const Headers& headers) {
  for (const auto& [name, value] : headers) {
    for (std::string_view managed : {"accept-encoding", "content-length", "transfer-encoding",
                                     "connection", "upgrade", "expect", "te"}) {
      if (EqualsNoCase(name, managed)) return true;
    }
    if (name.find_first_of("\r\n\0 :", 0, 5) != std::string::npos ||
        value.find_first_of("\r\n\0", 0, 3) != std::string::npos) {
      return true;  // curl refuses or sends it as today
    }
  }
  return false;
}

struct Conn {
  explicit Conn(const Executor& ex) : tcp(ex) {}
  TcpStream& lowest() { return tls ? beast::get_lowest_layer(*tls) : tcp; }

  TcpStream tcp;  // a plain connection (moved into `tls` for https)
  std::unique_ptr<TlsStream> tls;
  std::string head;           // the request line and headers being sent
  beast::flat_buffer buffer;  // bytes read past the last reply
  std::string origin;
  Clock::time_point last_used;
};

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::string Millis(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

struct Http1Client::Impl {
  explicit Impl(const ClientOptions& o) : options(o) {}

  // --- one request
  struct Job {
    const HttpRequest* request = nullptr;
    Url url;
    Result<HttpReply>* result = nullptr;
    TransferInfo* info = nullptr;
    Clock::time_point started, deadline;  // deadline: whole transfer (max = none)
  };

  Awaitable<void> Worker(std::vector<Job>* jobs, size_t* next, Clock::time_point* next_start);
  Awaitable<void> Exchange(Job& job);
  Awaitable<Status> Connect(Job& job, std::unique_ptr<Conn>* out);
  void Head(const Job& job, std::string* head) const;
  template <class Stream>
  Awaitable<Status> WriteRead(Stream& stream, Conn& conn, Job& job, bool* keep);

  std::unique_ptr<Conn> TakeIdle(const std::string& origin);
  void PutIdle(std::unique_ptr<Conn> conn);
  // The TLS context, made on first use; an error's detail when the CA file,
  // client certificate or key cannot be used.
  std::optional<std::string> Context(ssl::context** out);
  Status Failed(const Job& job, const char* what, const std::string& detail, bool transient) const;
  Status TimedOut(const Job& job) const;

  ClientOptions options;
  asio::io_context io{1};
  std::vector<std::unique_ptr<Conn>> idle;  // oldest first
  std::unique_ptr<ssl::context> tls_context;
  std::optional<std::string> tls_context_error;
};

std::unique_ptr<Conn> Http1Client::Impl::TakeIdle(const std::string& origin) {
  const auto now = Clock::now();
  idle.erase(
      std::remove_if(idle.begin(), idle.end(),
                     [&](const std::unique_ptr<Conn>& c) { return now - c->last_used > kMaxIdle; }),
      idle.end());
  for (size_t i = idle.size(); i-- > 0;) {
    if (idle[i]->origin != origin) continue;
    std::unique_ptr<Conn> c = std::move(idle[i]);
    idle.erase(idle.begin() + static_cast<std::ptrdiff_t>(i));
    // A connection the server has closed (or talks on unasked) is not used:
    // the request would die on it after being sent.
    char byte;
    ssize_t got = ::recv(c->lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return c;
  }
  return nullptr;
}

void Http1Client::Impl::PutIdle(std::unique_ptr<Conn> conn) {
  const size_t keep = static_cast<size_t>(std::max(8, options.max_in_flight * 2));
  conn->last_used = Clock::now();
  if (idle.size() >= keep) idle.erase(idle.begin());
  idle.push_back(std::move(conn));
}

std::optional<std::string> Http1Client::Impl::Context(ssl::context** out) {
  if (tls_context_error) return tls_context_error;
  if (!tls_context) {
    const TlsOptions& t = options.transfer.tls;
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    const char* step = "";
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    if (t.verify) {
      ctx->set_verify_mode(ssl::verify_peer);
      step = "the CA file";
      if (t.ca_file.empty()) {
        ctx->set_default_verify_paths(ec);
      } else {
        ctx->load_verify_file(t.ca_file, ec);
      }
    } else {
      ctx->set_verify_mode(ssl::verify_none);
    }
    if (!ec && !t.client_cert.empty()) {
      step = "the client certificate";
      ctx->use_certificate_chain_file(t.client_cert, ec);
      if (!ec) {
        step = "the client key";
        std::string password = t.key_password;
        ctx->set_password_callback(
            [password](size_t, ssl::context::password_purpose) { return password; }, ec);
        if (!ec) {
          ctx->use_private_key_file(t.client_key.empty() ? t.client_cert : t.client_key,
                                    ssl::context::pem, ec);
        }
      }
    }
    if (ec) {
      tls_context_error = std::string(step) + ": " + ec.message();
      return tls_context_error;
    }
    tls_context = std::move(ctx);
  }
  *out = tls_context.get();
  return std::nullopt;
}

Status Http1Client::Impl::Failed(const Job& job, const char* what, const std::string& detail,
                                 bool transient) const {
  std::string m =
      std::string(what) + " " + SafeUrl(job.request->shown_url()) + ": " + Excerpt(detail, 200);
  return transient ? Status::Transient(std::move(m)) : Status::Permanent(std::move(m));
}

Status Http1Client::Impl::TimedOut(const Job& job) const {
  return Failed(job, "timed out talking to",
                "Operation timed out after " + Millis(Clock::now() - job.started) + " milliseconds",
                true);
}

Awaitable<Status> Http1Client::Impl::Connect(Job& job, std::unique_ptr<Conn>* out) {
  auto ex = co_await asio::this_coro::executor;
  auto conn = std::make_unique<Conn>(ex);
  conn->origin = job.url.origin;
  const auto& o = options.transfer;
  auto connect_deadline = o.connect_timeout_seconds > 0
                              ? job.started + Seconds(o.connect_timeout_seconds)
                              : Clock::time_point::max();
  connect_deadline = std::min(connect_deadline, job.deadline);

  asio::ip::basic_resolver<tcp, Executor> resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(job.url.host, job.url.port, kNoThrow);
  if (rec) co_return Failed(job, "resolving the host of", rec.message(), true);
  if (Clock::now() >= connect_deadline) co_return TimedOut(job);
  if (connect_deadline != Clock::time_point::max()) conn->tcp.expires_at(connect_deadline);
  auto [cec, ep] = co_await conn->tcp.async_connect(endpoints, kNoThrow);
  if (cec == beast::error::timeout) co_return TimedOut(job);
  if (cec) co_return Failed(job, "connecting to", cec.message(), true);
  boost::system::error_code ignored;
  conn->tcp.socket().set_option(tcp::no_delay(true), ignored);
  conn->tcp.socket().set_option(asio::socket_base::keep_alive(true), ignored);

  if (job.url.tls) {
    ssl::context* ctx = nullptr;
    if (auto error = Context(&ctx)) {
      co_return Failed(job, "the local TLS certificate, key or settings cannot be used for", *error,
                       false);
    }
    conn->tls = std::make_unique<TlsStream>(std::move(conn->tcp), *ctx);
    SSL* ssl = conn->tls->native_handle();
    if (!job.url.ip_literal) SSL_set_tlsext_host_name(ssl, job.url.host.c_str());
    if (options.transfer.tls.verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (job.url.ip_literal) {
        X509_VERIFY_PARAM_set1_ip_asc(param, job.url.host.c_str());
      } else {
        X509_VERIFY_PARAM_set1_host(param, job.url.host.c_str(), 0);
      }
    }
    auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kNoThrow);
    if (hec == beast::error::timeout) co_return TimedOut(job);
    if (hec) {
      long verify = SSL_get_verify_result(ssl);
      if (options.transfer.tls.verify && verify != X509_V_OK) {
        co_return Failed(job, "TLS certificate verification failed for",
                         X509_verify_cert_error_string(verify), false);
      }
      std::string detail = hec.message();
      if (detail.find("alert") != std::string::npos) {
        co_return Failed(job, "TLS handshake rejected by", detail, false);
      }
      co_return Failed(job, "TLS handshake failed with", detail, true);
    }
  }
  *out = std::move(conn);
  co_return Status::OK();
}

void Http1Client::Impl::Head(const Job& job, std::string* out) const {
  const HttpRequest& req = *job.request;
  std::string& h = *out;
  h.assign(req.method.empty() ? "GET" : req.method);
  for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const bool has_body = SendsBody(h, req.body);
  h += ' ';
  h += job.url.target;
  h += " HTTP/1.1\r\n";
  bool own_host = false;
  for (const auto& [name, value] : req.headers) own_host = own_host || EqualsNoCase(name, "host");
  if (!own_host) {
    h += "Host: ";
    h += job.url.host_header;
    h += "\r\n";
  }
  h += "User-Agent: ";
  h += options.transfer.user_agent;
  h += "\r\nAccept: */*\r\n";
  for (const auto& [name, value] : req.headers) {
    h += name;
    h += value.empty() ? ":" : ": ";
    h += value;
    h += "\r\n";
  }
  if (has_body) {
    h += "Content-Length: ";
    h += std::to_string(req.body.size());
    h += "\r\n";
  }
  h += "\r\n";
}

template <class Stream>
Awaitable<Status> Http1Client::Impl::WriteRead(Stream& stream, Conn& conn, Job& job, bool* keep) {
  const HttpRequest& req = *job.request;
  const bool head = EqualsNoCase(req.method, "HEAD");
  Head(job, &conn.head);
  auto& lowest = conn.lowest();
  if (job.deadline != Clock::time_point::max()) {
    lowest.expires_at(job.deadline);
  } else {
    lowest.expires_never();
  }
  // Header and body in one write (one sendmsg for a plain connection).
  job.info->request_sent = true;
  std::array<asio::const_buffer, 2> request{asio::buffer(conn.head), asio::buffer(req.body)};
  auto [wec, wrote] = co_await asio::async_write(stream, request, kNoThrow);
  if (wec == beast::error::timeout) co_return TimedOut(job);
  if (wec) co_return Failed(job, "the connection failed while talking to", wec.message(), true);

  std::optional<http::response_parser<http::string_body>> parser;
  for (;;) {
    parser.emplace();
    parser->header_limit(100 * 1024);
    parser->body_limit(options.transfer.max_reply_bytes);
    if (head) parser->skip(true);
    auto [rec, got] = co_await http::async_read(stream, conn.buffer, *parser, kNoThrow);
    if (rec == http::error::body_limit) {
      co_return ReplyTooLarge(req.shown_url(), options.transfer.max_reply_bytes);
    }
    if (rec == beast::error::timeout) co_return TimedOut(job);
    if (rec == http::error::end_of_stream) {
      co_return Failed(job, "the connection failed while talking to", "Empty reply from server",
                       true);
    }
    if (rec == http::error::partial_message && parser->content_length_remaining()) {
      co_return Failed(job, "the connection failed while talking to",
                       "transfer closed with " +
                           std::to_string(*parser->content_length_remaining()) +
                           " bytes remaining to read",
                       true);
    }
    if (rec == http::error::partial_message && parser->is_header_done()) {
      co_return Failed(job, "the connection failed while talking to",
                       "transfer closed with outstanding read data remaining", true);
    }
    if (rec == http::error::partial_message || rec == asio::error::eof ||
        rec == asio::error::connection_reset || rec == asio::error::broken_pipe ||
        rec.category() == asio::error::get_ssl_category() || rec == ssl::error::stream_truncated) {
      co_return Failed(job, "the connection failed while talking to", rec.message(), true);
    }
    if (rec)
      co_return Failed(job, "transfer failed with", "reading the reply: " + rec.message(), false);
    const unsigned status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) break;  // 1xx: the real reply follows
  }
  auto& msg = parser->get();
  HttpReply reply;
  reply.status = msg.result_int();
  for (const auto& field : msg) AddReplyHeader(&reply, field.name_string(), field.value());
  reply.body = std::move(msg.body());
  *keep = parser->keep_alive();
  *job.result = std::move(reply);
  co_return Status::OK();
}

Awaitable<void> Http1Client::Impl::Exchange(Job& job) {
  job.started = Clock::now();
  const double timeout = options.transfer.timeout_seconds;
  job.deadline = timeout > 0 ? job.started + Seconds(timeout) : Clock::time_point::max();
  std::unique_ptr<Conn> conn = TakeIdle(job.url.origin);
  Status st = Status::OK();
  if (!conn) st = co_await Connect(job, &conn);
  bool keep = false;
  if (st.ok()) {
    // (not a ?: - GCC 12 miscompiles co_await in conditional expressions)
    if (conn->tls) {
      st = co_await WriteRead(*conn->tls, *conn, job, &keep);
    } else {
      st = co_await WriteRead(conn->tcp, *conn, job, &keep);
    }
  }
  if (!st.ok()) *job.result = std::move(st);
  // Bytes past the reply (a server talking unasked) would be read as the next
  // reply: such a connection is closed.
  if (st.ok() && keep && conn->buffer.size() == 0) PutIdle(std::move(conn));
  job.info->seconds = std::chrono::duration<double>(Clock::now() - job.started).count();
}

Awaitable<void> Http1Client::Impl::Worker(std::vector<Job>* jobs, size_t* next,
                                          Clock::time_point* next_start) {
  const double rate = options.rate_limit;
  const auto interval = rate > 0 ? Seconds(1.0 / rate) : Clock::duration::zero();
  asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor> timer(
      co_await asio::this_coro::executor);
  while (*next < jobs->size()) {
    Job& job = (*jobs)[(*next)++];
    if (rate > 0) {
      auto at = std::max(*next_start, Clock::now());
      *next_start = at + interval;
      if (at > Clock::now()) {
        timer.expires_at(at);
        co_await timer.async_wait(kNoThrow);
      }
    }
    co_await Exchange(job);
  }
}

Http1Client::Http1Client(const ClientOptions& options) : impl_(new Impl(options)) {}
Http1Client::~Http1Client() = default;

std::vector<size_t> Http1Client::PerformMany(const std::vector<HttpRequest>& requests,
                                             std::vector<Result<HttpReply>>* results,
                                             std::vector<TransferInfo>* infos,
                                             Clock::time_point* next_start) {
  static const bool kProxy = ProxyInEnvironment();
  std::vector<size_t> declined;
  std::vector<Impl::Job> jobs;
  std::vector<TransferInfo> own_infos;
  if (!infos) own_infos.resize(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    std::optional<Url> url;
    if (!kProxy && !CurlManagedHeaders(requests[i].headers)) url = ParseUrl(requests[i].url);
    if (!url) {
      declined.push_back(i);
      continue;
    }
    Impl::Job& job = jobs.emplace_back();
    job.request = &requests[i];
    job.url = std::move(*url);
    job.result = &(*results)[i];
    job.info = infos ? &(*infos)[i] : &own_infos[i];
  }
  if (jobs.empty()) return declined;
  size_t next = 0;
  std::exception_ptr failure;
  const size_t workers =
      std::min(jobs.size(), static_cast<size_t>(std::max(1, impl_->options.max_in_flight)));
  impl_->io.restart();
  for (size_t w = 0; w < workers; ++w) {
    asio::co_spawn(impl_->io, impl_->Worker(&jobs, &next, next_start),
                   [&failure](std::exception_ptr e) {
                     if (e && !failure) failure = e;
                   });
  }
  impl_->io.run();
  if (failure) std::rethrow_exception(failure);
  return declined;
}

}  // namespace keyonce::connectors::net
