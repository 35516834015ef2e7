// The http source (paged GET, streamed page by page) and lookup (GET by key).

#include <cmath>
#include <thread>

#include "connectors/http/http_internal.h"

namespace keyonce::connectors::http {
namespace {

struct Paging {
  enum class Type { kNone, kNextLink, kPage, kOffset, kCursor } type = Type::kNone;
  std::optional<net::JsonPath> next;    // next_link: where the next URL is (else Link header)
  std::string param;                    // page / offset / cursor query parameter
  int64_t start = 1;                    // page: first page number
  std::string size_param;               // page / offset: page size parameter
  int64_t size = 0;                     // page / offset: page size (0 = not sent)
  std::optional<net::JsonPath> cursor;  // cursor: where the next cursor is
  int64_t max_pages = 1000;
};

Result<net::JsonPath> PathSetting(const Value& v, const std::string& name) {
  if (!v.is_string()) return Status::Invalid(name + " must be a string (a JSON path)");
  auto p = net::JsonPath::Parse(v.get_string());
  if (!p.ok()) return p.status().Wrap(name);
  return p;
}

Result<Paging> ReadPaging(const Settings& s) {
  Paging p;
  const Value* raw = s.Raw("paging");
  if (!raw || raw->is_null()) return p;
  if (!raw->is_object()) return Status::Invalid("paging must be a mapping");
  const auto& o = raw->get_object();
  static const char* kKeys[] = {"type",       "next", "param",  "start",
                                "size_param", "size", "cursor", "max_pages"};
  for (const auto& kv : o) {
    bool known = false;
    for (const char* k : kKeys) known = known || kv.key() == k;
    if (!known) {
      return Status::Invalid("paging: unknown key '" + std::string(kv.key()) +
                             "' (known: type, next, param, start, size_param, size, cursor, "
                             "max_pages)");
    }
  }
  const Value* type = o.if_contains("type");
  std::string t = type && type->is_string() ? std::string(type->get_string()) : "";
  auto str = [&](const char* key, std::string def) -> Result<std::string> {
    const Value* v = o.if_contains(key);
    if (!v) return def;
    if (!v->is_string() || v->get_string().empty()) {
      return Status::Invalid(std::string("paging.") + key + " must be a non-empty string");
    }
    return std::string(v->get_string());
  };
  auto num = [&](const char* key, int64_t def, int64_t min) -> Result<int64_t> {
    const Value* v = o.if_contains(key);
    if (!v) return def;
    if (!v->is_int64() || v->get_int64() < min) {
      return Status::Invalid(std::string("paging.") + key +
                             " must be an integer >= " + std::to_string(min));
    }
    return v->get_int64();
  };
  std::string default_param;
  if (t == "none") {
    p.type = Paging::Type::kNone;
  } else if (t == "next_link") {
    p.type = Paging::Type::kNextLink;
  } else if (t == "page") {
    p.type = Paging::Type::kPage;
    default_param = "page";
  } else if (t == "offset") {
    p.type = Paging::Type::kOffset;
    default_param = "offset";
  } else if (t == "cursor") {
    p.type = Paging::Type::kCursor;
    default_param = "cursor";
  } else {
    return Status::Invalid("paging.type must be one of: none, next_link, page, offset, cursor");
  }
  auto param = str("param", default_param);
  if (!param.ok()) return param.status();
  p.param = *param;
  auto size_param = str("size_param", "");
  if (!size_param.ok()) return size_param.status();
  p.size_param = *size_param;
  auto start = num("start", p.type == Paging::Type::kOffset ? 0 : 1, 0);
  if (!start.ok()) return start.status();
  p.start = *start;
  auto size = num("size", 0, 1);
  if (!size.ok()) return size.status();
  p.size = *size;
  if (!p.size_param.empty() && p.size == 0) {
    return Status::Invalid("paging.size is required when paging.size_param is set");
  }
  auto max_pages = num("max_pages", 1000, 1);
  if (!max_pages.ok()) return max_pages.status();
  p.max_pages = *max_pages;
  if (const Value* v = o.if_contains("next")) {
    if (p.type != Paging::Type::kNextLink)
      return Status::Invalid("paging.next is for type next_link");
    auto jp = PathSetting(*v, "paging.next");
    if (!jp.ok()) return jp.status();
    p.next = std::move(jp).value();
  }
  if (const Value* v = o.if_contains("cursor")) {
    if (p.type != Paging::Type::kCursor) return Status::Invalid("paging.cursor is for type cursor");
    auto jp = PathSetting(*v, "paging.cursor");
    if (!jp.ok()) return jp.status();
    p.cursor = std::move(jp).value();
  }
  if (p.type == Paging::Type::kCursor && !p.cursor) {
    return Status::Invalid(
        "paging.cursor (the JSON path of the next cursor) is required for type "
        "cursor");
  }
  return p;
}

Result<net::JsonPath> ReadJsonPath(const Settings& s, const std::string& name) {
  auto text = s.String(name);
  if (!text) return net::JsonPath();
  auto p = net::JsonPath::Parse(*text);
  if (!p.ok()) return p.status().Wrap(name);
  return p;
}

const char* KindName(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "a number";
    case boost::json::kind::string:
      return "a string";
    case boost::json::kind::array:
      return "a list";
    case boost::json::kind::object:
      return "an object";
  }
  return "?";
}

// ------------------------------------------------------------ source

class HttpSource : public Source {
 public:
  explicit HttpSource(Settings settings) : settings_(std::move(settings)) {}

