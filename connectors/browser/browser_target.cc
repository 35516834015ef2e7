#include "connectors/browser/browser_target.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "connectors/browser/actions.h"
#include "connectors/browser/browser_process.h"
#include "connectors/browser/page_scripts.h"
#include "connectors/browser/webdriver.h"

namespace keyonce::connectors::browser {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// How often an action looks again for the element it waits for.
constexpr auto kPoll = std::chrono::milliseconds(50);
// Once it is there: how long after, it must still be in the same place (about
// one frame at 60 Hz, as a person's eye would see it still).
constexpr auto kSteady = std::chrono::milliseconds(16);

struct Config {
  BrowserOptions browser;
  int sessions = 1;
  double timeout = 10;       // how long an action waits for its element
  double page_timeout = 30;  // how long a page may take to load
  bool has_exists = false;
  std::optional<Locator> logged_out, errors;
};

// Where a list of actions stopped.
enum class Stop {
  kNone,
  kLoggedOut,    // the site showed its login page (the session expired)
  kBrowserGone,  // the browser or its driver died, or a page did not load
  kFailed,       // the page is not as the recipe says
};

struct Outcome {
  Status status;
  Stop stop = Stop::kNone;
  bool submitted = false;  // the `submits` click was made (or attempted)
  bool site_said = false;  // the site showed a message where `errors` points
};

// The answer of the locate script.
struct Found {
  std::optional<Element> element;
  int count = 0;
  std::array<int64_t, 4> rect{-1, -1, -1, -1};
  bool stable = false;  // in the same place two looks in a row (kWaitScript)
};

std::string Secs(double s) {
  char b[32];
  std::snprintf(b, sizeof b, s == static_cast<int>(s) ? "%.0f s" : "%.1f s", s);
  return b;
}

// An absolute URL, or `path` below `base`.
std::string Absolute(const std::string& base, const std::string& path) {
  if (path.find("://") != std::string::npos) return path;
  if (base.empty()) return path;
  if (path.empty()) return base;
  bool slash_b = base.back() == '/', slash_p = path.front() == '/';
  if (slash_b && slash_p) return base + path.substr(1);
  if (!slash_b && !slash_p) return base + "/" + path;
  return base + path;
}

// One browser and its login: what one session of the target keys records with.
class Session {
 public:
  Session(const Config& c, const Settings& s, int number) : c_(c), settings_(s), number_(number) {}

  void Configure(const RunContext* ctx, const std::string* base, const std::vector<Action>* login) {
    ctx_ = ctx;
    base_ = base;
    login_ = login;
  }

  // A browser, logged in. *refused: the login itself was refused (a wrong
  // password), which must not be tried again.
  Status Ready(bool* refused) {
    *refused = false;
    if (browser_ && !browser_->process().alive()) Drop();
    if (!browser_) {
      // Downloads land in the browser's own temp folder (removed with it, by
      // its watchdog too); the `download` action moves each where the recipe
      // wants it.
      auto b = Browser::Launch(c_.browser, [&](SessionOptions& o) {
        o.timeouts.page_load_seconds = c_.page_timeout;
        o.timeouts.script_seconds = std::max(30.0, c_.timeout);
      });
      if (!b.ok()) return b.status().Wrap("starting browser session " + std::to_string(number_));
      browser_ = std::move(b).value();
      ctx_->log->Info("Browser session " + std::to_string(number_) + " of " + ctx_->target_name +
                      " started (" + Secs(browser_->launch_seconds()) + ").");
      logged_in_ = false;
    }
    if (logged_in_ || login_->empty()) {
      logged_in_ = true;
      return Status::OK();
    }
    boost::json::object ignored;
    Outcome o = Run(*login_, &ignored, /*in_login=*/true);
    if (o.status.ok() && c_.logged_out && !LoginPageLeft()) {
      o.status = Status::Permanent("the login page still shows after the login actions");
      o.stop = Stop::kFailed;
    }
    if (!o.status.ok()) {
      if (o.stop == Stop::kBrowserGone) {
        Drop();
        return o.status.Wrap("logging in");
      }
      *refused = true;
      return Status::Permanent("logging in to " + ctx_->target_name +
                               " failed: " + o.status.message() +
                               ". The run stops rather than try again (a wrong password tried "
                               "again could lock the account); check the login and its "
                               "secrets, then run again");
    }
    logged_in_ = true;
    return Status::OK();
  }

  // Saves what the browser shows now, for the person who handles a failed
  // record: `<base>.png` (the whole page, as far as chromium draws it) and
  // `<base>.html` (its HTML, at most max_html bytes). The paths of the files
  // saved; nothing when the browser is gone. *bytes: their sizes.
  std::vector<std::string> SaveEvidence(const std::string& base, size_t max_html, size_t* bytes) {
    std::vector<std::string> saved;
    *bytes = 0;
    if (!browser_ || !browser_->process().alive()) return saved;
    auto put = [&](const std::string& path, const std::string& data) {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(data.data(), static_cast<std::streamsize>(data.size()));
      if (out.flush()) {
        saved.push_back(path);
        *bytes += data.size();
      }
    };
    if (auto png = d().Screenshot(4096); png.ok()) put(base + ".png", *png);
    if (auto html = d().PageSource(); html.ok()) {
      std::string h = std::move(html).value();
      if (h.size() > max_html) {
        h.resize(max_html);
        h += "\n<!-- keyonce: cut at " + std::to_string(max_html) + " bytes -->\n";
      }
      put(base + ".html", h);
    }
    return saved;
  }

