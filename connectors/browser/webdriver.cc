// WebDriver: the W3C WebDriver protocol over connectors/common/net's HttpClient.

#include "connectors/browser/webdriver.h"

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "connectors/common/net/transfer.h"

namespace keyonce::connectors::browser {
namespace json = boost::json;

namespace {

constexpr const char* kElementKey = "element-6066-11e4-a52e-4f735466cecf";

struct ErrorInfo {
  WebDriverError error;
  const char* code;
};

constexpr std::array<ErrorInfo, 31> kErrors = {{
    {WebDriverError::kNone, "none"},
    {WebDriverError::kElementClickIntercepted, "element click intercepted"},
    {WebDriverError::kElementNotInteractable, "element not interactable"},
    {WebDriverError::kInsecureCertificate, "insecure certificate"},
    {WebDriverError::kInvalidArgument, "invalid argument"},
    {WebDriverError::kInvalidCookieDomain, "invalid cookie domain"},
    {WebDriverError::kInvalidElementState, "invalid element state"},
    {WebDriverError::kInvalidSelector, "invalid selector"},
    {WebDriverError::kInvalidSessionId, "invalid session id"},
    {WebDriverError::kJavascriptError, "javascript error"},
    {WebDriverError::kMoveTargetOutOfBounds, "move target out of bounds"},
    {WebDriverError::kNoSuchAlert, "no such alert"},
    {WebDriverError::kNoSuchCookie, "no such cookie"},
    {WebDriverError::kNoSuchElement, "no such element"},
    {WebDriverError::kNoSuchFrame, "no such frame"},
    {WebDriverError::kNoSuchWindow, "no such window"},
    {WebDriverError::kNoSuchShadowRoot, "no such shadow root"},
    {WebDriverError::kScriptTimeout, "script timeout"},
    {WebDriverError::kSessionNotCreated, "session not created"},
    {WebDriverError::kStaleElementReference, "stale element reference"},
    {WebDriverError::kDetachedShadowRoot, "detached shadow root"},
    {WebDriverError::kTimeout, "timeout"},
    {WebDriverError::kUnableToSetCookie, "unable to set cookie"},
    {WebDriverError::kUnableToCaptureScreen, "unable to capture screen"},
    {WebDriverError::kUnexpectedAlertOpen, "unexpected alert open"},
    {WebDriverError::kUnknownCommand, "unknown command"},
    {WebDriverError::kUnknownError, "unknown error"},
    {WebDriverError::kUnknownMethod, "unknown method"},
    {WebDriverError::kUnsupportedOperation, "unsupported operation"},
    {WebDriverError::kCallTimedOut, "call timed out"},
    {WebDriverError::kConnectionLost, "connection lost"},
}};

// What of a driver's message may be shown: its first line, without the
// error code it repeats, cut before the first quote, brace or angle
// bracket (chromedriver quotes selectors, element HTML, alert texts and
// script values there), CPR numbers masked.
std::string SafeDetail(std::string_view message, std::string_view code) {
  std::string_view line = message.substr(0, message.find('\n'));
  if (line.starts_with(code)) {
    line.remove_prefix(code.size());
    while (!line.empty() && (line.front() == ':' || line.front() == ' ')) line.remove_prefix(1);
  }
  size_t cut = line.find_first_of("\"'{}<>`[");
  if (cut != std::string_view::npos) line = line.substr(0, cut);
  while (!line.empty() && (line.back() == ' ' || line.back() == ':' || line.back() == '(' ||
                           line.back() == ',' || line.back() == '=')) {
    line.remove_suffix(1);
  }
  return net::Excerpt(line, 200);
}

std::string Base64Decode(std::string_view in, bool* ok) {
  static const std::array<int8_t, 256> kTable = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(chars[i])] = static_cast<int8_t>(i);
    return t;
  }();
  std::string out;
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  *ok = true;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    int8_t v = kTable[static_cast<unsigned char>(c)];
    if (v < 0) {
      *ok = false;
      return {};
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// Splits UTF-8 text into code points (each one W3C key value).
std::vector<std::string> CodePoints(std::string_view text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 1;
    len = std::min(len, text.size() - i);
    out.emplace_back(text.substr(i, len));
    i += len;
  }
  return out;
}

json::object Using(const By& by) { return {{"using", by.strategy}, {"value", by.value}}; }

}  // namespace