  Status Configure() {
    auto url = ReadUrl(settings_, "url");
    if (!url.ok()) return url.status();
    url_ = std::move(url).value();
    method_ = settings_.String("method").value_or("GET");
    auto records = ReadJsonPath(settings_, "records");
    if (!records.ok()) return records.status();
    records_ = std::move(records).value();
    auto paging = ReadPaging(settings_);
    if (!paging.ok()) return paging.status();
    paging_ = std::move(paging).value();
    retry_attempts_ = static_cast<int>(settings_.Int("retry_attempts").value_or(3));
    if (retry_attempts_ < 1) return Status::Invalid("retry_attempts must be at least 1");
    if (settings_.Structure("body") && method_ == "GET") {
      return Status::Invalid("body needs method: POST");
    }
    return conn_.Configure(settings_);
  }

  Status Open(const RunContext& ctx) override {
    KEYONCE_RETURN_IF_ERROR(conn_.Open(settings_, ctx, 1, 0));
    const Scope& scope = ctx.scope;
    auto url = url_.Render(scope);
    if (!url.ok()) return url.status().Wrap("url");
    base_url_ = std::move(url).value();
    base_request_.method = method_;
    KEYONCE_RETURN_IF_ERROR(conn_.AddHeaders(scope, &base_request_));
    base_request_.headers.push_back({"Accept", "application/json"});
    if (const StructureTemplate* body = settings_.Structure("body")) {
      auto v = body->Evaluate(scope);
      if (!v.ok()) return v.status().Wrap("body");
      base_request_.body = ToJson(*v);
      base_request_.headers.push_back({"Content-Type", "application/json"});
    }
    page_no_ = paging_.start;
    offset_ = paging_.start;
    next_url_ = FirstUrl();
    return Status::OK();
  }

  Result<bool> Next(SourceItem* item) override {
    while (index_ >= items_.size()) {
      if (next_url_.empty()) return false;
      KEYONCE_RETURN_IF_ERROR(FetchPage());
    }
    const Value* v = items_[index_++];
    item->position = "page " + std::to_string(pages_) + ", record " + std::to_string(index_);
    if (v->is_object()) {
      item->record = v->get_object();
      item->rejected = false;
      item->reason.clear();
      item->raw.clear();
    } else {
      item->record = Record();
      item->rejected = true;
      item->reason = std::string("the record is ") + KindName(*v) + ", not a JSON object";
      item->raw = ToJson(*v);
    }
    return true;
  }