  void LoggedOut() { logged_in_ = false; }
  void Drop() {
    browser_.reset();
    logged_in_ = false;
  }

  Outcome Run(const std::vector<Action>& actions, boost::json::object* reply,
              bool in_login = false) {
    Outcome out;
    in_login_ = in_login;
    for (const Action& a : actions) {
      Status st = Do(a, reply, &out);
      if (st.ok()) {
        if (out.stop == Stop::kLoggedOut) return out;
        continue;
      }
      out.status = st;
      Classify(&out);
      return out;
    }
    return out;
  }

  // The `exists` check: kExists (with the values read) or kAbsent.
  Result<CheckResult> Exists(const ExistsCheck& e) {
    boost::json::object reply;
    Outcome o = Run(e.actions, &reply);
    if (o.stop == Stop::kLoggedOut) {
      logged_in_ = false;  // the next Ready logs in again
      return Status::Transient("the login page showed while checking whether the record exists");
    }
    if (!o.status.ok()) {
      if (o.stop == Stop::kBrowserGone) Drop();
      return o.status.Wrap("checking whether the record exists");
    }
    const auto deadline = Clock::now() + Seconds(c_.timeout);
    for (;;) {
      auto f = Locate(e.found, "see");
      if (!f.ok()) return f.status().Wrap("checking whether the record exists");
      if (f->count > 0) break;
      if (!e.has_absent) return CheckResult{CheckResult::Outcome::kAbsent, {}};
      auto a = Locate(e.absent, "see");
      if (!a.ok()) return a.status().Wrap("checking whether the record exists");
      if (a->count > 0) return CheckResult{CheckResult::Outcome::kAbsent, {}};
      if (Clock::now() >= deadline) {
        return Status::Transient("checking whether the record exists: neither " +
                                 e.found.Describe() + " nor " + e.absent.Describe() +
                                 " showed within " + Secs(c_.timeout));
      }
      std::this_thread::sleep_for(kPoll);
    }
    for (const auto& [name, l] : e.reads) {
      auto v = ReadValue(l, c_.timeout);
      if (!v.ok()) return v.status().Wrap("reading '" + name + "' of the record that exists");
      reply[name] = *v;
    }
    return CheckResult{CheckResult::Outcome::kExists, Value(std::move(reply))};
  }

 private:
  WebDriver& d() { return browser_->driver(); }

  // Decides what a failed action means: a dead browser, the login page, the
  // site's own message.
  void Classify(Outcome* out) {
    if (out->status.IsTransient() || !browser_ || !browser_->process().alive()) {
      out->stop = Stop::kBrowserGone;
      return;
    }
    out->stop = Stop::kFailed;
    if (!in_login_ && c_.logged_out && Shown(*c_.logged_out)) {
      out->stop = Stop::kLoggedOut;
      return;
    }
    if (c_.errors) {
      auto f = Locate(*c_.errors, "see");
      if (f.ok() && f->count > 0 && f->element) {
        auto text = d().ExecuteScript(kReadScript, {ElementRef(*f->element)});
        if (text.ok() && text->is_string() && !text->get_string().empty()) {
          out->site_said = true;
          out->status = Status::Permanent("the site says: " + std::string(text->get_string()));
        }
      }
    }
  }

