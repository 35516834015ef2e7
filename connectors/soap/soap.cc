// The `soap` connector: a SOAP web service as a target (one operation per
// record, e.g. CreateCase) and as a lookup table (e.g. GetCitizen by key).
// Settings are declared here once, as data; envelopes and replies are
// soap_message.cc, transport, TLS and auth the shared network layer.

#include <algorithm>

#include "connectors/common/net/transfer.h"
#include "connectors/soap/soap_message.h"
#include "connectors/common/xml/xml_dom.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::soap {
namespace {

// ------------------------------------------------------------ configuration

// One SOAP operation: what its requests look like and what counts as found.
struct Operation {
  std::string action;
  std::shared_ptr<const Template> body;  // the Body's content (XML context)
  xml::XPathMap select;
  std::shared_ptr<const xml::XPath> found;
};

struct WsSecurityConfig {
  std::optional<Template> username, password;
  bool digest = false;
};

// Everything make_* checked, shared by the target and the lookup.
struct Config {
  SoapVersion version = SoapVersion::k11;
  xml::Namespaces namespaces;
  std::vector<std::string> not_found;
  std::optional<WsSecurityConfig> wsse;
  net::AuthConfig auth;
  Operation main;
  std::optional<Operation> exists;
  int max_in_flight = 4;
};

bool OnlyStaticRoots(const Template& t, std::string* bad_root) {
  for (const auto& ref : t.References()) {
    if (ref.root != "params" && ref.root != "secrets" && ref.root != "run" && ref.root != "state") {
      *bad_root = ref.root;
      return false;
    }
  }
  return true;
}

Result<Template> CompileAt(const Value& v, TemplateContext context, const std::string& path) {
  if (!v.is_string()) return Status::Invalid(path + " must be a string");
  TemplateError err;
  auto t = Template::Compile(std::string(v.as_string()), context, &err);
  if (!t) {
    return Status::Invalid(path + ": " + err.message + " at offset " + std::to_string(err.offset));
  }
  return std::move(*t);
}

Result<std::optional<WsSecurityConfig>> ReadWsSecurity(const Settings& s) {
  const Value* raw = s.Raw("ws_security");
  if (!raw || raw->is_null()) return std::optional<WsSecurityConfig>();
  if (!raw->is_object()) return Status::Invalid("ws_security must be a mapping");
  WsSecurityConfig c;
  for (const auto& kv : raw->as_object()) {
    std::string key(kv.key());
    std::string path = "ws_security." + key;
    if (key == "password_type") {
      std::string t = kv.value().is_string() ? std::string(kv.value().as_string()) : "";
      if (t != "text" && t != "digest") {
        return Status::Invalid(path + " must be text or digest");
      }
      c.digest = t == "digest";
      continue;
    }
    if (key != "username" && key != "password") {
      return Status::Invalid("ws_security: unknown key '" + key +
                             "' (known: username, password, password_type)");
    }
    auto t = CompileAt(kv.value(), TemplateContext::kText, path);
    if (!t.ok()) return t.status();
    std::string root;
    if (!OnlyStaticRoots(*t, &root)) {
      return Status::Invalid(path + " may read params, secrets, run and state only, not '" + root +
                             "'");
    }
    if (key == "password") {
      if (t->IsConstant()) {
        return Status::Invalid(path +
                               ": a secret must not be written in the recipe; use {{ "
                               "secrets.NAME }}");
      }
      c.password = std::move(*t);
    } else {
      c.username = std::move(*t);
    }
  }
  if (!c.username || !c.password) {
    return Status::Invalid("ws_security needs username and password");
  }
  return std::optional<WsSecurityConfig>(std::move(c));
}

Result<std::shared_ptr<const xml::XPath>> ReadXPath(const Value* raw, const std::string& path) {
  if (!raw || raw->is_null()) return std::shared_ptr<const xml::XPath>();
  if (!raw->is_string()) return Status::Invalid(path + " must be an XPath expression (a string)");
  auto x = xml::XPath::Compile(std::string(raw->as_string()), path);
  if (!x.ok()) return x.status();
  return std::make_shared<const xml::XPath>(std::move(x).value());
}

Result<Operation> ReadExists(const Value& raw, const xml::XPathMap& fallback_select) {
  if (!raw.is_object()) return Status::Invalid("exists must be a mapping");
  Operation op;
  op.select = fallback_select;
  for (const auto& kv : raw.as_object()) {
    std::string key(kv.key());
    std::string path = "exists." + key;
    if (key == "action") {
      if (!kv.value().is_string()) return Status::Invalid(path + " must be a string");
      op.action = std::string(kv.value().as_string());
    } else if (key == "body") {
      auto t = CompileAt(kv.value(), TemplateContext::kXml, path);
      if (!t.ok()) return t.status();
      for (const auto& ref : t->References()) {
        if (ref.root == "reply" || ref.root == "lookup" || ref.root == "key") {
          return Status::Invalid(path + " may not read '" + ref.root + "'");
        }
      }
      op.body = std::make_shared<const Template>(std::move(*t));
    } else if (key == "select") {
      auto m = xml::CompileXPathMap(&kv.value(), path);
      if (!m.ok()) return m.status();
      op.select = std::move(m).value();
    } else if (key == "found") {
      auto x = ReadXPath(&kv.value(), path);
      if (!x.ok()) return x.status();
      op.found = std::move(x).value();
    } else {
      return Status::Invalid("exists: unknown key '" + key +
                             "' (known: action, body, select, found)");
    }
  }
  if (!op.body) return Status::Invalid("exists.body is required");
  return op;
}

Result<Config> ReadConfig(const Settings& s, bool target) {
  Config c;
  c.version = s.String("version").value_or("1.1") == "1.2" ? SoapVersion::k12 : SoapVersion::k11;
  auto ns = xml::ParseNamespaces(s.Raw("namespaces"), "namespaces");
  if (!ns.ok()) return ns.status();
  c.namespaces = std::move(ns).value();
  c.not_found = s.StringList("not_found_faultcodes");
  auto wsse = ReadWsSecurity(s);
  if (!wsse.ok()) return wsse.status();
  c.wsse = std::move(wsse).value();
  auto auth = net::ReadAuth(s);
  if (!auth.ok()) return auth.status();
  c.auth = std::move(auth).value();
  KEYONCE_RETURN_IF_ERROR(net::CheckTransferSettings(s));

  c.main.action = s.String("action").value_or("");
  const Template* body = s.Tmpl("body");
  if (!body) return Status::Invalid("body is required");
  c.main.body = std::make_shared<const Template>(*body);
  auto select = xml::CompileXPathMap(s.Raw("select"), "select");
  if (!select.ok()) return select.status();
  c.main.select = std::move(select).value();
  if (target) {
    if (const Value* exists = s.Raw("exists"); exists && !exists->is_null()) {
      auto op = ReadExists(*exists, c.main.select);
      if (!op.ok()) return op.status();
      c.exists = std::move(op).value();
    }
    int64_t n = s.Int("max_in_flight").value_or(4);
    if (n < 1 || n > 64) return Status::Invalid("max_in_flight must be between 1 and 64");
    c.max_in_flight = static_cast<int>(n);
  } else {
    auto found = ReadXPath(s.Raw("found"), "found");
    if (!found.ok()) return found.status();
    c.main.found = std::move(found).value();
    c.max_in_flight = 1;
  }
  return c;
}

// ------------------------------------------------------------ the exchange

// What one request came to.
struct Outcome {
  Status status;
  Value reply;  // {status, body, select} when status is OK
  std::optional<SoapFault> fault;
  bool found = false;         // the operation's `found` (or selection) matched
  bool unauthorized = false;  // HTTP 401 (an OAuth2 token may be stale)
};

bool IsXmlType(const std::string& type) {
  return type == "text/xml" || type == "application/soap+xml" || type == "application/xml" ||
         (type.size() > 4 && type.compare(type.size() - 4, 4, "+xml") == 0);
}

Outcome Interpret(const Result<net::HttpReply>& r, const net::TransferInfo& info,
                  const Operation& op, const xml::Namespaces& namespaces, const std::string& url) {
  Outcome out;
  const std::string where = net::SafeUrl(url);
  if (!r.ok()) {
    out.status = r.status();
    // A reply cut short after the request went out: the service may have
    // acted on it, so sending it again could do it twice.
    if (out.status.IsTransient() && info.request_sent &&
        out.status.message().find("remaining to read") != std::string::npos) {
      out.status = Status::Permanent(
          "the reply from " + where +
          " was cut off (truncated) after the request was sent; the service may have acted on "
          "it, so check there before retrying");
    }
    return out;
  }
  const net::HttpReply& reply = r.value();
  out.unauthorized = reply.status == 401;
  const std::string type = reply.MediaType();
  Result<SoapReply> parsed = Status::Permanent("");
  if (IsXmlType(type) && !reply.body.empty()) parsed = SoapReply::Parse(reply.body);
  if (parsed.ok() && parsed->fault()) {
    out.fault = parsed->fault();
    out.status = Status::Permanent(out.fault->Message());
    return out;
  }
  if (reply.status < 200 || reply.status > 299) {
    out.status = net::HttpStatus(reply, url);
    return out;
  }
  if (reply.body.empty()) {
    if (reply.status == 202 || reply.status == 204) {  // a one-way operation
      out.reply = boost::json::object{{"status", reply.status},
                                      {"body", boost::json::object()},
                                      {"select", boost::json::object()}};
      out.found = true;
      return out;
    }
    out.status = Status::Permanent("the reply from " + where + " is empty (HTTP " +
                                   std::to_string(reply.status) + "), expected a SOAP envelope");
    return out;
  }
  if (!IsXmlType(type)) {
    out.status = Status::Permanent(
        "the reply from " + where + " has content type " +
        (type.empty() ? std::string("(none)") : "'" + net::Excerpt(type, 80) + "'") +
        ", not XML (expected text/xml or application/soap+xml)");
    return out;
  }
  if (!parsed.ok()) {
    out.status = parsed.status().Wrap("the reply from " + where);
    return out;
  }
  auto body = parsed->Body();
  if (!body.ok()) {
    out.status = body.status();
    return out;
  }
  auto selected = parsed->Select(op.select, namespaces);
  if (!selected.ok()) {
    out.status = selected.status();
    return out;
  }
  if (op.found) {
    auto m = parsed->Matches(*op.found, namespaces);
    if (!m.ok()) {
      out.status = m.status();
      return out;
    }
    out.found = *m;
  } else if (!op.select.empty()) {
    out.found = std::any_of(selected->as_object().begin(), selected->as_object().end(),
                            [](const auto& kv) { return !kv.value().is_null(); });
  } else {
    out.found = true;
  }
  out.reply = boost::json::object{
      {"status", reply.status}, {"body", std::move(*body)}, {"select", std::move(*selected)}};
  return out;
}

// The parts of the target and the lookup that talk to the service.
class Endpoint {
 public:
  Endpoint(Settings settings, Config config)
      : settings_(std::move(settings)), config_(std::move(config)), auth_(config_.auth) {}

