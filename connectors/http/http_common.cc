// What the http source, target and lookup share: headers, auth, replies.

#include <boost/json/stream_parser.hpp>

#include "connectors/http/http_internal.h"

namespace keyonce::connectors::http {

void AddCommonFields(ComponentSpec& spec, unsigned header_roots) {
  spec.fields.push_back(
      FieldSpec::TmplMap("headers", TemplateContext::kText)
          .Roots(header_roots)
          .Describe("Extra request headers: name -> template. Authentication goes in `auth`, not "
                    "here (headers are shown in dry runs).")
          .Example("{Accept-Language: da, X-Request-Source: keyonce}"));
  net::AddAuthSettings(spec);
  net::AddTlsSettings(spec);
  net::AddTimeoutSettings(spec);
}

Value ReplyValue(const net::HttpReply& reply, Value body) {
  boost::json::object headers;
  for (const auto& [k, v] : reply.headers) {
    if (auto* old = headers.if_contains(k); old && old->is_string()) {
      std::string joined(old->get_string());
      joined += ", " + v;
      *old = joined;
    } else {
      headers[k] = v;
    }
  }
  boost::json::object o;
  o.emplace("status", static_cast<int64_t>(reply.status));
  o.emplace("headers", std::move(headers));
  o.emplace("body", std::move(body));
  return o;
}

Result<Value> ParseJsonBody(const net::HttpReply& reply, const std::string& url,
                            bool require_json) {
  if (require_json && !reply.IsJson()) {
    std::string mt = reply.MediaType();
    return Status::Permanent(
        "expected a JSON reply from " + net::SafeUrl(url) + ", got " +
        (mt.empty() ? std::string("no content type") : "content type " + net::Excerpt(mt, 80)));
  }
  if (reply.body.find_first_not_of(" \t\r\n") == std::string::npos) return Value();
  boost::json::parse_options opt;
  opt.max_depth = 64;
  boost::json::stream_parser p({}, opt);
  boost::system::error_code ec;
  size_t used = p.write_some(reply.body.data(), reply.body.size(), ec);
  if (!ec) {
    // Trailing garbage after the value: only whitespace allowed.
    size_t rest = reply.body.find_first_not_of(" \t\r\n", used);
    if (rest != std::string::npos) {
      used = rest;
      ec = boost::json::error::extra_data;
    } else if (!p.done()) {
      p.finish(ec);
      used = reply.body.size();
    }
  }
  if (ec) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < used && i < reply.body.size(); ++i) {
      if (reply.body[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return Status::Permanent("the reply from " + net::SafeUrl(url) + " (HTTP " +
                             std::to_string(reply.status) + ") is not valid JSON: " + ec.message() +
                             " at line " + std::to_string(line) + ", column " +
                             std::to_string(col));
  }
  return p.release();
}

Result<UrlTemplate> ReadUrl(const Settings& settings, const std::string& name) {
  const Template* t = settings.Tmpl(name);
  if (!t) return Status::Invalid(name + " is required");
  auto u = UrlTemplate::From(*t);
  if (!u.ok()) return u.status().Wrap(name);
  // A literal URL must be http(s): other schemes are refused by the
  // transfer layer anyway, but this says so at validation time.
  const std::string& src = t->source();
  if (src.rfind("{{", 0) != 0 && src.rfind("http://", 0) != 0 && src.rfind("https://", 0) != 0) {
    return Status::Invalid(name + " must start with http:// or https:// (or a {{ }} base URL)");
  }
  return u;
}

// ------------------------------------------------------------ Connection

Status Connection::Configure(const Settings& settings) {
  headers_ = &settings.TmplMap("headers");
  auto auth = net::ReadAuth(settings);
  if (!auth.ok()) return auth.status();
  auth_config_ = std::move(auth).value();
  return net::CheckTransferSettings(settings);
}

Status Connection::Open(const Settings& settings, const RunContext& ctx, int max_in_flight,
                        double rate_limit) {
  auto transfer = net::ReadTransferOptions(settings, ctx);
  if (!transfer.ok()) return transfer.status();
  if (!transfer->tls.verify && ctx.log) {
    ctx.log->Warn(settings.where +
                  ": tls_verify is false: the server's certificate is not checked, so anyone on "
                  "the way could read and change the traffic.");
  }
  net::ClientOptions co;
  co.transfer = *transfer;
  co.max_in_flight = max_in_flight;
  co.rate_limit = rate_limit;
  auth_ = net::Authenticator(auth_config_);
  KEYONCE_RETURN_IF_ERROR(auth_.Open(ctx, co.transfer));
  client_ = std::make_unique<net::HttpClient>(co);
  return Status::OK();
}

Status Connection::AddHeaders(const Scope& scope, net::HttpRequest* request) const {
  if (!headers_) return Status::OK();
  for (const auto& [name, tmpl] : *headers_) {
    auto v = tmpl.Render(scope);
    if (!v.ok()) return v.status().Wrap("headers." + name);
    std::string value = std::move(v).value();
    // A header value must not carry a line break (header injection).
    for (char& c : value) {
      if (c == '\r' || c == '\n') c = ' ';
    }
    request->headers.emplace_back(name, std::move(value));
  }
  return Status::OK();
}

Result<Value> Connection::RenderHeaders(const Scope& scope) const {
  net::HttpRequest r;
  KEYONCE_RETURN_IF_ERROR(AddHeaders(scope, &r));
  boost::json::object o;
  for (auto& [k, v] : r.headers) o[k] = v;
  return Value(std::move(o));
}

std::vector<Result<net::HttpReply>> Connection::PerformMany(std::vector<net::HttpRequest>* requests,
                                                            std::vector<net::TransferInfo>* infos) {
  const size_t n = requests->size();
  std::vector<Result<net::HttpReply>> out(n, Result<net::HttpReply>(Status::Internal("not sent")));
  if (infos) infos->assign(n, net::TransferInfo{});
  if (!client_) {
    for (auto& r : out) r = Status::Internal("http connection used before Open");
    return out;
  }
  // Attempt 0 sends everything; attempt 1 resends what came back 401 with a
  // fresh OAuth2 token.
  std::vector<size_t> todo(n);
  for (size_t i = 0; i < n; ++i) todo[i] = i;
  std::vector<size_t> own_headers(n);  // each request's headers before auth
  for (int attempt = 0; attempt < 2 && !todo.empty(); ++attempt) {
    std::vector<size_t> where;
    for (size_t i : todo) {
      net::HttpRequest& req = (*requests)[i];
      if (attempt == 0) own_headers[i] = req.headers.size();
      req.headers.resize(own_headers[i]);
      Status st = auth_.Apply(&req);
      if (!st.ok()) {
        out[i] = st;
        continue;
      }
      where.push_back(i);
    }
    // All of them as they are, or copies of the few that are sent (again).
    std::vector<net::HttpRequest> some;
    if (where.size() != n) {
      for (size_t i : where) some.push_back((*requests)[i]);
    }
    const std::vector<net::HttpRequest>& batch = where.size() == n ? *requests : some;
    std::vector<net::TransferInfo> got_infos;
    auto got = client_->PerformMany(batch, infos ? &got_infos : nullptr);
    todo.clear();
    for (size_t j = 0; j < got.size(); ++j) {
      size_t i = where[j];
      if (infos) (*infos)[i] = got_infos[j];
      if (attempt == 0 && got[j].ok() && got[j]->status == 401 && auth_.Invalidate(batch[j])) {
        todo.push_back(i);
        continue;
      }
      out[i] = std::move(got[j]);
    }
  }
  return out;
}

Result<net::HttpReply> Connection::Perform(net::HttpRequest request, net::TransferInfo* info) {
  std::vector<net::HttpRequest> one;
  one.push_back(std::move(request));
  std::vector<net::TransferInfo> infos;
  auto r = PerformMany(&one, info ? &infos : nullptr);
  if (info) *info = infos[0];
  return std::move(r[0]);
}

Status Connection::ReplyStatus(const net::HttpReply& reply, const std::string& url) const {
  return net::HttpStatus(reply.status, reply.headers, auth_.Scrub(reply.body), url);
}

}  // namespace keyonce::connectors::http
