// Settings shared by the network connectors: TLS, timeouts, `auth`.

#include <algorithm>

#include "connectors/common/net/transfer.h"

namespace keyonce::connectors::net {
namespace {

FieldSpec PathTmpl(const std::string& name, const std::string& what, const std::string& example) {
  return FieldSpec::Tmpl(name, TemplateContext::kText)
      .Roots(kRootsStatic)
      .Describe(what + " Relative paths are resolved against the recipe's folder.")
      .Example(example);
}

FieldSpec SecretTmpl(const std::string& name, const std::string& what, const std::string& example) {
  FieldSpec f = FieldSpec::Tmpl(name, TemplateContext::kText).Roots(kRootsStatic).Describe(what);
  f.Example(example);
  f.secret = true;
  return f;
}

Result<std::string> RenderStatic(const Template& t, const Scope& scope, const std::string& name) {
  auto r = t.Render(scope);
  if (!r.ok()) return r.status().Wrap(name);
  return std::move(r).value();
}

// The auth keys and whether each is a secret.
struct AuthKey {
  const char* name;
  bool secret;
};
constexpr AuthKey kAuthKeys[] = {
    {"username", false},  {"password", true},      {"token", true},
    {"header", false},    {"value", true},         {"token_url", false},
    {"client_id", false}, {"client_secret", true}, {"scope", false},
};
constexpr const char* kAuthTypes[] = {
    "none", "basic", "bearer", "api_key", "oauth2_client_credentials", "oauth2_password"};

std::optional<Template>* Slot(AuthConfig& c, std::string_view name) {
  if (name == "username") return &c.username;
  if (name == "password") return &c.password;
  if (name == "token") return &c.token;
  if (name == "header") return &c.header;
  if (name == "value") return &c.value;
  if (name == "token_url") return &c.token_url;
  if (name == "client_id") return &c.client_id;
  if (name == "client_secret") return &c.client_secret;
  if (name == "scope") return &c.scope;
  return nullptr;
}

}  // namespace

// ------------------------------------------------------------ TLS

std::vector<FieldSpec> TlsFields() {
  return {
      FieldSpec::Bool("tls_verify")
          .Default("true")
          .Describe("Verify the server's TLS certificate and host name. false is for tests only: "
                    "anyone on the way could read and change the traffic (validate and every run "
                    "warn).")
          .WarnIf("false",
                  "tls_verify is false: the server's certificate is not checked, so anyone on the "
                  "network path can read and change what is sent; trust a private CA with ca_file "
                  "instead")
          .Example("true"),
      PathTmpl("ca_file",
               "PEM file with the certificate authorities to trust instead of the system's "
               "(e.g. a municipality's own CA).",
               "certs/ca.pem"),
      PathTmpl("client_cert",
               "PEM client certificate for mutual TLS (e.g. the national service platform's "
               "function certificate); may hold the key too.",
               "certs/client.pem"),
      PathTmpl("client_key", "PEM private key of client_cert, when it is in its own file.",
               "certs/client.key"),
      SecretTmpl("client_key_password",
                 "Passphrase of an encrypted client_key; must come from secrets.",
                 "\"{{ secrets.client_key_password }}\""),
  };
}

void AddTlsSettings(ComponentSpec& spec) {
  for (auto& f : TlsFields()) spec.fields.push_back(std::move(f));
}

Result<TlsOptions> ReadTls(const Settings& s, const Scope& scope) {
  TlsOptions tls;
  tls.verify = s.Bool("tls_verify").value_or(true);
  for (auto [name, out] :
       {std::pair{"ca_file", &tls.ca_file}, std::pair{"client_cert", &tls.client_cert},
        std::pair{"client_key", &tls.client_key}}) {
    if (!s.Tmpl(name)) continue;
    auto p = s.ResolvePath(name, scope);
    if (!p.ok()) return p.status();
    *out = p->string();
  }
  if (const Template* t = s.Tmpl("client_key_password")) {
    auto r = RenderStatic(*t, scope, "client_key_password");
    if (!r.ok()) return r.status();
    tls.key_password = std::move(r).value();
  }
  return tls;
}

// ------------------------------------------------------------ timeouts

std::vector<FieldSpec> TimeoutFields() {
  return {
      FieldSpec::Number("timeout_seconds")
          .Default("30")
          .Describe("Longest time one request may take, connecting included; a request that takes "
                    "longer fails as transient and is retried. 0 = no limit.")
          .Example("30"),
      FieldSpec::Number("connect_timeout_seconds")
          .Default("10")
          .Describe("Longest time to wait for a connection (TCP and TLS handshake).")
          .Example("10"),
      FieldSpec::Int("max_reply_bytes")
          .Default("16777216")
          .Describe(
              "Largest reply accepted, in bytes; a bigger reply is cut off and the request fails "
              "with a clear error instead of filling memory.")
          .Example("16777216"),
  };
}

void AddTimeoutSettings(ComponentSpec& spec) {
  for (auto& f : TimeoutFields()) spec.fields.push_back(std::move(f));
}

Result<TransferOptions> ReadTransferOptions(const Settings& s, const RunContext& ctx) {
  const Scope& scope = ctx.scope;
  TransferOptions o;
  o.max_reply_bytes = ctx.limits.reply_bytes;
  if (auto v = s.Number("timeout_seconds")) o.timeout_seconds = *v;
  if (auto v = s.Number("connect_timeout_seconds")) o.connect_timeout_seconds = *v;
  if (auto v = s.Int("max_reply_bytes"); v && *v > 0) o.max_reply_bytes = static_cast<size_t>(*v);
  auto tls = ReadTls(s, scope);
  if (!tls.ok()) return tls.status();
  o.tls = std::move(tls).value();
  return o;
}

Status CheckTransferSettings(const Settings& s) {
  for (const char* name : {"timeout_seconds", "connect_timeout_seconds"}) {
    if (auto v = s.Number(name); v && *v < 0) {
      return Status::Invalid(std::string(name) + " must not be negative");
    }
  }
  if (auto v = s.Int("max_reply_bytes"); v && *v <= 0) {
    return Status::Invalid("max_reply_bytes must be positive");
  }
  if (s.Tmpl("client_key") && !s.Tmpl("client_cert")) {
    return Status::Invalid("client_key is set but client_cert is not");
  }
  if (s.Tmpl("client_key_password") && !s.Tmpl("client_cert")) {
    return Status::Invalid("client_key_password is set but client_cert is not");
  }
  return Status::OK();
}

// ------------------------------------------------------------ auth

FieldSpec AuthField(const std::string& name) {
  auto tmpl = [](const char* n, const char* what, const char* example) {
    return FieldSpec::Tmpl(n, TemplateContext::kText)
        .Roots(kRootsStatic)
        .Describe(what)
        .Example(example);
  };
  auto secret = [](const char* n, const char* what, const char* example) {
    return SecretTmpl(n, what, example);
  };
  return FieldSpec::Object(
             name,
             {
                 FieldSpec::Enum("type", {std::begin(kAuthTypes), std::end(kAuthTypes)})
                     .Required()
                     .Describe("basic: user name and password; bearer: a fixed token; api_key: a "
                               "header with a key; oauth2_client_credentials / oauth2_password: a "
                               "token fetched from token_url (cached until shortly before it "
                               "expires, fetched again after a 401).")
                     .Example("oauth2_client_credentials"),
                 tmpl("username", "User name (basic, oauth2_password).", "\"{{ params.user }}\""),
                 secret("password", "Password (basic, oauth2_password); must come from secrets.",
                        "\"{{ secrets.api_password }}\""),
                 secret("token", "Bearer token (bearer); must come from secrets.",
                        "\"{{ secrets.api_token }}\""),
                 tmpl("header", "Header carrying the key (api_key). Default: X-API-Key.",
                      "X-API-Key"),
                 secret("value", "The key (api_key); must come from secrets.",
                        "\"{{ secrets.api_key }}\""),
                 tmpl("token_url", "Token endpoint (oauth2_*).",
                      "https://login.example.dk/oauth2/token"),
                 tmpl("client_id", "Client id (oauth2_*).", "keyonce"),
                 secret("client_secret", "Client secret (oauth2_*); must come from secrets.",
                        "\"{{ secrets.client_secret }}\""),
                 tmpl("scope", "Scopes to ask for, space-separated (oauth2_*, optional).",
                      "cases.write"),
             })
      .Describe(
          "How to authenticate. Every value is a template over params, secrets, run and state "
          "(never the record); passwords, tokens, keys and client secrets must come from "
          "secrets. Fetched OAuth2 tokens are kept out of every log and error message.")
      .Example("{type: bearer, token: \"{{ secrets.api_token }}\"}");
}

void AddAuthSettings(ComponentSpec& spec) { spec.fields.push_back(AuthField()); }

Result<AuthConfig> ReadAuth(const Settings& settings, const std::string& name) {
  AuthConfig c;
  const Value* raw = settings.Raw(name);
  if (!raw || raw->is_null()) return c;
  if (!raw->is_object()) return Status::Invalid(name + " must be a mapping");
  const auto& o = raw->get_object();
  const Value* type = o.if_contains("type");
  if (!type || !type->is_string()) {
    return Status::Invalid(name +
                           ".type is required: one of none, basic, bearer, api_key, "
                           "oauth2_client_credentials, oauth2_password");
  }
  std::string t(type->get_string());
  if (t == "none")
    c.type = AuthType::kNone;
  else if (t == "basic")
    c.type = AuthType::kBasic;
  else if (t == "bearer")
    c.type = AuthType::kBearer;
  else if (t == "api_key")
    c.type = AuthType::kApiKey;
  else if (t == "oauth2_client_credentials")
    c.type = AuthType::kOAuth2ClientCredentials;
  else if (t == "oauth2_password")
    c.type = AuthType::kOAuth2Password;
  else {
    return Status::Invalid(name + ".type '" + t +
                           "' is not one of: none, basic, bearer, api_key, "
                           "oauth2_client_credentials, oauth2_password");
  }
  for (const auto& kv : o) {
    std::string key(kv.key());
    if (key == "type") continue;
    auto it = std::find_if(std::begin(kAuthKeys), std::end(kAuthKeys),
                           [&](const AuthKey& k) { return key == k.name; });
    if (it == std::end(kAuthKeys)) {
      return Status::Invalid(name + ": unknown key '" + key +
                             "' (known: type, username, password, token, header, value, "
                             "token_url, client_id, client_secret, scope)");
    }
    const std::string path = name + "." + key;
    if (!kv.value().is_string() && !kv.value().is_number()) {
      return Status::Invalid(path + " must be a string");
    }
    std::string text = ToText(kv.value());
    TemplateError err;
    auto tmpl = Template::Compile(text, TemplateContext::kText, &err);
    if (!tmpl) {
      return Status::Invalid(path + ": " + err.message + " at offset " +
                             std::to_string(err.offset));
    }
    for (const auto& ref : tmpl->References()) {
      if (ref.root != "params" && ref.root != "secrets" && ref.root != "run" &&
          ref.root != "state") {
        return Status::Invalid(path + " may read params, secrets, run and state only, not '" +
                               ref.root + "'");
      }
    }
    if (it->secret && tmpl->IsConstant()) {
      return Status::Invalid(
          path + ": a secret must not be written in the recipe; use {{ secrets.NAME }}");
    }
    *Slot(c, key) = std::move(*tmpl);
  }
  auto need = [&](const std::optional<Template>& slot, const char* key) -> Status {
    if (slot) return Status::OK();
    return Status::Invalid(name + "." + key + " is required for type " + t);
  };
  switch (c.type) {
    case AuthType::kNone:
      break;
    case AuthType::kBasic:
      KEYONCE_RETURN_IF_ERROR(need(c.username, "username"));
      KEYONCE_RETURN_IF_ERROR(need(c.password, "password"));
      break;
    case AuthType::kBearer:
      KEYONCE_RETURN_IF_ERROR(need(c.token, "token"));
      break;
    case AuthType::kApiKey:
      KEYONCE_RETURN_IF_ERROR(need(c.value, "value"));
      break;
    case AuthType::kOAuth2Password:
      KEYONCE_RETURN_IF_ERROR(need(c.username, "username"));
      KEYONCE_RETURN_IF_ERROR(need(c.password, "password"));
      [[fallthrough]];
    case AuthType::kOAuth2ClientCredentials:
      KEYONCE_RETURN_IF_ERROR(need(c.token_url, "token_url"));
      KEYONCE_RETURN_IF_ERROR(need(c.client_id, "client_id"));
      if (c.type == AuthType::kOAuth2ClientCredentials) {
        KEYONCE_RETURN_IF_ERROR(need(c.client_secret, "client_secret"));
      }
      break;
  }
  return c;
}

}  // namespace keyonce::connectors::net