  Status Open(const RunContext& ctx) {
    auto transfer = net::ReadTransferOptions(settings_, ctx);
    if (!transfer.ok()) return transfer.status().Wrap(settings_.where);
    net::ClientOptions options;
    options.transfer = *transfer;
    options.max_in_flight = config_.max_in_flight;
    client_ = std::make_unique<net::HttpClient>(options);
    KEYONCE_RETURN_IF_ERROR(auth_.Open(ctx, *transfer).Wrap(settings_.where));
    if (config_.wsse) {
      auto user = config_.wsse->username->Render(ctx.scope);
      if (!user.ok()) return user.status().Wrap(settings_.where + ": ws_security.username");
      auto password = config_.wsse->password->Render(ctx.scope);
      if (!password.ok()) return password.status().Wrap(settings_.where + ": ws_security.password");
      token_ = UsernameToken{*user, *password, config_.wsse->digest};
      if (ctx.log) ctx.log->AddSecret(*password);
    }
    return Status::OK();
  }

  // The request for one operation; `mask` writes secrets as *** (renders).
  Result<net::HttpRequest> Build(const Operation& op, const Scope& scope, bool mask) const {
    net::HttpRequest req;
    req.method = "POST";
    const Template* url_tmpl = settings_.Tmpl("url");
    auto url = url_tmpl->Render(scope);
    if (!url.ok()) return url.status().Wrap("rendering url");
    req.url = std::move(url).value();
    // A URL built from a record's values is shown as the recipe wrote it.
    if (!net::ShownInMessages(*url_tmpl)) req.display_url = url_tmpl->source();
    auto body = op.body->Render(scope);
    if (!body.ok()) return body.status().Wrap("rendering body");
    std::string header;
    if (const Template* h = settings_.Tmpl("soap_header")) {
      auto r = h->Render(scope);
      if (!r.ok()) return r.status().Wrap("rendering soap_header");
      header = std::move(r).value();
    }
    if (config_.wsse) {
      if (token_) {
        header += SecurityHeader(config_.version, *token_, mask);
      } else {
        // Not opened (a dry run): the user name rendered, the password never.
        UsernameToken t;
        auto user = config_.wsse->username->Render(scope);
        if (user.ok()) t.username = *user;
        t.digest = config_.wsse->digest;
        header += SecurityHeader(config_.version, t, /*mask_password=*/true);
      }
    }
    req.body = BuildEnvelope(config_.version, header, *body);
    req.headers = RequestHeaders(config_.version, op.action);
    for (const auto& [name, tmpl] : settings_.TmplMap("headers")) {
      auto v = tmpl.Render(scope);
      if (!v.ok()) return v.status().Wrap("rendering headers." + name);
      req.headers.emplace_back(name, std::move(v).value());
    }
    return req;
  }

