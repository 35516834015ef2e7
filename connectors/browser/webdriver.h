// A W3C WebDriver client (https://www.w3.org/TR/webdriver2/): one session
// with chromedriver over HTTP + JSON, blocking calls.
//
//   auto driver = WebDriver::NewSession(process.driver_url(), process.session_options());
//   KEYONCE_RETURN_IF_ERROR((*driver)->Navigate(url));
//   auto field = (*driver)->FindElement(By::Css("#cpr"));
//   if (!field.ok() && (*driver)->error() == WebDriverError::kNoSuchElement) ...
//   (*driver)->SendKeys(*field, value);
//
// Errors. Every failed call returns a Status and leaves the W3C error code of
// that call in error() (kNone after a call that succeeded), so callers can
// branch on "no such element", "stale element reference", "unexpected alert
// open" and the like. Status codes:
//   kTransient  the driver or browser is gone or hung (connection refused or
//               reset, the call's time bound ran out, "invalid session id",
//               "session not created", "unknown error" such as a crashed tab
//               or a page that failed to load), or a page load / script
//               timed out ("timeout", "script timeout"): a new browser or a
//               later attempt may succeed;
//   kInvalid    the call itself is wrong ("invalid argument", "invalid
//               selector", "unknown command", "unsupported operation");
//   kPermanent  the page is not as expected: every other W3C error (no such
//               element, stale element reference, element not interactable,
//               element click intercepted, no such frame/window/alert,
//               unexpected alert open, javascript error, ...).
// Messages read "finding element: no such element: Unable to locate
// element" - the command and the driver's first line, cut before the first
// quote, brace or angle bracket (where chromedriver echoes selectors, page
// HTML, alert texts and script values), CPR numbers masked, at most 200
// characters. They never hold text sent to an element, script arguments, a
// URL navigated to, or anything read from the page. This class logs nothing.
//
// Time bounds: every call is one HTTP request with a time bound:
// command_timeout_seconds for most calls; for calls that may load a page
// (Navigate, Back, Forward, Refresh, Click, SendKeys, PressKeys, the
// Actions) the page-load timeout plus command_timeout_seconds; for
// ExecuteScript the script timeout plus command_timeout_seconds; NewSession
// has start_timeout_seconds. A call that runs out is kTransient with
// error() == kCallTimedOut; the session may then be unusable.
//
// Threading: not thread-safe; one session per thread (sessions on different
// WebDriver objects may run in different threads at once).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyonce/status.h"

namespace keyonce::connectors::net {
class HttpClient;
}

