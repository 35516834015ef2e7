// Authenticator: basic, bearer, API key and OAuth2 tokens (transfer.h).

#include <openssl/evp.h>

#include <boost/json/parse.hpp>

#include "connectors/common/net/transfer.h"

namespace keyonce::connectors::net {
namespace {

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace

Authenticator::Authenticator(AuthConfig config) : config_(std::move(config)) {}

Status Authenticator::Open(const RunContext& ctx, const TransferOptions& transfer) {
  log_ = ctx.log;
  transfer_ = transfer;
  secrets_.clear();
  access_token_.clear();
  struct Slot {
    const std::optional<Template>* tmpl;
    std::string* out;
    const char* name;
    bool secret;
  };
  const Slot slots[] = {
      {&config_.username, &username_, "auth.username", false},
      {&config_.password, &password_, "auth.password", true},
      {&config_.token, &token_, "auth.token", true},
      {&config_.header, &header_, "auth.header", false},
      {&config_.value, &value_, "auth.value", true},
      {&config_.token_url, &token_url_, "auth.token_url", false},
      {&config_.client_id, &client_id_, "auth.client_id", false},
      {&config_.client_secret, &client_secret_, "auth.client_secret", true},
      {&config_.scope, &scope_, "auth.scope", false},
  };
  for (const auto& s : slots) {
    s.out->clear();
    if (!*s.tmpl) continue;
    auto r = (*s.tmpl)->Render(ctx.scope);
    if (!r.ok()) return r.status().Wrap(s.name);
    *s.out = std::move(r).value();
    if (s.secret && !s.out->empty()) {
      secrets_.push_back(*s.out);
      if (log_) log_->AddSecret(*s.out);
    }
  }
  if (header_.empty()) header_ = "X-API-Key";
  if (config_.type == AuthType::kBasic) {
    std::string b = Base64(username_ + ":" + password_);
    secrets_.push_back(b);
    if (log_) log_->AddSecret(b);
  }
  if (config_.type == AuthType::kOAuth2ClientCredentials ||
      config_.type == AuthType::kOAuth2Password) {
    if (token_url_.empty()) return Status::Invalid("auth.token_url renders empty");
  }
  return Status::OK();
}

Status Authenticator::FetchToken() {
  if (!token_client_) {
    ClientOptions co;
    co.transfer = transfer_;
    co.max_in_flight = 1;
    token_client_ = std::make_unique<HttpClient>(co);
  }
  HttpRequest req;
  req.method = "POST";
  req.url = token_url_;
  req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
  req.headers.push_back({"Accept", "application/json"});
  std::string body = config_.type == AuthType::kOAuth2Password ? "grant_type=password"
                                                               : "grant_type=client_credentials";
  if (config_.type == AuthType::kOAuth2Password) {
    body += "&username=" + UrlEncode(username_) + "&password=" + UrlEncode(password_);
  }
  body += "&client_id=" + UrlEncode(client_id_);
  if (!client_secret_.empty()) body += "&client_secret=" + UrlEncode(client_secret_);
  if (!scope_.empty()) body += "&scope=" + UrlEncode(scope_);
  req.body = std::move(body);
  ++token_requests_;
  const std::string where = "requesting an OAuth2 token from " + SafeUrl(token_url_);
  auto r = token_client_->Perform(req);
  if (!r.ok()) return Status(r.status()).Wrap("authenticating");
  const HttpReply& reply = *r;
  if (reply.status < 200 || reply.status >= 300) {
    Status st = HttpStatus(reply.status, reply.headers, Scrub(reply.body), token_url_);
    std::string msg = "OAuth2 token request was refused: " + st.message();
    if (st.IsTransient()) return Status::Transient(msg);
    return Status::Permanent(msg);
  }
  boost::system::error_code ec;
  Value v = boost::json::parse(reply.body, ec);
  const Value* tok = nullptr;
  if (!ec && v.is_object()) tok = v.get_object().if_contains("access_token");
  if (!tok || !tok->is_string() || tok->get_string().empty()) {
    return Status::Permanent(where + ": the reply has no access_token" +
                             (ec ? " (it is not valid JSON)" : ""));
  }
  access_token_ = std::string(tok->get_string());
  secrets_.push_back(access_token_);
  if (log_) log_->AddSecret(access_token_);
  double lifetime = -1;
  if (const Value* e = v.get_object().if_contains("expires_in")) {
    if (e->is_number()) {
      lifetime = e->to_number<double>();
    } else if (e->is_string()) {
      try {
        lifetime = std::stod(std::string(e->get_string()));
      } catch (...) {
        lifetime = -1;
      }
    }
  }
  auto now = std::chrono::steady_clock::now();
  if (lifetime < 0) {
    token_expiry_ = std::chrono::steady_clock::time_point::max();  // until a 401
  } else {
    double keep = lifetime > 60 ? lifetime - 30 : lifetime / 2;
    token_expiry_ = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(keep));
  }
  return Status::OK();
}

Status Authenticator::Apply(HttpRequest* request) {
  switch (config_.type) {
    case AuthType::kNone:
      return Status::OK();
    case AuthType::kBasic:
      request->headers.push_back({"Authorization", "Basic " + Base64(username_ + ":" + password_)});
      return Status::OK();
    case AuthType::kBearer:
      request->headers.push_back({"Authorization", "Bearer " + token_});
      return Status::OK();
    case AuthType::kApiKey:
      request->headers.push_back({header_, value_});
      return Status::OK();
    case AuthType::kOAuth2ClientCredentials:
    case AuthType::kOAuth2Password:
      if (access_token_.empty() || std::chrono::steady_clock::now() >= token_expiry_) {
        access_token_.clear();
        KEYONCE_RETURN_IF_ERROR(FetchToken());
      }
      request->headers.push_back({"Authorization", "Bearer " + access_token_});
      return Status::OK();
  }
  return Status::OK();
}

bool Authenticator::Invalidate(const HttpRequest& rejected) {
  if (config_.type != AuthType::kOAuth2ClientCredentials &&
      config_.type != AuthType::kOAuth2Password) {
    return false;
  }
  if (!access_token_.empty()) {
    const std::string current = "Bearer " + access_token_;
    for (const auto& [k, v] : rejected.headers) {
      if (k == "Authorization" && v == current) access_token_.clear();
    }
  }
  return true;
}

std::pair<std::string, std::string> Authenticator::MaskedHeader() const {
  switch (config_.type) {
    case AuthType::kNone:
      return {};
    case AuthType::kBasic:
      return {"Authorization", "Basic ***"};
    case AuthType::kApiKey:
      return {header_.empty() ? "X-API-Key" : header_, "***"};
    default:
      return {"Authorization", "Bearer ***"};
  }
}

std::string Authenticator::Scrub(std::string text) const {
  for (const auto& s : secrets_) {
    if (s.size() < 4) continue;
    size_t pos = 0;
    while ((pos = text.find(s, pos)) != std::string::npos) {
      text.replace(pos, s.size(), "***");
      pos += 3;
    }
  }
  return text;
}

}  // namespace keyonce::connectors::net