  // What Render shows: the request without secrets.
  Result<Value> Show(const Operation& op, const Scope& scope) const {
    auto req = Build(op, scope, /*mask=*/true);
    if (!req.ok()) return req.status();
    boost::json::object headers;
    for (const auto& [k, v] : req->headers) headers[k] = v;
    auto [name, value] = auth_.MaskedHeader();
    if (!name.empty()) headers[name] = value;
    return Value(
        boost::json::object{{"url", net::SafeUrl(req->url)},
                            {"version", config_.version == SoapVersion::k11 ? "1.1" : "1.2"},
                            {"headers", std::move(headers)},
                            {"envelope", req->body}});
  }

  // Sends one request per scope (several in flight), retrying once with a
  // fresh token after an HTTP 401 when OAuth2 is in use.
  std::vector<Outcome> Exchange(const Operation& op, const std::vector<const Scope*>& scopes) {
    std::vector<Outcome> out(scopes.size());
    std::vector<net::HttpRequest> requests;
    std::vector<size_t> index;
    for (size_t i = 0; i < scopes.size(); ++i) {
      auto req = Build(op, *scopes[i], /*mask=*/false);
      Status st = req.ok() ? auth_.Apply(&*req) : req.status();
      if (!st.ok()) {
        out[i].status = st;
        continue;
      }
      requests.push_back(std::move(*req));
      index.push_back(i);
    }
    std::vector<net::TransferInfo> infos;
    auto replies = client_->PerformMany(requests, &infos);
    for (size_t k = 0; k < requests.size(); ++k) {
      Outcome o = Interpret(replies[k], infos[k], op, config_.namespaces, requests[k].shown_url());
      if (o.unauthorized && !o.status.ok() && auth_.Invalidate(requests[k])) {
        // Once more with a fresh OAuth2 token.
        auto req = Build(op, *scopes[index[k]], /*mask=*/false);
        Status st = req.ok() ? auth_.Apply(&*req) : req.status();
        if (st.ok()) {
          net::TransferInfo info;
          auto again = client_->Perform(*req, &info);
          o = Interpret(again, info, op, config_.namespaces, req->url);
        } else {
          o.status = st;
        }
      }
      // A reply quoted in a message may echo a credential.
      if (!o.status.ok()) o.status = o.status.WithMessage(auth_.Scrub(o.status.message()));
      out[index[k]] = std::move(o);
    }
    return out;
  }