namespace keyonce::connectors::browser {

// The W3C error codes (spec "Errors"), and kCallTimedOut / kConnectionLost
// / kBadReply for a driver that did not answer, could not be reached, or
// answered what is not WebDriver JSON.
enum class WebDriverError {
  kNone,
  kElementClickIntercepted,
  kElementNotInteractable,
  kInsecureCertificate,
  kInvalidArgument,
  kInvalidCookieDomain,
  kInvalidElementState,
  kInvalidSelector,
  kInvalidSessionId,
  kJavascriptError,
  kMoveTargetOutOfBounds,
  kNoSuchAlert,
  kNoSuchCookie,
  kNoSuchElement,
  kNoSuchFrame,
  kNoSuchWindow,
  kNoSuchShadowRoot,
  kScriptTimeout,
  kSessionNotCreated,
  kStaleElementReference,
  kDetachedShadowRoot,
  kTimeout,
  kUnableToSetCookie,
  kUnableToCaptureScreen,
  kUnexpectedAlertOpen,
  kUnknownCommand,
  kUnknownError,
  kUnknownMethod,
  kUnsupportedOperation,
  kCallTimedOut,
  kConnectionLost,
  kBadReply,
};

// "no such element", ...; "call timed out", "connection lost", "bad reply".
const char* ErrorName(WebDriverError error);
// The enum of a W3C error code string; kUnknownError for codes not in the spec.
WebDriverError ErrorFromCode(std::string_view code);
// The Status code a WebDriver error maps to (see the contract above).
Status::Code StatusCodeOf(WebDriverError error);

// A web element reference, valid in the browsing context it was found in
// until the page replaces it ("stale element reference").
struct Element {
  std::string id;
  bool operator==(const Element&) const = default;
};

// The JSON form of an element, for script arguments:
// {"element-6066-11e4-a52e-4f735466cecf": id}.
boost::json::value ElementRef(const Element& element);
// The element a script returned, or nullopt when `v` is not a reference.
std::optional<Element> AsElement(const boost::json::value& v);

// A locator strategy and its value.
struct By {
  std::string strategy;  // "css selector" or "xpath" (or "link text", "tag name", ...)
  std::string value;
  static By Css(std::string selector) { return {"css selector", std::move(selector)}; }
  static By XPath(std::string expr) { return {"xpath", std::move(expr)}; }
};

struct Rect {
  double x = 0, y = 0, width = 0, height = 0;
};

struct Timeouts {
  double script_seconds = 30;     // ExecuteScript
  double page_load_seconds = 60;  // Navigate, and clicks that load a page
  double implicit_seconds = 0;    // finding elements waits this long (0: callers wait themselves)
};

// What NewSession asks for (BrowserProcess::session_options fills binary,
// args and prefs).
struct SessionOptions {
  std::string binary;                         // goog:chromeOptions.binary
  std::vector<std::string> args;              // goog:chromeOptions.args
  boost::json::object prefs;                  // goog:chromeOptions.prefs
  std::string page_load_strategy = "normal";  // "normal", "eager" or "none"
  Timeouts timeouts;
  double start_timeout_seconds = 60;    // NewSession (chromium starting)
  double command_timeout_seconds = 30;  // added to the page-load and script timeouts
};

// Special keys (W3C "Keyboard actions" code points), for SendKeys and PressKeys.
namespace keys {
inline constexpr std::string_view kNull = "\xEE\x80\x80";        // U+E000
inline constexpr std::string_view kBackspace = "\xEE\x80\x83";   // U+E003
inline constexpr std::string_view kTab = "\xEE\x80\x84";         // U+E004
inline constexpr std::string_view kEnter = "\xEE\x80\x87";       // U+E007
inline constexpr std::string_view kShift = "\xEE\x80\x88";       // U+E008
inline constexpr std::string_view kControl = "\xEE\x80\x89";     // U+E009
inline constexpr std::string_view kAlt = "\xEE\x80\x8A";         // U+E00A
inline constexpr std::string_view kEscape = "\xEE\x80\x8C";      // U+E00C
inline constexpr std::string_view kSpace = "\xEE\x80\x8D";       // U+E00D
inline constexpr std::string_view kPageUp = "\xEE\x80\x8E";      // U+E00E
inline constexpr std::string_view kPageDown = "\xEE\x80\x8F";    // U+E00F
inline constexpr std::string_view kEnd = "\xEE\x80\x90";         // U+E010
inline constexpr std::string_view kHome = "\xEE\x80\x91";        // U+E011
inline constexpr std::string_view kArrowLeft = "\xEE\x80\x92";   // U+E012
inline constexpr std::string_view kArrowUp = "\xEE\x80\x93";     // U+E013
inline constexpr std::string_view kArrowRight = "\xEE\x80\x94";  // U+E014
inline constexpr std::string_view kArrowDown = "\xEE\x80\x95";   // U+E015
inline constexpr std::string_view kDelete = "\xEE\x80\x97";      // U+E017
// The key named `name` as a recipe writes it (case-insensitive): Enter,
// Return, Tab, Escape (Esc), Space, Backspace, Delete, Home, End, PageUp,
// PageDown, ArrowUp/Down/Left/Right (Up, Down, Left, Right), Shift, Control
// (Ctrl), Alt, F1..F12; or a single character as itself. nullopt otherwise.
std::optional<std::string> ByName(std::string_view name);
}  // namespace keys

// One WebDriver session. See the contract at the top of this file.
class WebDriver {
 public:
  // Opens a session on the driver at `driver_url` ("http://127.0.0.1:PORT")
  // with chromium started as `options` say, unhandledPromptBehavior
  // "ignore" (dialogs stay open until the caller handles them) and the
  // timeouts set. kTransient when the driver cannot be reached or chromium
  // does not start (error() tells which).
  static Result<std::unique_ptr<WebDriver>> NewSession(const std::string& driver_url,
                                                       const SessionOptions& options);

  // DeleteSession() when the session is still open (bounded by
  // command_timeout_seconds; errors ignored).
  ~WebDriver();
  WebDriver(const WebDriver&) = delete;
  WebDriver& operator=(const WebDriver&) = delete;

  // Ends the session: chromedriver closes chromium. Idempotent.
  Status DeleteSession();

  const std::string& session_id() const { return session_id_; }
  // The W3C error of the last call, kNone when it succeeded.
  WebDriverError error() const { return error_; }
  // The capabilities the driver answered NewSession with.
  const boost::json::object& capabilities() const { return capabilities_; }

  // ---- timeouts
  Status SetTimeouts(const Timeouts& timeouts);
  const Timeouts& timeouts() const { return timeouts_; }

  // ---- navigation (waits for the page load strategy's readiness)
  Status Navigate(const std::string& url);
  Result<std::string> CurrentUrl();
  Result<std::string> Title();
  Status Back();
  Status Forward();
  Status Refresh();

  // ---- elements. Finding returns at once (unless implicit_seconds is set):
  // kNoSuchElement when nothing matches; FindElements returns an empty list.
  Result<Element> FindElement(const By& by);
  Result<std::vector<Element>> FindElements(const By& by);
  Result<Element> FindElement(const Element& from, const By& by);
  Result<std::vector<Element>> FindElements(const Element& from, const By& by);
  Result<Element> ActiveElement();

