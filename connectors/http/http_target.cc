// The http target: one request per record, several in flight.
//
// Nothing twice: a request that failed after it was sent (a timeout, a
// reset connection, a 500/502/504) may have been carried out. Such a write
// is resent only when that is safe: the method is idempotent (PUT, DELETE,
// or `idempotent: true`), or the `exists` GET says the record is not there
// yet. Without `exists` a non-idempotent write with an ambiguous outcome is
// quarantined for a person instead of being resent.

#include <boost/json/parse.hpp>
#include <unordered_set>

#include "connectors/http/http_internal.h"

namespace keyonce::connectors::http {
namespace {

enum class ReplyFormat { kAuto, kJson, kText };

struct Config {
  std::string method = "POST";
  std::string update_method = "PUT";
  bool declared_idempotent = false;
  UrlTemplate url;
  std::optional<UrlTemplate> update_url;
  std::optional<UrlTemplate> exists;
  const StructureTemplate* body = nullptr;
  const Template* body_json = nullptr;
  std::string content_type = "application/json";
  ReplyFormat reply_format = ReplyFormat::kAuto;
  int in_flight = 4;
  double rate_limit = 0;
};

bool IdempotentMethod(const std::string& m) { return m == "PUT" || m == "DELETE"; }

// 503 says the server did not take the request on; 408 and 429 likewise.
// Any other 5xx may come after the work was done.
bool AmbiguousStatus(long status) { return status >= 500 && status != 503; }

class HttpTarget : public Target {
 public:
  explicit HttpTarget(Settings settings) : settings_(std::move(settings)) {}

  Status Configure() {
    auto url = ReadUrl(settings_, "url");
    if (!url.ok()) return url.status();
    c_.url = std::move(url).value();
    c_.method = settings_.String("method").value_or("POST");
    if (settings_.Tmpl("update_url")) {
      auto u = ReadUrl(settings_, "update_url");
      if (!u.ok()) return u.status();
      c_.update_url = std::move(u).value();
    }
    c_.update_method = settings_.String("update_method").value_or("PUT");
    if (settings_.Tmpl("exists")) {
      auto u = ReadUrl(settings_, "exists");
      if (!u.ok()) return u.status();
      c_.exists = std::move(u).value();
    }
    c_.declared_idempotent = settings_.Bool("idempotent").value_or(false);
    c_.body = settings_.Structure("body");
    c_.body_json = settings_.Tmpl("body_json");
    if (c_.body && c_.body_json) return Status::Invalid("set either body or body_json, not both");
    c_.content_type = settings_.String("content_type").value_or("application/json");
    std::string rf = settings_.String("reply_format").value_or("auto");
    c_.reply_format = rf == "json"   ? ReplyFormat::kJson
                      : rf == "text" ? ReplyFormat::kText
                                     : ReplyFormat::kAuto;
    c_.in_flight = static_cast<int>(settings_.Int("in_flight").value_or(4));
    if (c_.in_flight < 1 || c_.in_flight > 256) {
      return Status::Invalid("in_flight must be between 1 and 256");
    }
    c_.rate_limit = settings_.Number("rate_limit").value_or(0);
    if (c_.rate_limit < 0) return Status::Invalid("rate_limit must not be negative");
    return conn_.Configure(settings_);
  }

  TargetTraits Traits() const override {
    TargetTraits t;
    t.supports_update = c_.update_url.has_value();
    t.idempotent = c_.declared_idempotent || IdempotentMethod(c_.method);
    t.concurrent = c_.in_flight > 1;
    return t;
  }

  Status Open(const RunContext& ctx) override {
    return conn_.Open(settings_, ctx, c_.in_flight, c_.rate_limit);
  }

  Result<Value> Render(const WriteOp& op) override {
    net::HttpRequest req;
    Value body;
    KEYONCE_RETURN_IF_ERROR(Build(op, &req, &body));
    auto headers = conn_.RenderHeaders(*op.scope);
    if (!headers.ok()) return headers.status();
    boost::json::object o;
    o.emplace("method", req.method);
    o.emplace("url", req.url);
    o.emplace("headers", std::move(headers).value());
    o.emplace("body", std::move(body));
    return Value(std::move(o));
  }

  WriteResult Write(const WriteOp& op) override { return std::move(WriteMany({op})[0]); }