  // After the login actions: whether the login page went away. The click
  // that logs in may start its page late (a busy machine, a slow site), so
  // this looks until it has gone, the site shows its message (`errors`: a
  // refused password, at once), or the action timeout ends.
  bool LoginPageLeft() {
    const auto deadline = Clock::now() + Seconds(c_.timeout);
    for (;;) {
      if (!Shown(*c_.logged_out)) return true;
      if ((c_.errors && Shown(*c_.errors)) || Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(kPoll);
    }
  }

  bool Shown(const Locator& l) {
    auto f = Locate(l, "see");
    return f.ok() && f->count > 0;
  }

  Result<Found> Locate(const Locator& l, const char* mode) {
    return Looked(d().ExecuteScript(kLocateScript, {l.ToJson(), boost::json::string(mode)}), l);
  }

  // What kLocateScript or kWaitScript answered.
  Result<Found> Looked(Result<boost::json::value> v, const Locator& l) {
    if (!v.ok()) {
      if (d().error() == WebDriverError::kUnexpectedAlertOpen) {
        return Status::Permanent(
            "the page shows a dialog (alert or confirm) that no action handles; add `dialog: "
            "accept` (or dismiss) to the click that opens it");
      }
      if (d().error() == WebDriverError::kJavascriptError) {
        return Status::Invalid("finding " + l.Describe() + ": the selector is not valid");
      }
      return v.status();
    }
    Found f;
    if (!v->is_object()) return f;
    const auto& o = v->get_object();
    if (o.contains("error")) {
      return Status::Invalid("finding " + l.Describe() + ": the selector is not valid");
    }
    if (const auto* c = o.if_contains("count"); c && c->is_int64())
      f.count = static_cast<int>(c->get_int64());
    if (const auto* e = o.if_contains("element")) f.element = AsElement(*e);
    if (const auto* r = o.if_contains("rect"); r && r->is_array() && r->get_array().size() == 4) {
      for (size_t i = 0; i < 4; ++i) {
        const auto& x = r->get_array()[i];
        f.rect[i] = x.is_int64()    ? x.get_int64()
                    : x.is_double() ? static_cast<int64_t>(x.get_double())
                                    : -1;
      }
    }
    if (const auto* st = o.if_contains("stable"); st && st->is_bool()) f.stable = st->get_bool();
    return f;
  }

  // Waits until the element is there, visible (and enabled for "act"), and
  // in the same place twice in a row (not moving). The page itself waits
  // (kWaitScript), in slices of at most a second between which keyonce
  // checks whether the session expired.
  Result<Element> WaitFor(const Locator& l, const char* mode, double timeout) {
    const auto deadline = Clock::now() + Seconds(timeout);
    Found f;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const int64_t budget = std::clamp<int64_t>(left.count(), 0, 1000);
      auto r = Looked(
          d().ExecuteAsyncScript(kWaitScript, {l.ToJson(), boost::json::string(mode), budget}), l);
      if (!r.ok()) {
        // The page went away while it waited (a navigation): look again on
        // the next one, which the driver waits for.
        if (d().error() != WebDriverError::kScriptTimeout) return r.status();
        if (Clock::now() >= deadline) break;
        std::this_thread::sleep_for(kSteady);
        continue;
      }
      f = std::move(r).value();
      if (f.element && f.stable) return *f.element;
      if (Clock::now() >= deadline) break;
      // The session expired meanwhile: no use waiting for the element.
      if (!f.element && !in_login_ && c_.logged_out && Shown(*c_.logged_out)) {
        return Status::Permanent("the login page shows instead (the session expired)");
      }
    }
    if (f.count > 1 && l.nth == 0) {
      return Status::Permanent(std::to_string(f.count) + " elements match " + l.Describe() +
                               "; make it unique (nth: 1 for the first, or a css: locator)");
    }
    if (f.element) return Status::Permanent(l.Describe() + " kept moving for " + Secs(timeout));
    if (std::string(mode) != "any") {
      auto any = Locate(l, "any");
      if (any.ok() && any->count > 0) {
        return Status::Permanent(l.Describe() + " is there but not " +
                                 (std::string(mode) == "act" ? "visible and enabled" : "visible") +
                                 " after " + Secs(timeout));
      }
    }
    return Status::Permanent("nothing matches " + l.Describe() + " after " + Secs(timeout));
  }

  // Clicks what starts a download, waits until the file is complete in the
  // session's download folder, and moves it to a.text (the recipe's folder,
  // relative to the recipe), keeping the site's file name (with " (2)" etc.
  // when taken). The saved file's absolute path.
  Result<std::string> Download(const Action& a, double timeout) {
    const fs::path downloads = browser_->process().downloads_dir();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(downloads, ec)) fs::remove_all(e.path(), ec);
    auto el = WaitFor(a.target, "act", timeout);
    if (!el.ok()) return el.status();
    KEYONCE_RETURN_IF_ERROR(Click(*el, timeout));
    const auto deadline = Clock::now() + Seconds(timeout);
    fs::path done;
    uintmax_t last_size = static_cast<uintmax_t>(-1);
    for (;;) {
      fs::path file;
      bool partial = false;
      for (const auto& e : fs::directory_iterator(downloads, ec)) {
        const std::string n = e.path().filename().string();
        if (n.ends_with(".crdownload") || n.ends_with(".tmp") || n.rfind(".com.google", 0) == 0) {
          partial = true;
        } else if (e.is_regular_file(ec)) {
          file = e.path();
        }
      }
      if (!file.empty() && !partial) {
        uintmax_t size = fs::file_size(file, ec);
        if (!ec && size == last_size) {
          done = file;
          break;
        }
        last_size = ec ? static_cast<uintmax_t>(-1) : size;
      }
      if (Clock::now() >= deadline) {
        return Status::Permanent(partial ? "the download did not finish within " + Secs(timeout)
                                         : "no download started within " + Secs(timeout));
      }
      std::this_thread::sleep_for(kPoll);
    }
    fs::path folder(a.text);
    if (folder.is_relative()) folder = settings_.base_dir / folder;
    fs::create_directories(folder, ec);
    if (ec) return Status::Io("making the download folder failed: " + ec.message());
    const std::string stem = done.stem().string(), ext = done.extension().string();
    fs::path to = folder / done.filename();
    for (int n = 2; fs::exists(to, ec); ++n) {
      to = folder / (stem + " (" + std::to_string(n) + ")" + ext);
    }
    fs::rename(done, to, ec);
    if (ec) {  // another file system: copy, then remove
      ec.clear();
      fs::copy_file(done, to, ec);
      if (ec) return Status::Io("saving the download failed: " + ec.message());
      fs::remove(done, ec);
    }
    return fs::absolute(to, ec).lexically_normal().string();
  }

  Result<std::string> ReadValue(const Locator& l, double timeout) {
    auto el = WaitFor(l, "see", timeout);
    if (!el.ok()) return el.status();
    auto v = d().ExecuteScript(kReadScript, {ElementRef(*el)});
    if (!v.ok()) return v.status();
    return v->is_string() ? std::string(v->get_string()) : ToText(*v);
  }