  Status Click(const Element& element);
  Status Clear(const Element& element);
  // Types `text` into the element (special keys from keys:: allowed). The
  // text never appears in a message.
  Status SendKeys(const Element& element, std::string_view text);
  // Sets the files of an <input type=file> (absolute paths of existing
  // files). kInvalid when a path is not absolute or no such file exists.
  Status UploadFiles(const Element& element, const std::vector<std::string>& paths);

  Result<std::string> Text(const Element& element);  // rendered text
  Result<std::string> TagName(const Element& element);
  // The DOM property (e.g. "value", "checked") as JSON (null when unset).
  Result<boost::json::value> Property(const Element& element, const std::string& name);
  // The attribute as in the HTML, nullopt when absent.
  Result<std::optional<std::string>> Attribute(const Element& element, const std::string& name);
  Result<Rect> ElementRect(const Element& element);
  Result<bool> Enabled(const Element& element);
  Result<bool> Selected(const Element& element);  // checkboxes, radios, options
  // Whether a person would see it: chromedriver's displayedness endpoint,
  // or a script checking style and size when the endpoint is missing.
  Result<bool> Displayed(const Element& element);

  // ---- scripts. `script` is a function body ("return arguments[0].value");
  // args and the result are JSON with elements as ElementRef objects (use
  // AsElement on the result). Script errors: kJavascriptError.
  Result<boost::json::value> ExecuteScript(const std::string& script,
                                           const boost::json::array& args = {});
  // The same for a script that answers later: it calls the function passed
  // as its last argument with the result. Script errors: kJavascriptError;
  // a page that goes away before the answer: kScriptTimeout at once.
  Result<boost::json::value> ExecuteAsyncScript(const std::string& script,
                                                const boost::json::array& args = {});

  // ---- frames
  Status SwitchToFrame(int index);
  Status SwitchToFrame(const Element& frame);  // an <iframe> or <frame>
  Status SwitchToParentFrame();
  Status SwitchToTopFrame();

  // ---- windows and tabs
  Result<std::string> WindowHandle();
  Result<std::vector<std::string>> WindowHandles();
  Status SwitchToWindow(const std::string& handle);
  // A new tab (or window); returns its handle, without switching to it.
  Result<std::string> NewWindow(bool tab = true);
  // Closes the current window; returns the handles left. Switch to one of
  // them before the next command.
  Result<std::vector<std::string>> CloseWindow();
  Status SetWindowSize(int width, int height);

  // ---- dialogs (alert, confirm, prompt)
  // The open dialog's text, nullopt when no dialog is open (a normal
  // answer, error() kNoSuchAlert). The text may hold personal data: never
  // log it.
  Result<std::optional<std::string>> AlertText();
  // kPermanent with error() kNoSuchAlert when no dialog is open.
  Status AcceptAlert();
  Status DismissAlert();
  Status SendAlertText(std::string_view text);  // a prompt()'s input

  // ---- page
  // PNG bytes: the whole page when chromium can (capture beyond the
  // viewport, at most max_height CSS pixels tall), else the viewport.
  Result<std::string> Screenshot(int max_height = 16384);
  Result<std::string> ViewportScreenshot();
  Result<std::string> PageSource();

  // ---- keyboard (Actions API, to whatever has the focus)
  // Presses and releases each key of `keys` in turn (characters or keys::).
  Status PressKeys(std::string_view keys);
  // Presses all `keys` down in order and releases them in reverse (a
  // chord such as {keys::kControl, "a"}).
  Status PressChord(const std::vector<std::string>& keys);

  // Low level: one command ("GET", "/url" under the session, or a path
  // from "/" such as "/status" with `absolute`); the reply's "value".
  // `context` names the command in messages ("finding element").
  Result<boost::json::value> Command(std::string_view method, const std::string& path,
                                     const boost::json::value* body, std::string_view context,
                                     double timeout_seconds = 0, bool absolute = false);

 private:
  WebDriver(std::string driver_url, const SessionOptions& options);
  Result<boost::json::value> ElementCommand(std::string_view method, const Element& element,
                                            const std::string& sub, const boost::json::value* body,
                                            std::string_view context, double timeout = 0);
  Result<Element> ToElement(Result<boost::json::value> v, std::string_view context);
  Result<std::vector<Element>> ToElements(Result<boost::json::value> v, std::string_view context);
  Status KeyActions(const boost::json::array& actions, std::string_view context);
  net::HttpClient& Client(double timeout_seconds);
  double LoadBound() const;

  std::string driver_url_;
  std::string session_id_;
  SessionOptions options_;
  Timeouts timeouts_;
  boost::json::object capabilities_;
  WebDriverError error_ = WebDriverError::kNone;
  // One client per time bound (a libcurl transfer's timeout is per handle).
  std::map<int64_t, std::unique_ptr<net::HttpClient>> clients_;
};

}  // namespace keyonce::connectors::browser