  const Config& config() const { return config_; }

 private:
  Settings settings_;
  Config config_;
  std::unique_ptr<net::HttpClient> client_;
  net::Authenticator auth_;
  std::optional<UsernameToken> token_;
};

// ------------------------------------------------------------ target

class SoapTarget : public Target {
 public:
  SoapTarget(Settings settings, Config config)
      : endpoint_(std::move(settings), std::move(config)) {}

  TargetTraits Traits() const override {
    TargetTraits t;
    t.supports_update = false;
    t.idempotent = false;
    t.concurrent = endpoint_.config().max_in_flight > 1;
    return t;
  }

  Status Open(const RunContext& ctx) override { return endpoint_.Open(ctx); }

  Result<Value> Render(const WriteOp& op) override {
    if (!op.scope) return Status::Internal("soap: write without a scope");
    return endpoint_.Show(endpoint_.config().main, *op.scope);
  }

  WriteResult Write(const WriteOp& op) override { return std::move(WriteMany({op}).front()); }

  std::vector<WriteResult> WriteMany(const std::vector<WriteOp>& ops) override {
    std::vector<const Scope*> scopes;
    for (const auto& op : ops) scopes.push_back(op.scope);
    std::vector<WriteResult> out(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      if (!ops[i].scope) out[i].status = Status::Internal("soap: write without a scope");
    }
    std::vector<const Scope*> valid;
    std::vector<size_t> index;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].scope) {
        valid.push_back(ops[i].scope);
        index.push_back(i);
      }
    }
    auto outcomes = endpoint_.Exchange(endpoint_.config().main, valid);
    for (size_t k = 0; k < outcomes.size(); ++k) {
      out[index[k]].status = outcomes[k].status;
      out[index[k]].reply = std::move(outcomes[k].reply);
    }
    return out;
  }

  // Every reply is final at the service: nothing to make durable.
  Result<CommitResult> Commit(uint64_t, bool) override { return CommitResult{true, ""}; }

  // A SOAP service keeps no record of keyonce's batches.
  Result<RecoverResult> Recover(const RunContext&, uint64_t, const std::string&) override {
    return RecoverResult{};
  }

  Result<CheckResult> Check(const WriteOp& op) override {
    const auto& exists = endpoint_.config().exists;
    if (!exists) return CheckResult{};
    if (!op.scope) return Status::Internal("soap: check without a scope");
    Outcome o = std::move(endpoint_.Exchange(*exists, {op.scope}).front());
    CheckResult r;
    if (o.fault && o.fault->Matches(endpoint_.config().not_found)) {
      r.outcome = CheckResult::Outcome::kAbsent;
      return r;
    }
    if (!o.status.ok()) return o.status.Wrap("checking whether the record exists");
    r.outcome = o.found ? CheckResult::Outcome::kExists : CheckResult::Outcome::kAbsent;
    if (o.found) r.reply = std::move(o.reply);
    return r;
  }

 private:
  Endpoint endpoint_;
};