  std::vector<WriteResult> WriteMany(const std::vector<WriteOp>& ops) override {
    const size_t n = ops.size();
    std::vector<WriteResult> out(n);
    if (!conn_.opened()) {
      for (auto& r : out) r.status = Status::Internal("http target written before Open");
      return out;
    }
    std::vector<net::HttpRequest> reqs(n);
    std::vector<bool> send(n, false);
    for (size_t i = 0; i < n; ++i) {
      Value unused;
      out[i].status = Build(ops[i], &reqs[i], &unused);
      send[i] = out[i].status.ok();
    }

    // Writes whose previous attempt may have arrived: ask first.
    std::vector<size_t> checks;
    for (size_t i = 0; i < n; ++i) {
      if (send[i] && ambiguous_.count(ops[i].key) && !Idempotent(ops[i])) checks.push_back(i);
    }
    if (!checks.empty()) {
      std::vector<WriteOp> check_ops;
      for (size_t i : checks) check_ops.push_back(ops[i]);
      auto found = CheckMany(check_ops);
      for (size_t j = 0; j < checks.size(); ++j) {
        size_t i = checks[j];
        if (!found[j].ok()) {
          out[i].status = found[j].status().Wrap(
              "checking whether an earlier attempt arrived (it is not resent until that is known)");
          send[i] = false;
        } else if (found[j]->outcome == CheckResult::Outcome::kExists) {
          out[i].reply = std::move(found[j]->reply);
          ambiguous_.erase(ops[i].key);
          send[i] = false;
        }
      }
    }

    std::vector<net::HttpRequest> batch;
    std::vector<size_t> where;
    for (size_t i = 0; i < n; ++i) {
      if (!send[i]) continue;
      batch.push_back(std::move(reqs[i]));
      where.push_back(i);
    }
    std::vector<net::TransferInfo> infos;
    auto got = conn_.PerformMany(&batch, &infos);
    for (size_t j = 0; j < got.size(); ++j) {
      size_t i = where[j];
      const std::string& url = batch[j].shown_url();
      if (!got[j].ok()) {
        out[i].status = Ambiguity(ops[i], got[j].status(), infos[j].request_sent, &out[i]);
        continue;
      }
      const net::HttpReply& reply = *got[j];
      if (reply.status >= 200 && reply.status < 300) {
        ambiguous_.erase(ops[i].key);
        auto body = ReplyBody(reply, url);  // checked even when not wanted
        if (!body.ok()) {
          out[i].status = body.status();
          continue;
        }
        if (ops[i].wants_reply) out[i].reply = ReplyValue(reply, std::move(body).value());
        continue;
      }
      if (reply.status < 400) {
        out[i].status =
            Status::Permanent("unexpected HTTP " + std::to_string(reply.status) + " from " +
                              net::SafeUrl(url) + " (redirects are not followed)");
        continue;
      }
      Status st = conn_.ReplyStatus(reply, url);
      if (st.IsTransient()) {
        if (auto ra = net::RetryAfterSeconds(reply)) out[i].retry_after_seconds = *ra;
        if (AmbiguousStatus(reply.status)) st = Ambiguity(ops[i], st, true, &out[i]);
      }
      out[i].status = st;
    }
    // A record whose earlier attempt may have arrived stays in doubt if this
    // is the engine's last try (it then asks `exists` at the next run).
    for (size_t i = 0; i < n; ++i) {
      if (!out[i].status.ok() && ambiguous_.count(ops[i].key)) out[i].in_doubt = true;
    }
    return out;
  }

  Result<CommitResult> Commit(uint64_t /*batch*/, bool /*final*/) override {
    CommitResult c;
    c.durable = true;  // each request is its own commit
    return c;
  }

  Result<RecoverResult> Recover(const RunContext& /*ctx*/, uint64_t /*first_pending*/,
                                const std::string& /*token*/) override {
    return RecoverResult{};  // an HTTP API cannot tell; Check (exists) decides per record
  }

  Result<CheckResult> Check(const WriteOp& op) override {
    if (!c_.exists) return CheckResult{};
    if (!conn_.opened()) return Status::Internal("http target checked before Open");
    auto r = CheckMany({op});
    return std::move(r[0]);
  }

 private:
  bool Idempotent(const WriteOp& op) const {
    if (c_.declared_idempotent) return true;
    bool update = op.kind == WriteOp::Kind::kUpdate && c_.update_url;
    return IdempotentMethod(update ? c_.update_method : c_.method);
  }

  // A failure after the request may have been carried out: transient when
  // resending is safe (idempotent, or `exists` will be asked first),
  // otherwise in doubt (result->in_doubt) so that no run resends it before
  // a person decides.
  Status Ambiguity(const WriteOp& op, const Status& st, bool request_sent, WriteResult* result) {
    if (!st.IsTransient() || !request_sent || Idempotent(op)) return st;
    if (c_.exists) {
      ambiguous_.insert(op.key);
      return Status::Transient(st.message() +
                               " (the request may have arrived; keyonce asks `exists` before "
                               "sending it again)");
    }
    result->in_doubt = true;
    return Status::Permanent(st.message() +
                             "; the request may have arrived, so it is not sent again (set "
                             "`exists` to let keyonce check, or `idempotent: true`)");
  }