 private:
  std::string FirstUrl() const {
    std::string u = base_url_;
    switch (paging_.type) {
      case Paging::Type::kPage:
        u = net::SetQueryParam(u, paging_.param, std::to_string(page_no_));
        break;
      case Paging::Type::kOffset:
        u = net::SetQueryParam(u, paging_.param, std::to_string(offset_));
        break;
      default:
        break;
    }
    if (!paging_.size_param.empty()) {
      u = net::SetQueryParam(u, paging_.size_param, std::to_string(paging_.size));
    }
    return u;
  }

  // GETs next_url_ (retrying transient failures), selects its records and
  // works out the next page's URL.
  Status FetchPage() {
    if (pages_ >= paging_.max_pages) {
      return Status::Permanent("reading " + net::SafeUrl(base_url_) + ": stopped after " +
                               std::to_string(paging_.max_pages) +
                               " pages (paging.max_pages) while the API still offers a next "
                               "page");
    }
    const std::string url = next_url_;
    net::HttpRequest req = base_request_;
    req.url = url;
    Result<net::HttpReply> got = Status::Internal("not fetched");
    for (int attempt = 1;; ++attempt) {
      got = conn_.Perform(req);
      Status st = got.ok() ? conn_.ReplyStatus(*got, url) : got.status();
      if (st.ok()) break;
      if (!st.IsTransient() || attempt >= retry_attempts_) {
        return st.Wrap("reading page " + std::to_string(pages_ + 1));
      }
      double wait = std::min(30.0, std::pow(2.0, attempt - 1));
      if (got.ok()) {
        if (auto ra = net::RetryAfterSeconds(*got)) wait = std::min(*ra, 60.0);
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    ++pages_;
    const net::HttpReply& reply = *got;
    if (reply.status < 200 || reply.status >= 300) {
      return Status::Permanent("unexpected HTTP " + std::to_string(reply.status) + " from " +
                               net::SafeUrl(url) + " (redirects are not followed)");
    }
    auto doc = ParseJsonBody(reply, url, true);
    if (!doc.ok()) return doc.status().Wrap("reading page " + std::to_string(pages_));
    page_ = std::move(doc).value();
    items_.clear();
    index_ = 0;
    auto selected = records_.Select(page_);
    if (selected.size() == 1 && selected[0]->is_array()) {
      for (const auto& e : selected[0]->get_array()) items_.push_back(&e);
    } else if (!(selected.size() == 1 && selected[0]->is_null())) {
      items_ = std::move(selected);
    }
    // The next page.
    std::string next;
    if (!items_.empty()) {
      switch (paging_.type) {
        case Paging::Type::kNone:
          break;
        case Paging::Type::kNextLink: {
          std::string ref;
          if (paging_.next) {
            const Value* v = paging_.next->SelectOne(page_);
            if (v && v->is_string()) ref = std::string(v->get_string());
          } else if (const std::string* link = reply.Header("link")) {
            ref = net::NextLink(*link);
          }
          if (!ref.empty()) {
            auto resolved = net::ResolveUrl(url, ref);
            if (!resolved) {
              return Status::Permanent("reading " + net::SafeUrl(url) +
                                       ": the next page link is not a URL");
            }
            next = *resolved;
          }
          break;
        }
        case Paging::Type::kPage:
          if (paging_.size == 0 || static_cast<int64_t>(items_.size()) >= paging_.size) {
            ++page_no_;
            next = FirstUrl();
          }
          break;
        case Paging::Type::kOffset:
          if (paging_.size == 0 || static_cast<int64_t>(items_.size()) >= paging_.size) {
            offset_ += static_cast<int64_t>(items_.size());
            next = FirstUrl();
          }
          break;
        case Paging::Type::kCursor: {
          const Value* v = paging_.cursor->SelectOne(page_);
          if (v && !v->is_null() && !(v->is_string() && v->get_string().empty()) &&
              !(v->is_bool() && !v->get_bool())) {
            next = net::SetQueryParam(FirstUrl(), paging_.param, ToText(*v));
          }
          break;
        }
      }
    }
    if (!next.empty() && next == url) {
      return Status::Permanent("reading " + net::SafeUrl(url) +
                               ": the next page is the same page again");
    }
    next_url_ = std::move(next);
    return Status::OK();
  }

  Settings settings_;
  Connection conn_;
  UrlTemplate url_;
  std::string method_;
  net::JsonPath records_;
  Paging paging_;
  int retry_attempts_ = 3;

  std::string base_url_;
  net::HttpRequest base_request_;
  std::string next_url_;  // "" = no more pages
  int64_t page_no_ = 1;
  int64_t offset_ = 0;
  int64_t pages_ = 0;
  Value page_;                       // the current page (only one is held)
  std::vector<const Value*> items_;  // its records, pointing into page_
  size_t index_ = 0;
};

// ------------------------------------------------------------ lookup

class HttpLookup : public Lookup {
 public:
  explicit HttpLookup(Settings settings) : settings_(std::move(settings)) {}

  Status Configure() {
    auto url = ReadUrl(settings_, "url");
    if (!url.ok()) return url.status();
    url_ = std::move(url).value();
    auto record = ReadJsonPath(settings_, "record");
    if (!record.ok()) return record.status();
    record_ = std::move(record).value();
    return conn_.Configure(settings_);
  }

  Status Open(const RunContext& ctx) override {
    scope_ = ctx.scope;
    return conn_.Open(settings_, ctx, 1, 0);
  }

  Result<std::optional<Record>> Find(const Value& key) override {
    if (!conn_.opened()) return Status::Internal("http lookup used before Open");
    Scope scope = scope_;
    scope.key = &key;
    net::HttpRequest req;
    auto url = url_.Render(scope, &req.display_url);
    if (!url.ok()) return url.status().Wrap("url");
    req.url = std::move(url).value();
    KEYONCE_RETURN_IF_ERROR(conn_.AddHeaders(scope, &req));
    req.headers.push_back({"Accept", "application/json"});
    auto got = conn_.Perform(req);
    if (!got.ok()) return got.status();
    const net::HttpReply& reply = *got;
    if (reply.status == 404 || reply.status == 410) return std::optional<Record>();
    Status st = conn_.ReplyStatus(reply, req.shown_url());
    if (!st.ok()) return st;
    if (reply.status < 200 || reply.status >= 300) {
      return Status::Permanent("unexpected HTTP " + std::to_string(reply.status) + " from " +
                               net::SafeUrl(req.shown_url()));
    }
    auto doc = ParseJsonBody(reply, req.shown_url(), true);
    if (!doc.ok()) return doc.status();
    const Value* v = record_.SelectOne(*doc);
    if (v && v->is_array()) v = v->get_array().empty() ? nullptr : &v->get_array()[0];
    if (!v || v->is_null()) return std::optional<Record>();
    if (!v->is_object()) {
      return Status::Permanent("the reply from " + net::SafeUrl(req.shown_url()) + " holds " +
                               KindName(*v) + " where `record` should select a JSON object");
    }
    return std::optional<Record>(v->get_object());
  }

 private:
  Settings settings_;
  Connection conn_;
  UrlTemplate url_;
  net::JsonPath record_;
  Scope scope_;
};

}  // namespace

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  auto s = std::make_unique<HttpSource>(settings);
  KEYONCE_RETURN_IF_ERROR(s->Configure());
  return std::unique_ptr<Source>(std::move(s));
}

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  auto l = std::make_unique<HttpLookup>(settings);
  KEYONCE_RETURN_IF_ERROR(l->Configure());
  return std::unique_ptr<Lookup>(std::move(l));
}

}  // namespace keyonce::connectors::http
