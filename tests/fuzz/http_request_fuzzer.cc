// Fuzzes the service's HTTP request handling up to its routing: the raw bytes
// go through Beast's request parser with the service's limits (as
// HttpServer's sessions read them, in pieces), and a request that parses goes
// through keyonce's own request handling: the target's path and query
// (SplitPath, ParseForm, PercentDecode), ids (ToId), the session cookie
// (CookieValue), the JSON body of a run request, and the error replies.
//
// Those helpers are in engine/service/request_util.h; the fuzzer links
// keyonce_service.
#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "service/auth.h"
#include "service/http_server.h"
#include "service/request_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  using keyonce::service::Request;
  if (size > 128 * 1024) return -1;
  const keyonce::service::HttpLimits limits;
  http::request_parser<http::string_body> parser;
  parser.body_limit(limits.body_bytes);
  parser.header_limit(static_cast<uint32_t>(limits.header_bytes));
  parser.eager(true);
  // Feed the bytes as a socket would: in pieces of a size the first byte picks.
  const size_t piece = size ? 1 + data[0] % 61 : 1;
  boost::beast::flat_buffer buffer;
  boost::beast::error_code ec;
  size_t fed = 0;
  for (;;) {
    if (fed < size) {
      size_t n = std::min(piece, size - fed);
      auto dst = buffer.prepare(n);
      std::memcpy(dst.data(), data + fed, n);
      buffer.commit(n);
      fed += n;
    }
    size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == http::error::need_more) {
      ec = {};
      if (fed < size) continue;
      parser.put_eof(ec);
      break;
    }
    if (ec || parser.is_done()) break;
    if (fed >= size && used == 0) {
      parser.put_eof(ec);
      break;
    }
  }
  if (ec || !parser.is_done()) {
    // What the session answers to a malformed request.
    auto res =
        keyonce::service::JsonResponse(400, "{\"error\":\"malformed HTTP request\"}", 11, false);
    if (res.body().empty()) __builtin_trap();
    return 0;
  }
  Request req = parser.release();

  // Service::Handle's own parsing, in the same order.
  std::string_view target = req.target();
  size_t qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  auto query = qpos == std::string_view::npos
                   ? std::map<std::string, std::string>{}
                   : keyonce::service::ParseForm(target.substr(qpos + 1));
  for (const auto& [k, v] : query) (void)keyonce::service::ToId(v);
  auto parts = keyonce::service::SplitPath(path);
  for (const auto& p : parts) (void)keyonce::service::ToId(p);
  std::string sid = keyonce::service::CookieValue(req[http::field::cookie], "keyonce_session");
  std::string auth(req[http::field::authorization]);
  std::string csrf(req["X-CSRF-Token"]);
  (void)keyonce::service::SafeEquals(csrf, std::string(csrf.size(), 'x'));
  auto form = keyonce::service::ParseForm(req.body());
  (void)keyonce::service::ParseOr(req.body(), boost::json::object{});

  // The run request's body: {"params": {...}}.
  boost::system::error_code jec;
  boost::json::value body = boost::json::parse(req.body(), jec);
  std::string message = jec ? "the body is not valid JSON: " + jec.message() : "ok";
  if (!jec && body.is_object()) {
    if (auto p = body.as_object().find("params");
        p != body.as_object().end() && p->value().is_object()) {
      for (const auto& [k, v] : p->value().as_object()) {
        message = "parameter '" + std::string(k) + "' must be a string, number or boolean";
        (void)v;
      }
    }
  }
  auto res = keyonce::service::ErrorResponse(400, message, req, keyonce::service::FieldOf(message));
  if (res.body().empty()) __builtin_trap();
  return 0;
}