const char* ErrorName(WebDriverError error) {
  if (error == WebDriverError::kBadReply) return "bad reply";
  for (const auto& e : kErrors) {
    if (e.error == error) return e.code;
  }
  return "unknown error";
}

WebDriverError ErrorFromCode(std::string_view code) {
  for (const auto& e : kErrors) {
    if (code == e.code) return e.error;
  }
  return WebDriverError::kUnknownError;
}

Status::Code StatusCodeOf(WebDriverError error) {
  using E = WebDriverError;
  switch (error) {
    case E::kNone:
      return Status::Code::kOk;
    case E::kCallTimedOut:
    case E::kConnectionLost:
    case E::kBadReply:
    case E::kInvalidSessionId:
    case E::kSessionNotCreated:
    case E::kUnknownError:
    case E::kTimeout:
    case E::kScriptTimeout:
    case E::kUnableToCaptureScreen:
      return Status::Code::kTransient;
    case E::kInvalidArgument:
    case E::kInvalidSelector:
    case E::kUnknownCommand:
    case E::kUnknownMethod:
    case E::kUnsupportedOperation:
      return Status::Code::kInvalid;
    default:
      return Status::Code::kPermanent;
  }
}

json::value ElementRef(const Element& element) { return json::object{{kElementKey, element.id}}; }

std::optional<Element> AsElement(const json::value& v) {
  const json::object* o = v.if_object();
  if (!o) return std::nullopt;
  auto it = o->find(kElementKey);
  if (it == o->end() || !it->value().is_string()) return std::nullopt;
  return Element{std::string(it->value().get_string())};
}