  Status WaitForDialog(const std::string& what, double timeout) {
    const auto deadline = Clock::now() + Seconds(timeout);
    for (;;) {
      auto t = d().AlertText();
      if (!t.ok()) return t.status();
      if (t->has_value()) return what == "accept" ? d().AcceptAlert() : d().DismissAlert();
      if (Clock::now() >= deadline) {
        return Status::Permanent("no dialog showed within " + Secs(timeout) + " to " + what);
      }
      std::this_thread::sleep_for(kPoll);
    }
  }

  // Fills a field in one step (as a paste would), or key by key with
  // `keys: true` for a page that reacts to each key (an input mask, a
  // suggestion list); fields one cannot type into reliably (date and time
  // inputs, colours, sliders, editable areas) are always set.
  Status Fill(const Element& el, const std::string& value, bool keys) {
    if (keys) {
      auto kind = d().ExecuteScript(
          "const el = arguments[0], t = el.tagName, ty = (el.type || 'text').toLowerCase();"
          "return t === 'TEXTAREA' || (t === 'INPUT' && ['text', 'search', 'url', 'tel', "
          "'email', 'password', 'number'].includes(ty));",
          {ElementRef(el)});
      if (!kind.ok()) return kind.status();
      if (kind->is_bool() && kind->get_bool()) {
        KEYONCE_RETURN_IF_ERROR(d().Clear(el));
        return d().SendKeys(el, value);
      }
    }
    auto r = d().ExecuteScript(kSetValueScript, {ElementRef(el), boost::json::string(value)});
    if (!r.ok()) return r.status();
    const std::string said = r->is_string() ? std::string(r->get_string()) : "";
    if (said.empty()) return Status::OK();
    // The value itself stays out of the message (it may be a CPR number).
    if (said.starts_with("longer:")) {
      return Status::Permanent("the value is longer than the field takes (at most " +
                               said.substr(7) +
                               " characters); a person typing would have "
                               "been cut off");
    }
    if (said.starts_with("refused:")) {
      return Status::Permanent("the field does not take the value (not in the form a '" +
                               said.substr(8) + "' field takes" +
                               (said == "refused:date" ? ", e.g. 2026-11-02" : "") + ")");
    }
    return Status::Permanent("it is not a field one can type into");
  }

  Status Click(const Element& el, double timeout) {
    const auto deadline = Clock::now() + Seconds(timeout);
    for (;;) {
      Status st = d().Click(el);
      // Something (a banner, a spinner) covers it for now.
      if (st.ok() || d().error() != WebDriverError::kElementClickIntercepted ||
          Clock::now() >= deadline) {
        return st;
      }
      std::this_thread::sleep_for(kPoll);
    }
  }

  Status DoBody(const Action& a, boost::json::object* reply, Outcome* out) {
    for (const Action& b : a.body) {
      Status st = Do(b, reply, out);
      if (!st.ok() || out->stop == Stop::kLoggedOut) return st;
    }
    return Status::OK();
  }

  // One action; a failure's message names the action, its element and line.
  Status Do(const Action& a, boost::json::object* reply, Outcome* out) {
    const double timeout = a.timeout_seconds > 0 ? a.timeout_seconds : c_.timeout;
    Status st = DoAction(a, reply, out, timeout);
    if (st.ok()) return st;
    std::string what = a.where + ": " + a.Name();
    if (a.has_target) what += " " + a.target.Describe();
    return st.Wrap(what);
  }