// ------------------------------------------------------------ lookup

class SoapLookup : public Lookup {
 public:
  SoapLookup(Settings settings, Config config)
      : endpoint_(std::move(settings), std::move(config)) {}

  Status Open(const RunContext& ctx) override {
    scope_ = ctx.scope;
    return endpoint_.Open(ctx);
  }

  Result<std::optional<Record>> Find(const Value& key) override {
    Scope scope = scope_;
    scope.key = &key;
    Outcome o = std::move(endpoint_.Exchange(endpoint_.config().main, {&scope}).front());
    if (o.fault && o.fault->Matches(endpoint_.config().not_found)) return std::optional<Record>();
    if (!o.status.ok()) return o.status;
    if (!o.found) return std::optional<Record>();
    const auto& reply = o.reply.as_object();
    const Value& row =
        endpoint_.config().main.select.empty() ? reply.at("body") : reply.at("select");
    return std::optional<Record>(row.as_object());
  }

 private:
  Endpoint endpoint_;
  Scope scope_;
};

// ------------------------------------------------------------ settings

std::vector<FieldSpec> RequestFields(bool target) {
  const unsigned roots = target ? kRootsRecord : (kRootsStatic | kRootKey);
  const std::string in = target ? "the record" : "the key ({{ key }})";
  std::vector<FieldSpec> f = {
      FieldSpec::Tmpl("url", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Required()
          .Describe("The service's endpoint address; may use params, secrets, run and state.")
          .Example("https://sag.example.dk/CaseService"),
      FieldSpec::String("action")
          .Default("\"\"")
          .Describe(
              "The operation's SOAP action URI: the SOAPAction header (SOAP 1.1) or the action "
              "parameter of the Content-Type (SOAP 1.2), as the WSDL's soapAction says.")
          .Example("urn:example:case:1/CreateCase"),
      FieldSpec::Enum("version", {"1.1", "1.2"})
          .Default("\"1.1\"")
          .Describe("SOAP version: 1.1 sends text/xml with a SOAPAction header, 1.2 sends "
                    "application/soap+xml with the action in the content type.")
          .Example("\"1.1\""),
      FieldSpec::Tmpl("body", TemplateContext::kXml)
          .Roots(roots)
          .Required()
          .Describe("The content of the SOAP Body, as XML; every {{ }} value is XML-escaped, so " +
                    in +
                    " can never change the message's structure. The envelope is added by keyonce.")
          .Example(target ? "'<c:CreateCase xmlns:c=\"urn:example:case:1\"><c:Cpr>{{ record.cpr "
                            "}}</c:Cpr><c:Title>{{ record.title }}</c:Title></c:CreateCase>'"
                          : "'<p:GetPerson xmlns:p=\"urn:example:person:1\"><p:Cpr>{{ key "
                            "}}</p:Cpr></p:GetPerson>'"),
      FieldSpec::Tmpl("soap_header", TemplateContext::kXml)
          .Roots(roots)
          .Describe(
              "Extra SOAP Header entries, as XML (values XML-escaped); the WS-Security header "
              "is added after them.")
          .Example("'<h:Caller xmlns:h=\"urn:example:header\">keyonce</h:Caller>'"),
      FieldSpec::TmplMap("headers", TemplateContext::kText)
          .Roots(roots)
          .Describe("Extra HTTP headers, name -> template.")
          .Example("{X-Correlation-Id: \"{{ run.id }}\"}"),
      FieldSpec::Any("namespaces")
          .Describe(
              "Prefix -> namespace URI for the XPath expressions in select, found and exists: a "
              "prefixed name matches elements in that namespace whatever prefix the reply uses; "
              "names in other namespaces are written without prefix.")
          .Example("{c: \"urn:example:case:1\"}"),
      FieldSpec::Any("select")
          .Describe(
              "Name -> XPath 1.0 expression over the reply, with the Body element as the "
              "context node (so c:CreateCaseResponse/c:CaseId and //c:CaseId both work). An "
              "element gives its text (or an object), an attribute its value, several nodes a "
              "list, none null." +
              std::string(target ? " The values are the reply's select.NAME for capture "
                                   "templates: {{ reply.select.case_id }}."
                                 : " The selected values form the looked-up row; without "
                                   "select the row is the Body converted to an object."))
          .Example("{case_id: \"//c:CaseId\"}"),
      FieldSpec::StringList("not_found_faultcodes")
          .Describe(
              std::string("Fault codes that mean \"no such record\" (matched against the code, "
                          "the SOAP 1.2 subcode, their part after the prefix or after the last "
                          "dot: NotFound matches soap:Client.NotFound and cs:NotFound). ") +
              (target ? "Used by exists: such a fault means the record is absent."
                      : "Such a fault makes the lookup find nothing instead of failing."))
          .Example("[NotFound]"),
      FieldSpec::Object(
          "ws_security",
          {
              FieldSpec::Tmpl("username", TemplateContext::kText)
                  .Roots(kRootsStatic)
                  .Required()
                  .Describe("User name of the UsernameToken.")
                  .Example("keyonce"),
              FieldSpec::Tmpl("password", TemplateContext::kText)
                  .Roots(kRootsStatic)
                  .Required()
                  .Describe("Password; must come from secrets.")
                  .Example("\"{{ secrets.case_password }}\""),
              FieldSpec::Enum("password_type", {"text", "digest"})
                  .Default("text")
                  .Describe("text: PasswordText (use it over TLS only). digest: PasswordDigest, "
                            "Base64(SHA-1(nonce + created + password)).")
                  .Example("text"),
          })
          .Describe(
              "A WS-Security UsernameToken header (OASIS Username Token Profile) on every "
              "request, with a fresh random Nonce and the Created time; values may use params, "
              "secrets, run and state.")
          .Example("{username: keyonce, password: \"{{ secrets.case_password }}\"}"),
  };
  if (target) {
    f.push_back(
        FieldSpec::Object(
            "exists",
            {
                FieldSpec::String("action").Describe("SOAP action of the search operation."),
                FieldSpec::Tmpl("body", TemplateContext::kXml)
                    .Required()
                    .Describe("Body content of the search, a template over the record (values "
                              "XML-escaped).")
                    .Example("'<c:FindCaseByExternalId xmlns:c=\"urn:example:case:1\"><c:"
                             "ExternalId>{{ record.id }}</c:ExternalId></c:FindCaseByExternalId>'"),
                FieldSpec::Any("select").Describe(
                    "Name -> XPath over the search's reply, giving the same names as the "
                    "target's select (so captures work for a record found this way). Absent: "
                    "the target's select."),
                FieldSpec::String("found").Describe(
                    "XPath that selects something when the record exists. Absent: exists "
                    "when a select value is not null (or, without select, when the reply is "
                    "not a fault)."),
            })
            .Describe(
                "A second operation that asks the service whether a record was already written "
                "(for records in doubt after a crash, with in_doubt: check): a fault named in "
                "not_found_faultcodes or an empty selection means absent; otherwise the record "
                "exists and its reply gives the captures.")
            .Example(
                "{action: \"urn:example:case:1/FindCaseByExternalId\", body: '<c:"
                "FindCaseByExternalId xmlns:c=\"urn:example:case:1\"><c:ExternalId>{{ record.id "
                "}}</c:ExternalId></c:FindCaseByExternalId>'}"));
    f.push_back(FieldSpec::Int("max_in_flight")
                    .Default("4")
                    .Describe("Requests kept in flight at once within a batch (1-64).")
                    .Example("4"));
  } else {
    f.push_back(
        FieldSpec::String("found")
            .Describe("XPath that selects something when the key was found. Absent: found "
                      "when a select value is not null (or, without select, when the reply is "
                      "not a fault).")
            .Example("//p:Person"));
  }
  return f;
}

ComponentSpec WithNetSettings(ComponentSpec spec) {
  net::AddAuthSettings(spec);
  net::AddTlsSettings(spec);
  net::AddTimeoutSettings(spec);
  return spec;
}

ConnectorDef SoapConnector() {
  ConnectorDef def;
  def.name = "soap";
  def.summary = "SOAP 1.1/1.2 web services: an operation per record, or a lookup by key.";

  ComponentSpec target;
  target.summary =
      "Calls one SOAP operation per record (e.g. CreateCase) with the body template inside a "
      "SOAP envelope, over HTTP(S) with mutual TLS, HTTP auth and WS-Security as configured. A "
      "SOAP Fault is permanent (the record is quarantined with \"SOAP Fault code: reason\"); "
      "HTTP 500 without a fault, 503, 408, 429 and timeouts are transient; a malformed, "
      "truncated, oversized or non-XML reply is permanent. The reply is {{ reply.status }}, "
      "{{ reply.body }} (the Body converted like the xml source converts records) and "
      "{{ reply.select.NAME }}. The service is not idempotent: after a crash, writes in doubt "
      "are checked with `exists` when configured.";
  target.fields = RequestFields(true);
  target.example_yaml =
      "- name: case_system\n"
      "  type: soap\n"
      "  url: https://sag.example.dk/CaseService\n"
      "  action: urn:example:case:1/CreateCase\n"
      "  body: >-\n"
      "    <c:CreateCase xmlns:c=\"urn:example:case:1\">\n"
      "    <c:ExternalId>{{ record.id }}</c:ExternalId><c:Cpr>{{ record.cpr }}</c:Cpr>\n"
      "    <c:Title>{{ record.title }}</c:Title></c:CreateCase>\n"
      "  namespaces: {c: \"urn:example:case:1\"}\n"
      "  select: {case_id: \"//c:CaseId\"}\n"
      "  ws_security: {username: keyonce, password: \"{{ secrets.case_password }}\"}\n"
      "  client_cert: certs/keyonce.pem\n"
      "  capture: {case_id: \"{{ reply.select.case_id }}\"}\n"
      "  in_doubt: check\n"
      "  not_found_faultcodes: [NotFound]\n"
      "  exists:\n"
      "    action: urn:example:case:1/FindCaseByExternalId\n"
      "    body: '<c:FindCaseByExternalId xmlns:c=\"urn:example:case:1\"><c:ExternalId>{{ "
      "record.id }}</c:ExternalId></c:FindCaseByExternalId>'\n";
  def.target = WithNetSettings(std::move(target));

  ComponentSpec lookup;
  lookup.summary =
      "Looks a key up with one SOAP operation per key (answers are cached per run). The row is "
      "the select values (or the Body converted to an object); a fault named in "
      "not_found_faultcodes, or a reply where nothing is found, means no row; other faults "
      "quarantine the record, transient failures are retried.";
  lookup.fields = RequestFields(false);
  lookup.example_yaml =
      "tables:\n"
      "  residents:\n"
      "    type: soap\n"
      "    url: https://cpr.example.dk/PersonService\n"
      "    action: urn:example:person:1/GetPerson\n"
      "    body: '<p:GetPerson xmlns:p=\"urn:example:person:1\"><p:Cpr>{{ key }}</p:Cpr></p:"
      "GetPerson>'\n"
      "    namespaces: {p: \"urn:example:person:1\"}\n"
      "    select: {municipality: \"//p:MunicipalityCode\", name: \"//p:Name\"}\n"
      "    not_found_faultcodes: [NotFound]\n";
  def.lookup = WithNetSettings(std::move(lookup));

  def.make_target = [](const Settings& s) -> Result<std::unique_ptr<Target>> {
    auto c = ReadConfig(s, true);
    if (!c.ok()) return c.status().Wrap(s.where);
    return std::unique_ptr<Target>(new SoapTarget(s, std::move(c).value()));
  };
  def.make_lookup = [](const Settings& s) -> Result<std::unique_ptr<Lookup>> {
    auto c = ReadConfig(s, false);
    if (!c.ok()) return c.status().Wrap(s.where);
    return std::unique_ptr<Lookup>(new SoapLookup(s, std::move(c).value()));
  };
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::soap

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::soap::SoapConnector());