std::optional<std::string> keys::ByName(std::string_view name) {
  if (CodePoints(name).size() == 1) return std::string(name);
  std::string n;
  for (char c : name) {
    if (c != '_' && c != '-' && c != ' ') {
      n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  static const std::map<std::string, std::string_view> kNames = {
      {"enter", kEnter},
      {"return", kEnter},
      {"tab", kTab},
      {"escape", kEscape},
      {"esc", kEscape},
      {"space", kSpace},
      {"backspace", kBackspace},
      {"delete", kDelete},
      {"del", kDelete},
      {"home", kHome},
      {"end", kEnd},
      {"pageup", kPageUp},
      {"pagedown", kPageDown},
      {"arrowup", kArrowUp},
      {"up", kArrowUp},
      {"arrowdown", kArrowDown},
      {"down", kArrowDown},
      {"arrowleft", kArrowLeft},
      {"left", kArrowLeft},
      {"arrowright", kArrowRight},
      {"right", kArrowRight},
      {"shift", kShift},
      {"control", kControl},
      {"ctrl", kControl},
      {"alt", kAlt},
  };
  auto it = kNames.find(n);
  if (it != kNames.end()) return std::string(it->second);
  // F1..F12 are U+E031..U+E03C.
  if (n.size() >= 2 && n.size() <= 3 && n[0] == 'f' &&
      std::isdigit(static_cast<unsigned char>(n[1]))) {
    int k = std::stoi(n.substr(1));
    if (k >= 1 && k <= 12) {
      char32_t cp = 0xE030 + static_cast<char32_t>(k);
      std::string s;
      s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      return s;
    }
  }
  return std::nullopt;
}

// ------------------------------------------------------------ WebDriver

WebDriver::WebDriver(std::string driver_url, const SessionOptions& options)
    : driver_url_(std::move(driver_url)), options_(options), timeouts_(options.timeouts) {}

WebDriver::~WebDriver() { (void)DeleteSession(); }

net::HttpClient& WebDriver::Client(double timeout_seconds) {
  int64_t key = std::llround(timeout_seconds * 1000);
  auto& slot = clients_[key];
  if (!slot) {
    net::ClientOptions o;
    o.transfer.timeout_seconds = timeout_seconds;
    o.transfer.connect_timeout_seconds = std::min(5.0, timeout_seconds);
    // Whole-page screenshots and page sources of large pages, base64 in JSON.
    o.transfer.max_reply_bytes = 256u << 20;
    o.max_in_flight = 1;
    slot = std::make_unique<net::HttpClient>(o);
  }
  return *slot;
}

double WebDriver::LoadBound() const {
  return timeouts_.page_load_seconds + options_.command_timeout_seconds;
}

Result<json::value> WebDriver::Command(std::string_view method, const std::string& path,
                                       const json::value* body, std::string_view context,
                                       double timeout_seconds, bool absolute) {
  error_ = WebDriverError::kNone;
  if (!absolute && session_id_.empty()) {
    error_ = WebDriverError::kInvalidSessionId;
    return Status::Transient(std::string(context) + ": the WebDriver session is closed");
  }
  if (timeout_seconds <= 0) timeout_seconds = options_.command_timeout_seconds;
  net::HttpRequest req;
  req.method = std::string(method);
  req.url = driver_url_ + (absolute ? "" : "/session/" + session_id_) + path;
  if (method == "POST") {
    req.body = body ? json::serialize(*body) : "{}";
    req.headers.push_back({"Content-Type", "application/json; charset=utf-8"});
  }
  net::TransferInfo info;
  Result<net::HttpReply> reply = Client(timeout_seconds).Perform(req, &info);
  if (!reply.ok()) {
    if (info.seconds >= timeout_seconds * 0.95) {
      error_ = WebDriverError::kCallTimedOut;
      return Status::Transient(std::string(context) + ": chromedriver did not answer within " +
                               std::to_string(std::lround(timeout_seconds)) + " s");
    }
    error_ = WebDriverError::kConnectionLost;
    const std::string& m = reply.status().message();
    size_t colon = m.rfind(": ");
    return Status::Transient(std::string(context) + ": connection to chromedriver lost (" +
                             (colon == std::string::npos ? m : m.substr(colon + 2)) + ")");
  }
  boost::system::error_code ec;
  json::value doc = json::parse(reply->body, ec);
  json::object* top = ec ? nullptr : doc.if_object();
  json::value* value = top ? top->if_contains("value") : nullptr;
  if (!value) {
    error_ = WebDriverError::kBadReply;
    return Status::Transient(std::string(context) + ": chromedriver answered HTTP " +
                             std::to_string(reply->status) + " without WebDriver JSON");
  }
  const json::object* vo = value->if_object();
  const json::value* code = vo ? vo->if_contains("error") : nullptr;
  if (reply->status >= 400 || (code && code->is_string())) {
    std::string code_text = code && code->is_string() ? std::string(code->get_string()) : "";
    error_ = code_text.empty() ? WebDriverError::kUnknownError : ErrorFromCode(code_text);
    if (code_text.empty()) code_text = ErrorName(error_);
    std::string msg = std::string(context) + ": " + code_text;
    const json::value* m = vo ? vo->if_contains("message") : nullptr;
    if (m && m->is_string()) {
      std::string detail = SafeDetail(m->get_string(), code_text);
      if (!detail.empty()) msg += ": " + detail;
    }
    switch (StatusCodeOf(error_)) {
      case Status::Code::kTransient:
        return Status::Transient(msg);
      case Status::Code::kInvalid:
        return Status::Invalid(msg);
      default:
        return Status::Permanent(msg);
    }
  }
  return std::move(*value);
}

Result<std::unique_ptr<WebDriver>> WebDriver::NewSession(const std::string& driver_url,
                                                         const SessionOptions& options) {
  std::unique_ptr<WebDriver> d(new WebDriver(driver_url, options));
  json::object chrome;
  if (!options.binary.empty()) chrome["binary"] = options.binary;
  json::array args;
  for (const auto& a : options.args) args.emplace_back(a);
  chrome["args"] = std::move(args);
  if (!options.prefs.empty()) chrome["prefs"] = options.prefs;
  const Timeouts& t = options.timeouts;
  json::object always{
      {"browserName", "chrome"},
      {"pageLoadStrategy", options.page_load_strategy},
      {"unhandledPromptBehavior", "ignore"},
      {"timeouts",
       {{"script", std::llround(t.script_seconds * 1000)},
        {"pageLoad", std::llround(t.page_load_seconds * 1000)},
        {"implicit", std::llround(t.implicit_seconds * 1000)}}},
      {"goog:chromeOptions", std::move(chrome)},
  };
  json::value body = json::object{{"capabilities", {{"alwaysMatch", std::move(always)}}}};
  auto r = d->Command("POST", "/session", &body, "starting a WebDriver session",
                      options.start_timeout_seconds, true);
  if (!r.ok()) {
    // Chromium that did not start is worth another try, not a wrong call.
    if (r.status().code() == Status::Code::kInvalid || d->error_ == WebDriverError::kUnknownError) {
      return Status::Transient(r.status().message());
    }
    return r.status();
  }
  const json::object* v = r->if_object();
  const json::value* id = v ? v->if_contains("sessionId") : nullptr;
  if (!id || !id->is_string()) {
    d->error_ = WebDriverError::kBadReply;
    return Status::Transient(
        "starting a WebDriver session: chromedriver's answer has no sessionId");
  }
  d->session_id_ = std::string(id->get_string());
  if (const json::value* caps = v->if_contains("capabilities"); caps && caps->is_object()) {
    d->capabilities_ = caps->get_object();
  }
  return d;
}

Status WebDriver::DeleteSession() {
  if (session_id_.empty()) return Status::OK();
  auto r = Command("DELETE", "", nullptr, "ending the WebDriver session",
                   std::min(options_.command_timeout_seconds, 10.0));
  session_id_.clear();
  clients_.clear();
  return r.status();
}

Status WebDriver::SetTimeouts(const Timeouts& t) {
  json::value body = json::object{{"script", std::llround(t.script_seconds * 1000)},
                                  {"pageLoad", std::llround(t.page_load_seconds * 1000)},
                                  {"implicit", std::llround(t.implicit_seconds * 1000)}};
  auto r = Command("POST", "/timeouts", &body, "setting timeouts");
  if (r.ok()) timeouts_ = t;
  return r.status();
}

// ---- navigation

Status WebDriver::Navigate(const std::string& url) {
  json::value body = json::object{{"url", url}};
  return Command("POST", "/url", &body, "loading a page", LoadBound()).status();
}

namespace {
Result<std::string> AsString(Result<json::value> r, std::string_view context) {
  if (!r.ok()) return r.status();
  if (r->is_null()) return std::string();
  if (!r->is_string()) {
    return Status::Transient(std::string(context) + ": chromedriver answered no text");
  }
  return std::string(r->get_string());
}
Result<bool> AsBool(Result<json::value> r, std::string_view context) {
  if (!r.ok()) return r.status();
  if (!r->is_bool()) {
    return Status::Transient(std::string(context) + ": chromedriver answered no true/false");
  }
  return r->get_bool();
}
}  // namespace

Result<std::string> WebDriver::CurrentUrl() {
  return AsString(Command("GET", "/url", nullptr, "reading the URL"), "reading the URL");
}
Result<std::string> WebDriver::Title() {
  return AsString(Command("GET", "/title", nullptr, "reading the title"), "reading the title");
}
Status WebDriver::Back() {
  return Command("POST", "/back", nullptr, "going back", LoadBound()).status();
}
Status WebDriver::Forward() {
  return Command("POST", "/forward", nullptr, "going forward", LoadBound()).status();
}
Status WebDriver::Refresh() {
  return Command("POST", "/refresh", nullptr, "reloading the page", LoadBound()).status();
}

// ---- elements

Result<Element> WebDriver::ToElement(Result<json::value> v, std::string_view context) {
  if (!v.ok()) return v.status();
  auto e = AsElement(*v);
  if (!e) {
    error_ = WebDriverError::kBadReply;
    return Status::Transient(std::string(context) + ": chromedriver answered no element");
  }
  return *e;
}

Result<std::vector<Element>> WebDriver::ToElements(Result<json::value> v,
                                                   std::string_view context) {
  if (!v.ok()) return v.status();
  std::vector<Element> out;
  if (const json::array* a = v->if_array()) {
    for (const auto& item : *a) {
      if (auto e = AsElement(item)) out.push_back(std::move(*e));
    }
    return out;
  }
  error_ = WebDriverError::kBadReply;
  return Status::Transient(std::string(context) + ": chromedriver answered no list of elements");
}

Result<json::value> WebDriver::ElementCommand(std::string_view method, const Element& element,
                                              const std::string& sub, const json::value* body,
                                              std::string_view context, double timeout) {
  return Command(method, "/element/" + net::UrlEncode(element.id) + sub, body, context, timeout);
}

Result<Element> WebDriver::FindElement(const By& by) {
  json::value body = Using(by);
  return ToElement(Command("POST", "/element", &body, "finding an element"), "finding an element");
}

Result<std::vector<Element>> WebDriver::FindElements(const By& by) {
  json::value body = Using(by);
  return ToElements(Command("POST", "/elements", &body, "finding elements"), "finding elements");
}

Result<Element> WebDriver::FindElement(const Element& from, const By& by) {
  json::value body = Using(by);
  return ToElement(ElementCommand("POST", from, "/element", &body, "finding an element within"),
                   "finding an element within");
}

Result<std::vector<Element>> WebDriver::FindElements(const Element& from, const By& by) {
  json::value body = Using(by);
  return ToElements(ElementCommand("POST", from, "/elements", &body, "finding elements within"),
                    "finding elements within");
}

Result<Element> WebDriver::ActiveElement() {
  return ToElement(Command("GET", "/element/active", nullptr, "finding the focused element"),
                   "finding the focused element");
}

Status WebDriver::Click(const Element& element) {
  return ElementCommand("POST", element, "/click", nullptr, "clicking an element", LoadBound())
      .status();
}

Status WebDriver::Clear(const Element& element) {
  return ElementCommand("POST", element, "/clear", nullptr, "clearing a field").status();
}

Status WebDriver::SendKeys(const Element& element, std::string_view text) {
  json::value body = json::object{{"text", text}};
  return ElementCommand("POST", element, "/value", &body, "typing into a field", LoadBound())
      .status();
}

Status WebDriver::UploadFiles(const Element& element, const std::vector<std::string>& paths) {
  error_ = WebDriverError::kNone;
  if (paths.empty()) {
    error_ = WebDriverError::kInvalidArgument;
    return Status::Invalid("choosing files to upload: no file given");
  }
  std::string text;
  for (size_t i = 0; i < paths.size(); ++i) {
    std::error_code ec;
    std::filesystem::path p(paths[i]);
    if (!p.is_absolute() || !std::filesystem::is_regular_file(p, ec)) {
      error_ = WebDriverError::kInvalidArgument;
      return Status::Invalid("choosing files to upload: file " + std::to_string(i + 1) + " of " +
                             std::to_string(paths.size()) +
                             " is not an absolute path of an existing file");
    }
    if (i) text += '\n';
    text += paths[i];
  }
  json::value body = json::object{{"text", text}};
  return ElementCommand("POST", element, "/value", &body, "choosing files to upload").status();
}

Result<std::string> WebDriver::Text(const Element& element) {
  return AsString(ElementCommand("GET", element, "/text", nullptr, "reading an element's text"),
                  "reading an element's text");
}

Result<std::string> WebDriver::TagName(const Element& element) {
  return AsString(ElementCommand("GET", element, "/name", nullptr, "reading an element's tag"),
                  "reading an element's tag");
}

Result<json::value> WebDriver::Property(const Element& element, const std::string& name) {
  return ElementCommand("GET", element, "/property/" + net::UrlEncode(name), nullptr,
                        "reading an element's property");
}

Result<std::optional<std::string>> WebDriver::Attribute(const Element& element,
                                                        const std::string& name) {
  auto r = ElementCommand("GET", element, "/attribute/" + net::UrlEncode(name), nullptr,
                          "reading an element's attribute");
  if (!r.ok()) return r.status();
  if (r->is_null()) return std::optional<std::string>();
  if (r->is_string()) return std::optional<std::string>(std::string(r->get_string()));
  return std::optional<std::string>(json::serialize(*r));
}

Result<Rect> WebDriver::ElementRect(const Element& element) {
  auto r = ElementCommand("GET", element, "/rect", nullptr, "reading an element's position");
  if (!r.ok()) return r.status();
  const json::object* o = r->if_object();
  auto num = [&](const char* k) {
    const json::value* v = o ? o->if_contains(k) : nullptr;
    return v && v->is_number() ? v->to_number<double>() : 0.0;
  };
  return Rect{num("x"), num("y"), num("width"), num("height")};
}

Result<bool> WebDriver::Enabled(const Element& element) {
  return AsBool(ElementCommand("GET", element, "/enabled", nullptr, "reading whether enabled"),
                "reading whether enabled");
}

Result<bool> WebDriver::Selected(const Element& element) {
  return AsBool(ElementCommand("GET", element, "/selected", nullptr, "reading whether selected"),
                "reading whether selected");
}

Result<bool> WebDriver::Displayed(const Element& element) {
  auto r = ElementCommand("GET", element, "/displayed", nullptr, "reading whether displayed");
  if (r.ok() ||
      (error_ != WebDriverError::kUnknownCommand && error_ != WebDriverError::kUnknownMethod)) {
    return AsBool(std::move(r), "reading whether displayed");
  }
  // The endpoint is not in the W3C spec proper; what a person would see.
  static const char* kScript =
      "var e = arguments[0];"
      "if (!e.isConnected) return false;"
      "if (e.checkVisibility) {"
      "  if (!e.checkVisibility({opacityProperty: true, visibilityProperty: true})) return false;"
      "} else {"
      "  for (var p = e; p; p = p.parentElement) {"
      "    var s = getComputedStyle(p);"
      "    if (s.display === 'none' || s.visibility === 'hidden' || s.opacity === '0') "
      "return false;"
      "  }"
      "}"
      "var r = e.getBoundingClientRect();"
      "return r.width > 0 && r.height > 0;";
  return AsBool(ExecuteScript(kScript, json::array{ElementRef(element)}),
                "reading whether displayed");
}

// ---- scripts

Result<json::value> WebDriver::ExecuteScript(const std::string& script, const json::array& args) {
  json::value body = json::object{{"script", script}, {"args", args}};
  return Command("POST", "/execute/sync", &body, "running a script",
                 timeouts_.script_seconds + options_.command_timeout_seconds);
}

Result<json::value> WebDriver::ExecuteAsyncScript(const std::string& script,
                                                  const json::array& args) {
  json::value body = json::object{{"script", script}, {"args", args}};
  return Command("POST", "/execute/async", &body, "running a script",
                 timeouts_.script_seconds + options_.command_timeout_seconds);
}

// ---- frames

Status WebDriver::SwitchToFrame(int index) {
  json::value body = json::object{{"id", index}};
  return Command("POST", "/frame", &body, "switching to a frame").status();
}

Status WebDriver::SwitchToFrame(const Element& frame) {
  json::value body = json::object{{"id", ElementRef(frame)}};
  return Command("POST", "/frame", &body, "switching to a frame").status();
}

Status WebDriver::SwitchToParentFrame() {
  return Command("POST", "/frame/parent", nullptr, "switching to the parent frame").status();
}

Status WebDriver::SwitchToTopFrame() {
  json::value body = json::object{{"id", nullptr}};
  return Command("POST", "/frame", &body, "switching to the top frame").status();
}

// ---- windows

namespace {
Result<std::vector<std::string>> AsStrings(Result<json::value> r, std::string_view context) {
  if (!r.ok()) return r.status();
  std::vector<std::string> out;
  if (const json::array* a = r->if_array()) {
    for (const auto& v : *a) {
      if (v.is_string()) out.emplace_back(v.get_string());
    }
    return out;
  }
  return Status::Transient(std::string(context) + ": chromedriver answered no list");
}
}  // namespace

Result<std::string> WebDriver::WindowHandle() {
  return AsString(Command("GET", "/window", nullptr, "reading the window handle"),
                  "reading the window handle");
}

Result<std::vector<std::string>> WebDriver::WindowHandles() {
  return AsStrings(Command("GET", "/window/handles", nullptr, "listing windows"),
                   "listing windows");
}

Status WebDriver::SwitchToWindow(const std::string& handle) {
  json::value body = json::object{{"handle", handle}};
  return Command("POST", "/window", &body, "switching windows").status();
}

Result<std::string> WebDriver::NewWindow(bool tab) {
  json::value body = json::object{{"type", tab ? "tab" : "window"}};
  auto r = Command("POST", "/window/new", &body, "opening a window");
  if (!r.ok()) return r.status();
  const json::object* o = r->if_object();
  const json::value* h = o ? o->if_contains("handle") : nullptr;
  if (!h || !h->is_string()) {
    error_ = WebDriverError::kBadReply;
    return Status::Transient("opening a window: chromedriver answered no handle");
  }
  return std::string(h->get_string());
}

Result<std::vector<std::string>> WebDriver::CloseWindow() {
  return AsStrings(Command("DELETE", "/window", nullptr, "closing a window"), "closing a window");
}

Status WebDriver::SetWindowSize(int width, int height) {
  json::value body = json::object{{"width", width}, {"height", height}};
  return Command("POST", "/window/rect", &body, "sizing the window").status();
}

// ---- dialogs

Result<std::optional<std::string>> WebDriver::AlertText() {
  auto r = Command("GET", "/alert/text", nullptr, "reading a dialog");
  if (!r.ok()) {
    if (error_ == WebDriverError::kNoSuchAlert) return std::optional<std::string>();
    return r.status();
  }
  if (r->is_string()) return std::optional<std::string>(std::string(r->get_string()));
  return std::optional<std::string>(std::string());
}

Status WebDriver::AcceptAlert() {
  return Command("POST", "/alert/accept", nullptr, "accepting a dialog", LoadBound()).status();
}

Status WebDriver::DismissAlert() {
  return Command("POST", "/alert/dismiss", nullptr, "dismissing a dialog", LoadBound()).status();
}

Status WebDriver::SendAlertText(std::string_view text) {
  json::value body = json::object{{"text", text}};
  return Command("POST", "/alert/text", &body, "typing into a dialog").status();
}

// ---- page

Result<std::string> WebDriver::ViewportScreenshot() {
  auto r = AsString(Command("GET", "/screenshot", nullptr, "taking a screenshot"),
                    "taking a screenshot");
  if (!r.ok()) return r.status();
  bool ok = false;
  std::string png = Base64Decode(*r, &ok);
  if (!ok) {
    error_ = WebDriverError::kBadReply;
    return Status::Transient("taking a screenshot: chromedriver answered no base64");
  }
  return png;
}

Result<std::string> WebDriver::Screenshot(int max_height) {
  // Chromium draws beyond the viewport through the DevTools protocol, which
  // chromedriver passes on (goog/cdp/execute).
  json::value metrics_cmd =
      json::object{{"cmd", "Page.getLayoutMetrics"}, {"params", json::object{}}};
  auto m = Command("POST", "/goog/cdp/execute", &metrics_cmd, "measuring the page");
  if (!m.ok()) {
    if (error_ == WebDriverError::kUnknownCommand || error_ == WebDriverError::kUnknownMethod ||
        error_ == WebDriverError::kUnknownError) {
      return ViewportScreenshot();
    }
    return m.status();
  }
  double width = 0, height = 0;
  if (const json::object* o = m->if_object()) {
    const json::value* size = o->if_contains("cssContentSize");
    if (!size) size = o->if_contains("contentSize");
    if (size && size->is_object()) {
      const json::object& s = size->get_object();
      if (auto* w = s.if_contains("width"); w && w->is_number()) width = w->to_number<double>();
      if (auto* h = s.if_contains("height"); h && h->is_number()) height = h->to_number<double>();
    }
  }
  if (width < 1 || height < 1) return ViewportScreenshot();
  height = std::min(height, static_cast<double>(max_height));
  json::value shot_cmd = json::object{
      {"cmd", "Page.captureScreenshot"},
      {"params",
       {{"format", "png"},
        {"captureBeyondViewport", true},
        {"clip", {{"x", 0}, {"y", 0}, {"width", width}, {"height", height}, {"scale", 1}}}}}};
  auto r = Command("POST", "/goog/cdp/execute", &shot_cmd, "taking a screenshot", LoadBound());
  if (!r.ok()) return ViewportScreenshot();
  const json::object* o = r->if_object();
  const json::value* data = o ? o->if_contains("data") : nullptr;
  if (!data || !data->is_string()) return ViewportScreenshot();
  bool ok = false;
  std::string png = Base64Decode(data->get_string(), &ok);
  if (!ok) return ViewportScreenshot();
  return png;
}

Result<std::string> WebDriver::PageSource() {
  return AsString(Command("GET", "/source", nullptr, "reading the page source"),
                  "reading the page source");
}

// ---- keyboard

Status WebDriver::KeyActions(const json::array& actions, std::string_view context) {
  json::value body = json::object{
      {"actions", json::array{json::object{
                      {"type", "key"}, {"id", "keyonce-keyboard"}, {"actions", actions}}}}};
  auto r = Command("POST", "/actions", &body, context, LoadBound());
  // Keys left down would stay down for the next action.
  WebDriverError first = error_;
  auto released = Command("DELETE", "/actions", nullptr, context);
  if (!r.ok()) {
    error_ = first;
    return r.status();
  }
  return released.status();
}

Status WebDriver::PressKeys(std::string_view text) {
  json::array actions;
  for (const std::string& k : CodePoints(text)) {
    actions.push_back(json::object{{"type", "keyDown"}, {"value", k}});
    actions.push_back(json::object{{"type", "keyUp"}, {"value", k}});
  }
  return KeyActions(actions, "pressing keys");
}

Status WebDriver::PressChord(const std::vector<std::string>& chord) {
  json::array actions;
  for (const auto& k : chord) actions.push_back(json::object{{"type", "keyDown"}, {"value", k}});
  for (auto it = chord.rbegin(); it != chord.rend(); ++it) {
    actions.push_back(json::object{{"type", "keyUp"}, {"value", *it}});
  }
  return KeyActions(actions, "pressing a key combination");
}

}  // namespace keyonce::connectors::browser