  Status DoAction(const Action& a, boost::json::object* reply, Outcome* out, double timeout) {
    switch (a.kind) {
      case Action::Kind::kGoto: {
        KEYONCE_RETURN_IF_ERROR(d().Navigate(Absolute(*base_, a.text)));
        if (!in_login_ && c_.logged_out && Shown(*c_.logged_out)) out->stop = Stop::kLoggedOut;
        return Status::OK();
      }
      case Action::Kind::kFill: {
        auto el = WaitFor(a.target, "act", timeout);
        if (!el.ok()) return el.status();
        return Fill(*el, a.text, a.keys);
      }
      case Action::Kind::kSelect: {
        auto el = WaitFor(a.target, "act", timeout);
        if (!el.ok()) return el.status();
        // Options may arrive later than the list (filled by the page's script).
        const auto deadline = Clock::now() + Seconds(timeout);
        for (;;) {
          auto r = d().ExecuteScript(kSelectScript, {ElementRef(*el), boost::json::string(a.text)});
          if (!r.ok()) return r.status();
          std::string missing = r->is_string() ? std::string(r->get_string()) : "";
          if (missing.empty()) return Status::OK();
          if (Clock::now() >= deadline) {
            return Status::Permanent("the list has no option '" + a.text + "' (it has: " + missing +
                                     ")");
          }
          std::this_thread::sleep_for(kPoll);
        }
      }
      case Action::Kind::kCheck:
      case Action::Kind::kUncheck: {
        auto el = WaitFor(a.target, "act", timeout);
        if (!el.ok()) return el.status();
        auto checked = d().ExecuteScript(kCheckedScript, {ElementRef(*el)});
        if (!checked.ok()) return checked.status();
        bool want = a.kind == Action::Kind::kCheck;
        if (checked->is_bool() && checked->get_bool() == want) return Status::OK();
        return Click(*el, timeout);
      }
      case Action::Kind::kUpload: {
        fs::path p(a.text);
        if (p.is_relative()) p = settings_.base_dir / p;
        std::error_code ec;
        if (!fs::is_regular_file(p, ec)) {
          return Status::Permanent(
              "the file to upload does not exist (relative paths are below "
              "the recipe's folder)");
        }
        auto el = WaitFor(a.target, "any", timeout);
        if (!el.ok()) return el.status();
        return d().UploadFiles(*el, {fs::absolute(p).lexically_normal().string()});
      }
      case Action::Kind::kClick: {
        auto el = WaitFor(a.target, "act", timeout);
        if (!el.ok()) return el.status();
        if (a.submits) out->submitted = true;
        KEYONCE_RETURN_IF_ERROR(Click(*el, timeout));
        if (!a.dialog.empty()) return WaitForDialog(a.dialog, timeout);
        return Status::OK();
      }
      case Action::Kind::kPress: {
        if (a.has_target) {
          auto el = WaitFor(a.target, "act", timeout);
          if (!el.ok()) return el.status();
          auto f = d().ExecuteScript("arguments[0].focus();", {ElementRef(*el)});
          if (!f.ok()) return f.status();
        }
        auto key = keys::ByName(a.text);
        if (!key) return Status::Invalid("unknown key '" + a.text + "' (Enter, Tab, Escape, ...)");
        return d().PressKeys(*key);
      }
      case Action::Kind::kWait:
        return WaitFor(a.target, "see", timeout).status();
      case Action::Kind::kWaitGone: {
        const auto deadline = Clock::now() + Seconds(timeout);
        for (;;) {
          auto f = Locate(a.target, "see");
          if (!f.ok()) return f.status();
          if (f->count == 0) return Status::OK();
          if (Clock::now() >= deadline) {
            return Status::Permanent("still showing after " + Secs(timeout));
          }
          std::this_thread::sleep_for(kPoll);
        }
      }
      case Action::Kind::kExpect: {
        Status st = WaitFor(a.target, "see", timeout).status();
        if (st.ok() || st.IsTransient() || st.code() == Status::Code::kInvalid) return st;
        return Status::Permanent(a.text.empty() ? "the page is not as expected: " + st.message()
                                                : a.text);
      }
      case Action::Kind::kDownload: {
        auto saved = Download(a, timeout);
        if (!saved.ok()) return saved.status();
        (*reply)[a.as] = *saved;
        return Status::OK();
      }
      case Action::Kind::kRead:
        for (const auto& [name, l] : a.reads) {
          auto v = ReadValue(l, timeout);
          if (!v.ok()) return v.status().Wrap("reading '" + name + "'");
          (*reply)[name] = *v;
        }
        return Status::OK();
      case Action::Kind::kInFrame: {
        auto el = WaitFor(a.target, "see", timeout);
        if (!el.ok()) return el.status();
        KEYONCE_RETURN_IF_ERROR(d().SwitchToFrame(*el));
        Status st = DoBody(a, reply, out);
        Status back = d().SwitchToParentFrame();
        return st.ok() ? back : st;
      }
      case Action::Kind::kInNewWindow: {
        auto here = d().WindowHandle();
        if (!here.ok()) return here.status();
        auto before = d().WindowHandles();
        if (!before.ok()) return before.status();
        auto el = WaitFor(a.target, "act", timeout);
        if (!el.ok()) return el.status();
        KEYONCE_RETURN_IF_ERROR(Click(*el, timeout));
        std::string opened;
        const auto deadline = Clock::now() + Seconds(timeout);
        while (opened.empty()) {
          auto now = d().WindowHandles();
          if (!now.ok()) return now.status();
          for (const auto& h : *now) {
            if (std::find(before->begin(), before->end(), h) == before->end()) opened = h;
          }
          if (!opened.empty()) break;
          if (Clock::now() >= deadline) {
            return Status::Permanent("no new window opened within " + Secs(timeout));
          }
          std::this_thread::sleep_for(kPoll);
        }
        KEYONCE_RETURN_IF_ERROR(d().SwitchToWindow(opened));
        Status st = DoBody(a, reply, out);
        auto left = d().CloseWindow();
        Status back = d().SwitchToWindow(*here);
        if (!st.ok()) return st;
        return left.ok() ? back : left.status();
      }
    }
    return Status::Internal("unknown action");
  }

  const Config& c_;
  const Settings& settings_;
  const int number_;
  const RunContext* ctx_ = nullptr;
  const std::string* base_ = nullptr;
  const std::vector<Action>* login_ = nullptr;
  std::unique_ptr<Browser> browser_;
  bool logged_in_ = false;
  bool in_login_ = false;
};

// A record's actions, rendered for it.
struct Prepared {
  std::string ref;  // the record's pseudonymous reference (names evidence files)
  Status status;
  std::vector<Action> write;
  std::optional<ExistsCheck> exists;
};

// What a target and a lookup render when they open: the site's address and
// the login actions (with the run's secrets).
Status RenderSite(const Settings& settings, const Scope& scope, std::string* base,
                  std::vector<Action>* login) {
  auto url = settings.Tmpl("url")->Render(scope);
  if (!url.ok()) return url.status().Wrap("url");
  *base = *url;
  login->clear();
  if (const StructureTemplate* l = settings.Structure("login")) {
    auto v = l->Evaluate(scope);
    if (!v.ok()) return v.status().Wrap("login");
    auto a = ParseActions(*v, settings, "login");
    if (!a.ok()) return a.status();
    *login = std::move(a).value();
  }
  return Status::OK();
}