  Status Build(const WriteOp& op, net::HttpRequest* req, Value* shown_body) const {
    if (!op.scope) return Status::Internal("write without a scope");
    const Scope& scope = *op.scope;
    bool update = op.kind == WriteOp::Kind::kUpdate && c_.update_url;
    req->method = update ? c_.update_method : c_.method;
    auto url = (update ? *c_.update_url : c_.url).Render(scope, &req->display_url);
    if (!url.ok()) return url.status().Wrap(update ? "update_url" : "url");
    req->url = std::move(url).value();
    KEYONCE_RETURN_IF_ERROR(conn_.AddHeaders(scope, req));
    if (c_.body) {
      auto v = c_.body->Evaluate(scope);
      if (!v.ok()) return v.status().Wrap("body");
      req->body = ToJson(*v);
      *shown_body = std::move(v).value();
    } else if (c_.body_json) {
      auto text = c_.body_json->Render(scope);
      if (!text.ok()) return text.status().Wrap("body_json");
      boost::system::error_code ec;
      Value parsed = boost::json::parse(*text, ec);
      if (ec) return Status::Invalid("body_json does not render valid JSON: " + ec.message());
      req->body = std::move(text).value();
      *shown_body = std::move(parsed);
    } else if (req->method != "DELETE" && op.record) {
      req->body = ToJson(Value(*op.record));
      *shown_body = Value(*op.record);
    } else {
      *shown_body = nullptr;
    }
    if (!req->body.empty()) {
      bool has_ct = false;
      for (const auto& [k, v] : req->headers) {
        std::string lk = k;
        for (char& ch : lk) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (lk == "content-type") has_ct = true;
      }
      if (!has_ct) req->headers.push_back({"Content-Type", c_.content_type});
    }
    if (c_.reply_format != ReplyFormat::kText)
      req->headers.push_back({"Accept", "application/json"});
    return Status::OK();
  }

  Result<Value> ReplyBody(const net::HttpReply& reply, const std::string& url) const {
    const std::string accepted =
        " (HTTP " + std::to_string(reply.status) + ": the write was accepted)";
    switch (c_.reply_format) {
      case ReplyFormat::kText:
        return Value(reply.body);
      case ReplyFormat::kJson: {
        if (reply.status == 204 || reply.body.empty()) return Value();
        auto v = ParseJsonBody(reply, url, true);
        if (!v.ok()) return Status::Permanent(v.status().message() + accepted);
        return v;
      }
      case ReplyFormat::kAuto:
        if (!reply.IsJson()) return Value(reply.body);
        auto v = ParseJsonBody(reply, url, false);
        if (!v.ok()) return Status::Permanent(v.status().message() + accepted);
        return v;
    }
    return Value();
  }

  // GET `exists` for each op: 2xx exists, 404/410 absent, else an error.
  std::vector<Result<CheckResult>> CheckMany(const std::vector<WriteOp>& ops) {
    std::vector<Result<CheckResult>> out(ops.size(), Result<CheckResult>(CheckResult{}));
    std::vector<net::HttpRequest> reqs;
    std::vector<size_t> where;
    for (size_t i = 0; i < ops.size(); ++i) {
      net::HttpRequest req;
      req.method = "GET";
      auto url = c_.exists->Render(*ops[i].scope, &req.display_url);
      if (!url.ok()) {
        out[i] = url.status().Wrap("exists");
        continue;
      }
      req.url = std::move(url).value();
      Status st = conn_.AddHeaders(*ops[i].scope, &req);
      if (!st.ok()) {
        out[i] = st;
        continue;
      }
      req.headers.push_back({"Accept", "application/json"});
      reqs.push_back(std::move(req));
      where.push_back(i);
    }
    auto got = conn_.PerformMany(&reqs);
    for (size_t j = 0; j < got.size(); ++j) {
      size_t i = where[j];
      const std::string& url = reqs[j].shown_url();
      if (!got[j].ok()) {
        out[i] = got[j].status();
        continue;
      }
      const net::HttpReply& reply = *got[j];
      CheckResult cr;
      if (reply.status == 404 || reply.status == 410) {
        cr.outcome = CheckResult::Outcome::kAbsent;
        out[i] = cr;
        continue;
      }
      if (reply.status < 200 || reply.status >= 300) {
        Status st = conn_.ReplyStatus(reply, url);
        out[i] = st.ok() ? Status::Permanent("unexpected HTTP " + std::to_string(reply.status) +
                                             " from " + net::SafeUrl(url))
                         : st;
        continue;
      }
      Value body;
      if (reply.IsJson()) {
        auto v = ParseJsonBody(reply, url, false);
        if (!v.ok()) {
          out[i] = v.status();
          continue;
        }
        body = std::move(v).value();
      } else {
        body = Value(reply.body);
      }
      // A search URL answering 200 with an empty list means absent.
      if ((body.is_array() && body.get_array().empty())) {
        cr.outcome = CheckResult::Outcome::kAbsent;
      } else {
        cr.outcome = CheckResult::Outcome::kExists;
        if (body.is_array()) body = Value(body.get_array()[0]);
        cr.reply = ReplyValue(reply, std::move(body));
      }
      out[i] = cr;
    }
    return out;
  }

  Settings settings_;
  Config c_;
  Connection conn_;
  std::unordered_set<std::string>
      ambiguous_;  // keys (never logged) whose last attempt may have arrived
};

}  // namespace

Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings) {
  auto t = std::make_unique<HttpTarget>(settings);
  KEYONCE_RETURN_IF_ERROR(t->Configure());
  return std::unique_ptr<Target>(std::move(t));
}

}  // namespace keyonce::connectors::http