class BrowserTarget : public Target {
 public:
  BrowserTarget(Settings settings, Config config)
      : settings_(std::move(settings)), c_(std::move(config)) {}
  ~BrowserTarget() override { Close(false); }

  TargetTraits Traits() const override {
    TargetTraits t;
    t.concurrent = c_.sessions > 1;
    return t;
  }

  Status Open(const RunContext& ctx) override {
    ctx_ = ctx;
    KEYONCE_RETURN_IF_ERROR(RenderSite(settings_, ctx_.scope, &base_, &login_));
    sessions_.clear();
    for (int i = 0; i < c_.sessions; ++i) {
      sessions_.push_back(std::make_unique<Session>(c_, settings_, i + 1));
      sessions_.back()->Configure(&ctx_, &base_, &login_);
    }
    // Browsers start when the first record needs one: a rerun with nothing
    // to key starts none. A missing chromium or a refused login then stops
    // the run (WriteResult::stop_run).
    return Status::OK();
  }

  Result<Value> Render(const WriteOp& op) override {
    Prepared p = Prepare(op);
    if (!p.status.ok()) return p.status;
    return RenderForDryRun(p.write);
  }

  WriteResult Write(const WriteOp& op) override { return std::move(WriteMany({op})[0]); }

  std::vector<WriteResult> WriteMany(const std::vector<WriteOp>& ops) override {
    const size_t n = ops.size();
    std::vector<WriteResult> out(n);
    if (sessions_.empty()) {
      for (auto& r : out) r.status = Status::Internal("browser target written before Open");
      return out;
    }
    // Rendered here, on the engine's thread (templates may ask lookup tables).
    std::vector<Prepared> prepared;
    prepared.reserve(n);
    for (const auto& op : ops) prepared.push_back(Prepare(op));
    std::atomic<size_t> next{0};
    auto work = [&](Session& s) {
      for (size_t i; (i = next++) < n;) {
        if (!prepared[i].status.ok()) {
          out[i].status = prepared[i].status;
          continue;
        }
        out[i] = WriteOne(s, prepared[i]);
      }
    };
    size_t workers = std::min(sessions_.size(), n);
    if (workers <= 1) {
      work(*sessions_[0]);
      return out;
    }
    std::vector<std::thread> threads;
    for (size_t k = 1; k < workers; ++k) threads.emplace_back(work, std::ref(*sessions_[k]));
    work(*sessions_[0]);
    for (auto& t : threads) t.join();
    return out;
  }

  Result<CommitResult> Commit(uint64_t, bool) override {
    return CommitResult{true, ""};  // each submit is its own commit
  }

  Result<RecoverResult> Recover(const RunContext&, uint64_t, const std::string&) override {
    return RecoverResult{};  // a web application cannot tell: `exists` decides per record
  }

  Result<CheckResult> Check(const WriteOp& op) override {
    if (!c_.has_exists) return CheckResult{};
    if (sessions_.empty()) return Status::Internal("browser target checked before Open");
    Prepared p = Prepare(op);
    if (!p.status.ok()) return p.status;
    if (Status r = Refusal(); !r.ok()) return r;
    Session& s = *sessions_[0];
    bool refused = false;
    Status ready = s.Ready(&refused);
    if (!ready.ok()) {
      // Like a write: a refused login is not tried again (an account locks).
      if (refused || ready.code() == Status::Code::kInvalid) Refuse(ready);
      return ready;
    }
    return s.Exists(*p.exists);
  }

  Status Close(bool) override {
    sessions_.clear();  // each browser's processes end with it
    return Status::OK();
  }

 private:
  Prepared Prepare(const WriteOp& op) {
    Prepared p;
    p.ref = op.ref;
    if (!op.scope) {
      p.status = Status::Internal("write without a scope");
      return p;
    }
    auto w = settings_.Structure("write")->Evaluate(*op.scope);
    if (!w.ok()) {
      p.status = w.status().Wrap("write");
      return p;
    }
    auto a = ParseActions(*w, settings_, "write");
    if (!a.ok()) {
      p.status = a.status();
      return p;
    }
    p.write = std::move(a).value();
    if (c_.has_exists) {
      auto e = settings_.Structure("exists")->Evaluate(*op.scope);
      if (!e.ok()) {
        p.status = e.status().Wrap("exists");
        return p;
      }
      auto x = ParseExists(*e, settings_);
      if (!x.ok()) {
        p.status = x.status();
        return p;
      }
      p.exists = std::move(x).value();
    }
    return p;
  }

  // One record; a failure that goes to a person comes with the evidence of
  // what the browser showed.
  WriteResult WriteOne(Session& s, const Prepared& p) {
    WriteResult res = Key(s, p);
    if (!res.status.ok() && !res.stop_run) res.evidence = SaveEvidence(s, p);
    return res;
  }

  // Size-bounded: at most kEvidenceFiles files and kEvidenceBytes per target
  // and run; a page's HTML at most kEvidenceHtml.
  static constexpr int kEvidenceFiles = 200;
  static constexpr size_t kEvidenceBytes = size_t{100} << 20;
  static constexpr size_t kEvidenceHtml = size_t{2} << 20;
  std::vector<std::string> SaveEvidence(Session& s, const Prepared& p) {
    if (ctx_.evidence_dir.empty() || p.ref.empty()) return {};
    if (evidence_files_ >= kEvidenceFiles || evidence_bytes_ >= kEvidenceBytes) {
      if (!evidence_full_.exchange(true)) {
        ctx_.log->Warn("No more screenshots of failed records are saved for " + ctx_.target_name +
                       " in this run: its evidence reached " + std::to_string(kEvidenceFiles) +
                       " files or " + std::to_string(kEvidenceBytes >> 20) + " MiB.");
      }
      return {};
    }
    std::error_code ec;
    fs::create_directories(ctx_.evidence_dir, ec);
    if (ec) return {};
    std::string name = p.ref + "-";
    for (char ch : ctx_.target_name) {
      name += std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' ? ch : '_';
    }
    size_t bytes = 0;
    auto saved =
        s.SaveEvidence((fs::path(ctx_.evidence_dir) / name).string(), kEvidenceHtml, &bytes);
    evidence_files_ += static_cast<int>(saved.size());
    evidence_bytes_ += bytes;
    return saved;
  }

  WriteResult Key(Session& s, const Prepared& p) {
    WriteResult res;
    if (Status r = Refusal(); !r.ok()) {
      res.status = r;
      res.stop_run = true;
      return res;
    }
    // The login page before the submit: log in and start the record over.
    for (int attempt = 0;; ++attempt) {
      bool refused = false;
      Status ready = s.Ready(&refused);
      if (!ready.ok()) {
        // A refused login, or a browser that cannot start at all (not
        // installed): no other record would fare better.
        const bool fatal = refused || ready.code() == Status::Code::kInvalid;
        if (fatal) Refuse(ready);
        res.status = ready;
        res.stop_run = fatal;
        return res;
      }
      boost::json::object reply;
      Outcome o = s.Run(p.write, &reply);
      if (o.status.ok() && o.stop == Stop::kNone) {
        res.reply = Value(std::move(reply));
        return res;
      }
      if (o.stop == Stop::kLoggedOut && !o.submitted && attempt < 2) {
        ctx_.log->Info("The session of " + ctx_.target_name +
                       " expired; logging in again and starting the record over.");
        s.LoggedOut();
        continue;
      }
      if (o.status.ok()) o.status = Status::Transient("the login page showed after the submit");
      if (!o.submitted) {
        if (o.stop == Stop::kBrowserGone) {
          s.Drop();
          res.status = Status::Transient(o.status.message());  // a new browser tries again
        } else if (o.stop == Stop::kLoggedOut) {
          res.status = Status::Transient("the session kept expiring: " + o.status.message());
        } else {
          res.status = o.status;
        }
        return res;
      }
      // The submit was made: its outcome is unknown (even a message from the
      // site may come after the record was saved, e.g. an error page).
      return Settle(s, p, o);
    }
  }

  // After a submit whose outcome is unknown: ask the system (`exists`).
  WriteResult Settle(Session& s, const Prepared& p, Outcome& o) {
    WriteResult res;
    if (o.stop == Stop::kBrowserGone) s.Drop();
    if (o.stop == Stop::kLoggedOut) s.LoggedOut();
    const std::string what = o.status.message();
    if (!p.exists) {
      res.in_doubt = true;
      res.status = Status::Permanent(what +
                                     "; the form was submitted, and without `exists` "
                                     "keyonce cannot look whether it arrived");
      return res;
    }
    bool refused = false;
    Status ready = s.Ready(&refused);
    Result<CheckResult> found = ready.ok() ? s.Exists(*p.exists) : Result<CheckResult>(ready);
    if (refused) Refuse(ready);
    if (!found.ok()) {
      res.in_doubt = !refused;
      res.stop_run = refused;
      res.status = Status::Permanent(what +
                                     "; the form was submitted, and looking whether it "
                                     "arrived failed: " +
                                     found.status().message());
      return res;
    }
    if (found->outcome == CheckResult::Outcome::kExists) {
      ctx_.log->Info("A submit to " + ctx_.target_name +
                     " whose answer was lost had arrived; its values were read from the site.");
      res.reply = std::move(found->reply);
      return res;
    }
    if (o.site_said) {
      res.status = o.status;  // the site refused it (and it is not there): a person fixes it
      return res;
    }
    res.status = Status::Transient(what +
                                   "; the submit did not arrive (`exists` does not find "
                                   "it), so it is made again");
    return res;
  }

  Settings settings_;
  Config c_;
  RunContext ctx_;
  std::string base_;
  std::vector<Action> login_;
  std::vector<std::unique_ptr<Session>> sessions_;
  // Why the login was refused (or the browser cannot start): no session tries
  // again in this run (an account locks after a few wrong passwords).
  void Refuse(const Status& why) {
    std::lock_guard<std::mutex> lock(refusal_mu_);
    if (refusal_.ok()) refusal_ = why;
  }
  Status Refusal() {
    std::lock_guard<std::mutex> lock(refusal_mu_);
    return refusal_;
  }
  std::mutex refusal_mu_;
  Status refusal_;
  std::atomic<int> evidence_files_{0};
  std::atomic<size_t> evidence_bytes_{0};
  std::atomic<bool> evidence_full_{false};
};

}  // namespace

namespace {

// What targets and lookups share: the browser, its timeouts, the login and
// the locators of the login page and the site's messages.
Result<Config> CommonConfig(const Settings& s) {
  Config c;
  c.timeout = s.Number("timeout_seconds").value_or(10);
  c.page_timeout = s.Number("page_timeout_seconds").value_or(30);
  if (c.timeout <= 0 || c.page_timeout <= 0) {
    return Status::Invalid("timeout_seconds and page_timeout_seconds must be above 0");
  }
  c.browser.headless = !s.Bool("headed").value_or(false);
  c.browser.accept_language = s.String("language").value_or("da-DK");
  c.browser.chromium = s.String("chromium").value_or("");
  c.browser.chromedriver = s.String("chromedriver").value_or("");
  // The unrendered structures: their shape is checked now (keyonce validate).
  if (const Value* login = s.Raw("login")) {
    auto l = ParseActions(*login, s, "login");
    if (!l.ok()) return l.status();
  }
  for (auto [key, slot] :
       {std::pair{"logged_out", &c.logged_out}, std::pair{"errors", &c.errors}}) {
    if (const Value* v = s.Raw(key)) {
      auto l = ParseLocator(*v, key);
      if (!l.ok()) return l.status();
      *slot = std::move(l).value();
    }
  }
  if (s.Raw("login") && !c.logged_out) {
    return Status::Invalid(
        "with login, say how the login page is recognised: logged_out: "
        "{role: heading, name: Log ind} (or another element only it shows)");
  }
  return c;
}

// A lookup table in a web application: for each key, the `find` actions
// (e.g. a search page), then `found` or `absent`, and `read` into the row.
// One browser, logged in as the target's are; answers are cached per run by
// the engine. A refused login is not tried again in the run (every later key
// gets the same error), so that an account does not lock.
class BrowserLookup : public Lookup {
 public:
  BrowserLookup(Settings settings, Config config)
      : settings_(std::move(settings)), c_(std::move(config)) {}

  Status Open(const RunContext& ctx) override {
    ctx_ = ctx;
    KEYONCE_RETURN_IF_ERROR(RenderSite(settings_, ctx_.scope, &base_, &login_));
    session_ = std::make_unique<Session>(c_, settings_, 1);
    session_->Configure(&ctx_, &base_, &login_);
    return Status::OK();  // the browser starts with the first key asked for
  }

  Result<std::optional<Record>> Find(const Value& key) override {
    if (!session_) return Status::Internal("browser lookup asked before Open");
    if (!refusal_.ok()) return refusal_;
    Scope scope = ctx_.scope;
    scope.key = &key;
    auto f = settings_.Structure("find")->Evaluate(scope);
    if (!f.ok()) return f.status().Wrap("find");
    auto check = ParseExists(*f, settings_, "find");
    if (!check.ok()) return check.status();
    bool refused = false;
    Status ready = session_->Ready(&refused);
    if (!ready.ok()) {
      if (refused || ready.code() == Status::Code::kInvalid) {
        refusal_ = Status::Permanent(ready.message());
        return refusal_;
      }
      return ready;
    }
    auto r = session_->Exists(*check);
    if (!r.ok()) return r.status();
    if (r->outcome != CheckResult::Outcome::kExists) return std::optional<Record>();
    Record row = r->reply.is_object() ? r->reply.as_object() : Record();
    return std::optional<Record>(std::move(row));
  }

 private:
  Settings settings_;
  Config c_;
  RunContext ctx_;
  std::string base_;
  std::vector<Action> login_;
  std::unique_ptr<Session> session_;
  Status refusal_;
};

}  // namespace

Result<std::unique_ptr<Target>> MakeBrowserTarget(const Settings& s) {
  auto common = CommonConfig(s);
  if (!common.ok()) return common.status();
  Config c = std::move(common).value();
  c.sessions = static_cast<int>(s.Int("sessions").value_or(1));
  if (c.sessions < 1 || c.sessions > 8) {
    return Status::Invalid("sessions must be between 1 and 8 (browsers side by side)");
  }
  auto write = ParseActions(*s.Raw("write"), s, "write");
  if (!write.ok()) return write.status();
  int submits = 0;
  for (const auto& a : *write) submits += a.submits ? 1 : 0;
  if (submits != 1) {
    return Status::Invalid(
        "write needs exactly one click with `submits: true`: the click that sends the record "
        "(keyonce does everything before it again when needed, and asks `exists` after it)");
  }
  if (const Value* exists = s.Raw("exists")) {
    auto e = ParseExists(*exists, s);
    if (!e.ok()) return e.status();
    c.has_exists = true;
  }
  return std::unique_ptr<Target>(new BrowserTarget(s, std::move(c)));
}

Result<std::unique_ptr<Lookup>> MakeBrowserLookup(const Settings& s) {
  auto common = CommonConfig(s);
  if (!common.ok()) return common.status();
  auto find = ParseExists(*s.Raw("find"), s, "find");
  if (!find.ok()) return find.status();
  return std::unique_ptr<Lookup>(new BrowserLookup(s, std::move(common).value()));
}

}  // namespace keyonce::connectors::browser
