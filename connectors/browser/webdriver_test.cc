// The WebDriver client and the browser processes against real chromium +
// chromedriver (Debian's chromium, chromium-driver) and a page server on
// loopback (tests/servers/browser/pages.js). The WebDriver cases share one
// browser per test process; the BrowserProcess cases start their own and
// check that nothing of them is left: no process (by /proc), no folder.

#include "connectors/browser/webdriver.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "connectors/browser/browser_process.h"
#include "tests/support/http_servers.h"
#include "tests/support/servers.h"

namespace keyonce::connectors::browser {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing_util::FindProgram;
using testing_util::FreePort;
using testing_util::ServerProcess;
using testing_util::TestsDir;
using testing_util::http::ScratchDir;
using Clock = std::chrono::steady_clock;

// Waits until `cond` holds (polling, no fixed sleep); false after `timeout`.
bool WaitUntil(const std::function<bool()>& cond,
               std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// True when `pid` runs (exists and is not a zombie).
bool Running(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// `pid` and every process below it, from /proc/PID/task/*/children.
std::set<pid_t> Tree(pid_t pid) {
  std::set<pid_t> out = {pid};
  std::vector<pid_t> todo = {pid};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    std::error_code ec;
    for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(p) + "/task", ec)) {
      std::stringstream ss(ReadFile(t.path() / "children"));
      for (pid_t c; ss >> c;) {
        if (out.insert(c).second) todo.push_back(c);
      }
    }
  }
  return out;
}

// Running processes whose command line mentions `text` (a browser's folder).
std::vector<pid_t> ProcessesMentioning(const std::string& text) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string cmd = ReadFile(e.path() / "cmdline");
    if (cmd.find(text) != std::string::npos && Running(std::stoi(name))) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

std::vector<pid_t> StillRunning(const std::set<pid_t>& pids) {
  std::vector<pid_t> out;
  for (pid_t p : pids) {
    if (Running(p)) out.push_back(p);
  }
  return out;
}

// "Name:   value kB" from /proc/PID/status or smaps_rollup, in kB.
long KbField(const fs::path& file, const std::string& name) {
  std::stringstream ss(ReadFile(file));
  for (std::string line; std::getline(ss, line);) {
    if (line.starts_with(name + ":")) return std::atol(line.c_str() + name.size() + 1);
  }
  return -1;
}

// Width and height from a PNG's IHDR.
bool PngSize(const std::string& png, int* w, int* h) {
  if (png.size() < 24 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return false;
  auto be = [&](size_t at) {
    return (static_cast<unsigned char>(png[at]) << 24) |
           (static_cast<unsigned char>(png[at + 1]) << 16) |
           (static_cast<unsigned char>(png[at + 2]) << 8) | static_cast<unsigned char>(png[at + 3]);
  };
  *w = be(16);
  *h = be(20);
  return true;
}

// ------------------------------------------------------------ no browser needed

TEST(WebDriverErrors, MapW3cCodesBothWaysAndClassifyThem) {
  EXPECT_EQ(ErrorFromCode("no such element"), WebDriverError::kNoSuchElement);
  EXPECT_EQ(ErrorFromCode("stale element reference"), WebDriverError::kStaleElementReference);
  EXPECT_EQ(ErrorFromCode("unexpected alert open"), WebDriverError::kUnexpectedAlertOpen);
  EXPECT_EQ(ErrorFromCode("something new"), WebDriverError::kUnknownError);
  EXPECT_STREQ(ErrorName(WebDriverError::kElementNotInteractable), "element not interactable");
  EXPECT_EQ(StatusCodeOf(WebDriverError::kNoSuchElement), Status::Code::kPermanent);
  EXPECT_EQ(StatusCodeOf(WebDriverError::kInvalidSessionId), Status::Code::kTransient);
  EXPECT_EQ(StatusCodeOf(WebDriverError::kConnectionLost), Status::Code::kTransient);
  EXPECT_EQ(StatusCodeOf(WebDriverError::kTimeout), Status::Code::kTransient);
  EXPECT_EQ(StatusCodeOf(WebDriverError::kInvalidSelector), Status::Code::kInvalid);
}

TEST(WebDriverKeys, NamesAsRecipesWriteThem) {
  EXPECT_EQ(keys::ByName("Enter"), std::string(keys::kEnter));
  EXPECT_EQ(keys::ByName("escape"), std::string(keys::kEscape));
  EXPECT_EQ(keys::ByName("Page_Down"), std::string(keys::kPageDown));
  EXPECT_EQ(keys::ByName("F5"), std::string("\xEE\x80\xB5"));  // U+E035
  EXPECT_EQ(keys::ByName("ø"), std::string("ø"));
  EXPECT_FALSE(keys::ByName("Hyper").has_value());
}

TEST(WebDriverSession, UnreachableDriverIsTransient) {
  SessionOptions o;
  o.start_timeout_seconds = 5;
  auto d = WebDriver::NewSession("http://127.0.0.1:" + std::to_string(FreePort()), o);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().IsTransient()) << d.status().ToString();
}

// ------------------------------------------------------------ one shared browser

class WebDriverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new ScratchDir();
    server_ = new ServerProcess();
    downloads_ = scratch_->path() / "downloads";
    fs::create_directories(downloads_);
    int port = FreePort();
    base_ = "http://127.0.0.1:" + std::to_string(port);
    std::string why;
    if (!server_->StartAndWait(
            {"node", (TestsDir() / "servers/browser/pages.js").string(), std::to_string(port)},
            port, scratch_->path() / "pages.log", &why)) {
      setup_error_ = "starting the page server: " + why;
      return;
    }
    BrowserOptions o;
    o.download_dir = downloads_;
    auto b = Browser::Launch(o);
    if (!b.ok()) {
      setup_error_ = b.status().ToString();
      return;
    }
    browser_ = std::move(*b);
  }
  static void TearDownTestSuite() {
    browser_.reset();
    delete server_;
    delete scratch_;
  }

  void SetUp() override {
    ASSERT_TRUE(browser_) << setup_error_;
    d_ = &browser_->driver();
    // What an earlier case may have left: a dialog, a frame, a second window.
    (void)d_->DismissAlert();
    auto handles = d_->WindowHandles();
    ASSERT_TRUE(handles.ok()) << handles.status().ToString();
    for (size_t i = 1; i < handles->size(); ++i) {
      ASSERT_TRUE(d_->SwitchToWindow((*handles)[i]).ok());
      (void)d_->CloseWindow();
    }
    ASSERT_TRUE(d_->SwitchToWindow((*handles)[0]).ok());
    ASSERT_TRUE(d_->SwitchToTopFrame().ok());
  }

  void Open(const std::string& path) {
    Status st = d_->Navigate(base_ + path);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  Element Find(const std::string& css) {
    auto e = d_->FindElement(By::Css(css));
    EXPECT_TRUE(e.ok()) << css << ": " << e.status().ToString();
    return e.ok() ? *e : Element{};
  }
  std::string TextOf(const std::string& css) {
    auto e = d_->FindElement(By::Css(css));
    if (!e.ok()) return "<" + e.status().ToString() + ">";
    auto t = d_->Text(*e);
    return t.ok() ? *t : "<" + t.status().ToString() + ">";
  }
  bool TitleIs(const std::string& title) {
    auto t = d_->Title();
    return t.ok() && *t == title;
  }

  static inline ScratchDir* scratch_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  static inline std::unique_ptr<Browser> browser_;
  static inline std::string setup_error_;
  static inline std::string base_;
  static inline fs::path downloads_;
  WebDriver* d_ = nullptr;
};

TEST_F(WebDriverTest, NavigatesAndReadsUrlTitleAndSource) {
  Open("/form");
  EXPECT_EQ(*d_->CurrentUrl(), base_ + "/form");
  EXPECT_EQ(*d_->Title(), "Ny sag");
  auto src = d_->PageSource();
  ASSERT_TRUE(src.ok());
  EXPECT_NE(src->find("id=\"preview\""), std::string::npos);
  auto lang = d_->ExecuteScript("return navigator.language");
  ASSERT_TRUE(lang.ok());
  EXPECT_EQ(lang->as_string(), "da-DK");
}

TEST_F(WebDriverTest, FindsByCssAndXPathAndWithinAnElement) {
  Open("/form");
  auto by_xpath = d_->FindElement(By::XPath("//label[normalize-space()='Navn']"));
  ASSERT_TRUE(by_xpath.ok()) << by_xpath.status().ToString();
  EXPECT_EQ(*d_->Attribute(*by_xpath, "for"), "name");
  Element select = Find("#kind");
  auto options = d_->FindElements(select, By::Css("option"));
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->size(), 3u);
  auto none = d_->FindElements(By::Css(".nothing-here"));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto missing = d_->FindElement(By::Css("#sagsnummer-0101901234"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(d_->error(), WebDriverError::kNoSuchElement);
  EXPECT_EQ(missing.status().code(), Status::Code::kPermanent);
  // The selector (which may carry a record's value) is not echoed.
  EXPECT_EQ(missing.status().message().find("0101901234"), std::string::npos)
      << missing.status().message();
  EXPECT_NE(missing.status().message().find("no such element"), std::string::npos);

  auto bad = d_->FindElement(By::XPath("//*["));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(d_->error(), WebDriverError::kInvalidSelector);
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalid);
}

TEST_F(WebDriverTest, TypesReadsBackAndKeepsTypedTextOutOfMessages) {
  Open("/form");
  Element name = Find("#name");
  const std::string secret = "Åse Østergård 010203-4444";
  ASSERT_TRUE(d_->SendKeys(name, secret).ok());
  EXPECT_EQ(d_->Property(name, "value")->as_string(), secret);
  ASSERT_TRUE(d_->Clear(name).ok());
  EXPECT_EQ(d_->Property(name, "value")->as_string(), "");
  EXPECT_TRUE(*d_->Enabled(name));
  EXPECT_TRUE(*d_->Displayed(name));
  auto rect = d_->ElementRect(name);
  ASSERT_TRUE(rect.ok());
  EXPECT_GT(rect->width, 0);

  Element disabled = Find("#disabled-field");
  EXPECT_FALSE(*d_->Enabled(disabled));
  Status st = d_->SendKeys(Find("#hidden-field"), secret);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(d_->error(), WebDriverError::kElementNotInteractable) << st.ToString();
  EXPECT_FALSE(*d_->Displayed(Find("#hidden-field")));
  for (const std::string& part : {std::string("Østergård"), std::string("4444"), secret}) {
    EXPECT_EQ(st.message().find(part), std::string::npos) << st.message();
  }
}

TEST_F(WebDriverTest, SelectCheckboxAndButtonsChangeThePage) {
  Open("/form");
  ASSERT_TRUE(d_->SendKeys(Find("#name"), "Jens Hansen").ok());
  auto option =
      d_->FindElement(By::XPath("//select[@id='kind']/option[normalize-space()='Flytning']"));
  ASSERT_TRUE(option.ok());
  ASSERT_TRUE(d_->Click(*option).ok());
  EXPECT_TRUE(*d_->Selected(*option));
  Element agree = Find("#agree");
  EXPECT_FALSE(*d_->Selected(agree));
  ASSERT_TRUE(d_->Click(agree).ok());
  EXPECT_TRUE(*d_->Selected(agree));
  EXPECT_EQ(d_->Property(agree, "checked")->as_bool(), true);

  ASSERT_TRUE(d_->Click(Find("#preview")).ok());
  EXPECT_EQ(TextOf("#out"), "Navn: Jens Hansen; type: flytning; samtykke: true");

  ASSERT_TRUE(d_->Click(Find("#submit")).ok());
  ASSERT_TRUE(WaitUntil([&] { return TitleIs("Kvittering"); }));
  EXPECT_EQ(TextOf("#r-name"), "Jens Hansen");
  EXPECT_EQ(TextOf("#r-kind"), "flytning");
  EXPECT_EQ(TextOf("#r-agree"), "ja");
  ASSERT_TRUE(d_->Back().ok());
  EXPECT_TRUE(WaitUntil([&] { return TitleIs("Ny sag"); }));
}

TEST_F(WebDriverTest, KeysThroughTheActionsApi) {
  Open("/form");
  ASSERT_TRUE(d_->Click(Find("#name")).ok());
  ASSERT_TRUE(d_->PressKeys("Eva").ok());
  ASSERT_TRUE(d_->PressKeys(keys::kTab).ok());
  auto active = d_->ActiveElement();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(*d_->Attribute(*active, "id"), "kind");
  ASSERT_TRUE(d_->PressKeys(*keys::ByName("Escape")).ok());
  EXPECT_EQ(TextOf("#keys"), "Tab Escape");
  ASSERT_TRUE(d_->Click(Find("#name")).ok());
  ASSERT_TRUE(d_->PressChord({std::string(keys::kControl), "a"}).ok());
  ASSERT_TRUE(d_->PressKeys("Eg").ok());
  ASSERT_TRUE(d_->PressKeys(keys::kEnter).ok());  // submits the form
  ASSERT_TRUE(WaitUntil([&] { return TitleIs("Kvittering"); }));
  EXPECT_EQ(TextOf("#r-name"), "Eg");
}

TEST_F(WebDriverTest, UploadsAFileTheServerReceives) {
  fs::path file = scratch_->path() / "bilag æøå.txt";
  std::ofstream(file) << "Bilag til sagen\nlinje 2";
  Open("/upload");
  Element input = Find("#doc");
  ASSERT_TRUE(d_->UploadFiles(input, {file.string()}).ok());
  ASSERT_TRUE(d_->Click(Find("#send")).ok());
  ASSERT_TRUE(WaitUntil([&] { return TitleIs("Modtaget"); }));
  EXPECT_TRUE(TextOf("#received").starts_with("bilag æøå.txt 23 ")) << TextOf("#received");
  EXPECT_EQ(TextOf("#content"), "Bilag til sagen\nlinje 2");

  Open("/upload");
  Status st = d_->UploadFiles(Find("#doc"), {"relative.txt"});
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  st = d_->UploadFiles(Find("#doc"), {(scratch_->path() / "missing-0101901234.pdf").string()});
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_EQ(st.message().find("0101901234"), std::string::npos) << st.message();
}

TEST_F(WebDriverTest, SwitchesIntoAnIframeAndBack) {
  Open("/frames");
  EXPECT_EQ(TextOf("#where"), "yderst");
  ASSERT_TRUE(d_->SwitchToFrame(Find("#inner")).ok());
  EXPECT_EQ(TextOf("#where"), "i rammen");
  ASSERT_TRUE(d_->SendKeys(Find("#inner-field"), "inde").ok());
  ASSERT_TRUE(d_->SwitchToParentFrame().ok());
  EXPECT_EQ(TextOf("#where"), "yderst");
  ASSERT_TRUE(d_->SwitchToFrame(0).ok());
  EXPECT_EQ(d_->Property(Find("#inner-field"), "value")->as_string(), "inde");
  ASSERT_TRUE(d_->SwitchToTopFrame().ok());
  EXPECT_EQ(TextOf("#where"), "yderst");
  Status st = d_->SwitchToFrame(5);
  EXPECT_EQ(d_->error(), WebDriverError::kNoSuchFrame) << st.ToString();
}

TEST_F(WebDriverTest, FollowsASecondWindowOpenedByTargetBlank) {
  Open("/windows");
  auto first = d_->WindowHandle();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(d_->Click(Find("#open")).ok());
  std::vector<std::string> handles;
  ASSERT_TRUE(WaitUntil([&] {
    auto h = d_->WindowHandles();
    if (h.ok()) handles = *h;
    return handles.size() == 2;
  }));
  std::string second = handles[0] == *first ? handles[1] : handles[0];
  ASSERT_TRUE(d_->SwitchToWindow(second).ok());
  ASSERT_TRUE(WaitUntil([&] { return TitleIs("Kvittering i nyt vindue"); }));
  EXPECT_EQ(TextOf("#case"), "Sagsnummer: S-2026-0042");
  auto left = d_->CloseWindow();
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, std::vector<std::string>{*first});
  ASSERT_TRUE(d_->SwitchToWindow(*first).ok());
  EXPECT_TRUE(TitleIs("Vinduer"));

  auto tab = d_->NewWindow(true);
  ASSERT_TRUE(tab.ok());
  ASSERT_TRUE(d_->SwitchToWindow(*tab).ok());
  Open("/form");
  EXPECT_TRUE(TitleIs("Ny sag"));
  ASSERT_TRUE(d_->CloseWindow().ok());
  Status st = d_->Title().status();
  EXPECT_EQ(d_->error(), WebDriverError::kNoSuchWindow) << st.ToString();
  ASSERT_TRUE(d_->SwitchToWindow(*first).ok());
}

TEST_F(WebDriverTest, AlertConfirmAndPromptAreTheCallersToHandle) {
  Open("/dialogs");
  auto none = d_->AlertText();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(d_->error(), WebDriverError::kNoSuchAlert);
  Status st = d_->AcceptAlert();
  EXPECT_EQ(d_->error(), WebDriverError::kNoSuchAlert);
  EXPECT_EQ(st.code(), Status::Code::kPermanent);

  ASSERT_TRUE(d_->Click(Find("#alert")).ok());
  auto text = d_->AlertText();
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->value_or(""), "Gemt");
  // Left open (unhandledPromptBehavior: ignore), it blocks other commands;
  // the message does not quote the dialog's text.
  auto blocked = d_->FindElement(By::Css("#result"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(d_->error(), WebDriverError::kUnexpectedAlertOpen) << blocked.status().ToString();
  EXPECT_EQ(blocked.status().message().find("Gemt"), std::string::npos);
  ASSERT_TRUE(d_->AcceptAlert().ok());
  EXPECT_EQ(TextOf("#result"), "alert lukket");

  ASSERT_TRUE(d_->Click(Find("#confirm")).ok());
  EXPECT_EQ(d_->AlertText()->value_or(""), "Slet sagen?");
  ASSERT_TRUE(d_->DismissAlert().ok());
  EXPECT_EQ(TextOf("#result"), "nej");
  ASSERT_TRUE(d_->Click(Find("#confirm")).ok());
  ASSERT_TRUE(d_->AcceptAlert().ok());
  EXPECT_EQ(TextOf("#result"), "ja");

  ASSERT_TRUE(d_->Click(Find("#prompt")).ok());
  ASSERT_TRUE(d_->SendAlertText("flyttet").ok());
  ASSERT_TRUE(d_->AcceptAlert().ok());
  EXPECT_EQ(TextOf("#result"), "svar: flyttet");
}

TEST_F(WebDriverTest, DownloadLandsInTheDownloadFolder) {
  Open("/download");
  ASSERT_TRUE(d_->Click(Find("#dl")).ok());
  fs::path file = downloads_ / "rapport.csv";
  const std::string expected = "id;navn\r\n1;Åse\r\n";
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(file) == expected; })) << "downloads: " << [&] {
    std::string s;
    for (const auto& e : fs::directory_iterator(downloads_))
      s += e.path().filename().string() + " ";
    return s;
  }();
}

TEST_F(WebDriverTest, ScreenshotIsAPngOfTheWholePage) {
  Open("/tall");
  auto full = d_->Screenshot();
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  int w = 0, h = 0;
  ASSERT_TRUE(PngSize(*full, &w, &h));
  auto view = d_->ViewportScreenshot();
  ASSERT_TRUE(view.ok());
  int vw = 0, vh = 0;
  ASSERT_TRUE(PngSize(*view, &vw, &vh));
  EXPECT_GE(h, 3000);
  EXPECT_LT(vh, 1200);
  EXPECT_GT(vw, 0);
  // Capturing beyond the viewport leaves the viewport as it was.
  auto inner = d_->ExecuteScript("return window.innerHeight");
  ASSERT_TRUE(inner.ok());
  EXPECT_LT(inner->to_number<double>(), 1200);
}

TEST_F(WebDriverTest, StaleElementReferenceAfterTheDomIsRebuilt) {
  Open("/rebuild");
  auto items = d_->FindElements(By::Css("li.item"));
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ(*d_->Text((*items)[0]), "Første");
  ASSERT_TRUE(d_->Click(Find("#rebuild")).ok());
  auto old = d_->Text((*items)[0]);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(d_->error(), WebDriverError::kStaleElementReference) << old.status().ToString();
  EXPECT_EQ(old.status().code(), Status::Code::kPermanent);
  EXPECT_EQ(TextOf("li.item"), "Ny første");
}

TEST_F(WebDriverTest, WaitsForAPageThatJavaScriptBuilds) {
  Open("/rebuild");
  ASSERT_TRUE(WaitUntil([&] { return d_->FindElement(By::Css("#ready")).ok(); }));
  EXPECT_EQ(TextOf("#ready"), "Klar");
}

TEST_F(WebDriverTest, ScriptsTakeAndReturnElements) {
  Open("/rebuild");
  auto list = d_->ExecuteScript("return document.querySelectorAll('li.item')");
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(list->is_array());
  ASSERT_EQ(list->as_array().size(), 2u);
  auto second = AsElement(list->as_array()[1]);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*d_->Text(*second), "Anden");
  auto joined = d_->ExecuteScript("return arguments[0].textContent + arguments[1].n",
                                  json::array{ElementRef(*second), json::object{{"n", 2}}});
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(joined->as_string(), "Anden2");
  auto err = d_->ExecuteScript("throw new Error('fejl ved 010203-4444')");
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(d_->error(), WebDriverError::kJavascriptError);
  EXPECT_EQ(err.status().message().find("4444"), std::string::npos) << err.status().message();
}

TEST_F(WebDriverTest, AsyncScriptsAnswerLaterAndFailWhenThePageGoesAway) {
  Open("/rebuild");
  auto later = d_->ExecuteAsyncScript(
      "const done = arguments[arguments.length - 1];"
      "setTimeout(() => done({n: arguments[0], el: document.querySelector('li.item')}), 50);",
      json::array{7});
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  ASSERT_TRUE(later->is_object());
  EXPECT_EQ(later->as_object().at("n").to_number<int>(), 7);
  auto el = AsElement(later->as_object().at("el"));
  ASSERT_TRUE(el.has_value());
  EXPECT_FALSE(d_->Text(*el)->empty());
  // The page is left while the script waits: chromedriver answers at once
  // with "script timeout" (long before the script timeout of 30 s).
  const auto start = std::chrono::steady_clock::now();
  auto gone = d_->ExecuteAsyncScript("setTimeout(() => { location.href = '/form'; }, 10);");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(d_->error(), WebDriverError::kScriptTimeout) << gone.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(WebDriverTest, PageLoadTimeoutAndUnreachableSiteAreTransient) {
  Timeouts t = d_->timeouts();
  Timeouts quick = t;
  quick.page_load_seconds = 0.5;
  ASSERT_TRUE(d_->SetTimeouts(quick).ok());
  Status st = d_->Navigate(base_ + "/slow?ms=3000");
  EXPECT_EQ(d_->error(), WebDriverError::kTimeout) << st.ToString();
  EXPECT_TRUE(st.IsTransient());
  ASSERT_TRUE(d_->SetTimeouts(t).ok());

  st = d_->Navigate("http://127.0.0.1:" + std::to_string(FreePort()) + "/");
  EXPECT_TRUE(st.IsTransient()) << st.ToString();
  EXPECT_EQ(d_->error(), WebDriverError::kUnknownError);
}

// ------------------------------------------------------------ processes and resources

// What a running browser consists of: its processes (by /proc) and its folder.
struct Footprint {
  std::set<pid_t> pids;
  std::string folder;
};

Footprint FootprintOf(BrowserProcess& p) { return {Tree(p.watchdog_pid()), p.folder().string()}; }

// Nothing of `f` left: no process of the tree, none mentioning its folder,
// and no folder.
void ExpectGone(const Footprint& f) {
  EXPECT_TRUE(StillRunning(f.pids).empty()) << "still running: " << StillRunning(f.pids).size();
  EXPECT_TRUE(ProcessesMentioning(f.folder).empty());
  EXPECT_FALSE(fs::exists(f.folder)) << f.folder;
}

// A browser folder no keyonce or watchdog will remove (keyonce killed before
// its watchdog started, or the watchdog killed) goes at the next start: its
// lock is free, or it has none and is old. A folder in use stays.
TEST(BrowserProcess, AStartRemovesTheFoldersOfBrowsersWhoseOwnersAreGone) {
  const fs::path root = fs::temp_directory_path() / ("kbsweep-" + std::to_string(getpid()));
  fs::remove_all(root);
  auto folder = [&](const std::string& name, bool lock) {
    fs::create_directories(root / name / "profile");
    std::ofstream(root / name / "profile" / "Preferences") << "{}";
    if (lock) std::ofstream(root / name / "lock");
    return root / name;
  };
  const fs::path free_lock = folder("keyonce-browser-aaaaaa", true);
  const fs::path held_lock = folder("keyonce-browser-bbbbbb", true);
  const fs::path young = folder("keyonce-browser-cccccc", false);
  const fs::path old = folder("keyonce-browser-dddddd", false);
  const fs::path other = folder("someone-elses-folder", true);
  fs::last_write_time(old, fs::file_time_type::clock::now() - std::chrono::hours(2));
  fs::last_write_time(other, fs::file_time_type::clock::now() - std::chrono::hours(2));
  // Another process holds this one, as a live keyonce or watchdog would;
  // killing it frees the lock.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t holder = fork();
  if (holder == 0) {
    int fd = open((held_lock / "lock").c_str(), O_RDWR);
    flock(fd, LOCK_EX);
    char c = 1;
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);

  SweepStaleBrowserFolders(root);
  EXPECT_FALSE(fs::exists(free_lock));
  EXPECT_FALSE(fs::exists(old));
  EXPECT_TRUE(fs::exists(held_lock / "profile" / "Preferences"));
  EXPECT_TRUE(fs::exists(young));
  EXPECT_TRUE(fs::exists(other));

  // Once its owner is gone, its lock is free.
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  SweepStaleBrowserFolders(root);
  EXPECT_FALSE(fs::exists(held_lock));
  EXPECT_TRUE(fs::exists(young));
  fs::remove_all(root);
}

TEST(BrowserProcess, DestroyingItEndsEveryProcessAndRemovesTheFolder) {
  setenv("KEYONCE_TEST_SECRET", "hemmeligt-kodeord", 1);
  auto b = Browser::Launch({});
  unsetenv("KEYONCE_TEST_SECRET");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE((*b)->driver().Navigate("data:text/html,<p>hej</p>").ok());
  Footprint f = FootprintOf((*b)->process());
  // The watchdog, chromedriver, chromium and its helpers.
  EXPECT_GE(f.pids.size(), 4u);
  EXPECT_TRUE(fs::exists(fs::path(f.folder) / "profile"));
  // keyonce's environment stays with keyonce; the browser's home is the folder.
  pid_t driver = (*b)->process().driver_pid();
  std::string env = ReadFile("/proc/" + std::to_string(driver) + "/environ");
  EXPECT_EQ(env.find("hemmeligt"), std::string::npos);
  EXPECT_NE(env.find("HOME=" + f.folder + "/home"), std::string::npos);
  // The watchdog holds none of keyonce's files: stdin, the log, its two pipes
  // and the folder's lock.
  std::vector<std::string> fds;
  for (const auto& e :
       fs::directory_iterator("/proc/" + std::to_string((*b)->process().watchdog_pid()) + "/fd")) {
    fds.push_back(fs::read_symlink(e.path()).string());
  }
  EXPECT_EQ(fds.size(), 6u) << ::testing::PrintToString(fds);
  EXPECT_EQ(std::count(fds.begin(), fds.end(), f.folder + "/lock"), 1)
      << ::testing::PrintToString(fds);
  EXPECT_TRUE((*b)->process().alive());
  b->reset();
  ExpectGone(f);  // at once: the destructor returns when all is gone
}

TEST(BrowserProcess, BrowsersStartedFromSeveralThreadsAtOnceEndCleanly) {
  // As `sessions: 3` does: each watchdog is forked while other threads run,
  // and must not hold another browser's pipe (its browser would then outlive
  // its owner).
  constexpr int kBrowsers = 3;
  std::vector<std::unique_ptr<Browser>> browsers(kBrowsers);
  std::vector<std::string> errors(kBrowsers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kBrowsers; ++i) {
    threads.emplace_back([&, i] {
      auto b = Browser::Launch({});
      if (!b.ok()) {
        errors[i] = b.status().ToString();
        return;
      }
      Status st =
          (*b)->driver().Navigate("data:text/html,<title>" + std::to_string(i) + "</title>");
      if (!st.ok()) errors[i] = st.ToString();
      browsers[i] = std::move(*b);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<Footprint> footprints;
  for (int i = 0; i < kBrowsers; ++i) {
    ASSERT_TRUE(browsers[i]) << errors[i];
    EXPECT_EQ(*browsers[i]->driver().Title(), std::to_string(i)) << errors[i];
    footprints.push_back(FootprintOf(browsers[i]->process()));
  }
  for (int i = 0; i < kBrowsers; ++i) {
    auto start = Clock::now();
    browsers[i].reset();
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 3.0);
    ExpectGone(footprints[i]);
  }
}

TEST(BrowserProcess, StoppingWithoutEndingTheSessionStillEndsChromium) {
  auto p = BrowserProcess::Start({});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto d = WebDriver::NewSession((*p)->driver_url(), (*p)->session_options());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  Footprint f = FootprintOf(**p);
  ASSERT_TRUE((*p)->Stop().ok());
  ExpectGone(f);
  EXPECT_FALSE((*p)->alive());
  auto title = (*d)->Title();
  EXPECT_TRUE(title.status().IsTransient());
  EXPECT_EQ((*d)->error(), WebDriverError::kConnectionLost) << title.status().ToString();
}

TEST(BrowserProcess, NothingSurvivesTheOwnerKilledWithSigkill) {
  int info[2];
  ASSERT_EQ(pipe(info), 0);
  pid_t owner = fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    close(info[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // a failed test does not leave it behind
    auto b = Browser::Launch({});
    std::string msg = b.ok() ? std::to_string((*b)->process().watchdog_pid()) + " " +
                                   (*b)->process().folder().string()
                             : "error " + b.status().ToString();
    if (b.ok()) (void)(*b)->driver().Navigate("data:text/html,<p>hej</p>");
    msg += "\n";
    (void)!write(info[1], msg.data(), msg.size());
    for (;;) pause();  // until SIGKILL
  }
  close(info[1]);
  std::string line;
  char c;
  while (read(info[0], &c, 1) == 1 && c != '\n') line += c;
  close(info[0]);
  ASSERT_FALSE(line.empty() || line.starts_with("error")) << line;
  std::stringstream ss(line);
  pid_t watchdog = 0;
  std::string folder;
  ss >> watchdog >> folder;
  Footprint f{Tree(watchdog), folder};
  EXPECT_GE(f.pids.size(), 4u);

  auto killed = Clock::now();
  kill(owner, SIGKILL);
  int status = 0;
  waitpid(owner, &status, 0);
  EXPECT_TRUE(WaitUntil([&] {
    return StillRunning(f.pids).empty() && ProcessesMentioning(folder).empty() &&
           !fs::exists(folder);
  }));
  double seconds = std::chrono::duration<double>(Clock::now() - killed).count();
  std::printf("all of the browser was gone %.2f s after SIGKILL of its owner\n", seconds);
  ExpectGone(f);
}

TEST(BrowserProcess, ChromedriverDyingEndsChromiumAndReadsAsTransient) {
  auto b = Browser::Launch({});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  BrowserProcess& p = (*b)->process();
  Footprint f = FootprintOf(p);
  std::set<pid_t> browser_pids = f.pids;
  browser_pids.erase(p.watchdog_pid());
  ASSERT_GT(p.driver_pid(), 0);
  kill(p.driver_pid(), SIGKILL);
  auto title = (*b)->driver().Title();
  EXPECT_TRUE(title.status().IsTransient());
  EXPECT_EQ((*b)->driver().error(), WebDriverError::kConnectionLost) << title.status().ToString();
  EXPECT_TRUE(WaitUntil([&] { return !p.alive(); }));
  EXPECT_TRUE(WaitUntil([&] { return StillRunning(browser_pids).empty(); }));
  b->reset();
  ExpectGone(f);
}

TEST(BrowserProcess, EveryCallHasATimeBound) {
  auto b = Browser::Launch({}, [](SessionOptions& s) { s.command_timeout_seconds = 1; });
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  pid_t driver = (*b)->process().driver_pid();
  kill(driver, SIGSTOP);  // a hung chromedriver
  auto start = Clock::now();
  auto title = (*b)->driver().Title();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  kill(driver, SIGCONT);
  EXPECT_EQ((*b)->driver().error(), WebDriverError::kCallTimedOut) << title.status().ToString();
  EXPECT_TRUE(title.status().IsTransient());
  EXPECT_LT(seconds, 3);
}

TEST(BrowserProcess, MissingOrBrokenProgramsAreReportedClearly) {
  ScratchDir root;
  BrowserOptions o;
  o.temp_root = root.path();
  o.chromedriver = "/nonexistent/chromedriver";
  auto r = BrowserProcess::Start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalid);
  EXPECT_NE(r.status().message().find("chromium-driver"), std::string::npos);

  o = BrowserOptions{};
  o.temp_root = root.path();
  o.chromium = "/nonexistent/chromium";
  r = BrowserProcess::Start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Debian package chromium"), std::string::npos);

  // A chromium that dies at once, saying why on stderr.
  fs::path fake = root.path() / "chromium";
  std::ofstream(fake) << "#!/bin/sh\necho 'cannot open display: nothing here' >&2\nexit 1\n";
  fs::permissions(fake, fs::perms::owner_all);
  fs::path tmp = root.path() / "tmp";
  fs::create_directories(tmp);
  o.chromium = fake.string();
  o.temp_root = tmp;
  auto b = Browser::Launch(o);
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(b.status().IsTransient()) << b.status().ToString();
  EXPECT_NE(b.status().message().find("session not created"), std::string::npos)
      << b.status().message();
  EXPECT_NE(b.status().message().find("cannot open display"), std::string::npos)
      << b.status().message();
  EXPECT_TRUE(fs::is_empty(tmp)) << "a temp folder was left behind";

  o = BrowserOptions{};
  o.headless = false;
  std::string display = std::getenv("DISPLAY") ? std::getenv("DISPLAY") : "";
  unsetenv("DISPLAY");
  unsetenv("WAYLAND_DISPLAY");
  r = BrowserProcess::Start(o);
  if (!display.empty()) setenv("DISPLAY", display.c_str(), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("DISPLAY"), std::string::npos);
}

TEST(BrowserProcess, HeadedUnderXvfb) {
  std::string xvfb = FindProgram("Xvfb");
  if (xvfb.empty()) {
    GTEST_SKIP() << "Xvfb is not installed (Debian package xvfb): the headed browser is not "
                    "tested here";
  }
  ScratchDir dir;
  ServerProcess x;
  ASSERT_TRUE(x.Start({xvfb, "-displayfd", "1", "-nolisten", "tcp", "-screen", "0", "1366x900x24"},
                      dir.path() / "xvfb.log"));
  std::string display;
  ASSERT_TRUE(WaitUntil([&] {
    std::string log = ReadFile(dir.path() / "xvfb.log");
    size_t nl = log.find('\n');
    if (nl == std::string::npos || nl == 0 || !std::isdigit(static_cast<unsigned char>(log[0]))) {
      return false;
    }
    display = ":" + log.substr(0, nl);
    return true;
  })) << x.Log();
  std::string old = std::getenv("DISPLAY") ? std::getenv("DISPLAY") : "";
  setenv("DISPLAY", display.c_str(), 1);
  BrowserOptions o;
  o.headless = false;
  auto b = Browser::Launch(o);
  if (old.empty()) {
    unsetenv("DISPLAY");
  } else {
    setenv("DISPLAY", old.c_str(), 1);
  }
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE((*b)->driver().Navigate("data:text/html,<title>synlig</title>").ok());
  auto ua = (*b)->driver().ExecuteScript("return navigator.userAgent");
  ASSERT_TRUE(ua.ok());
  EXPECT_EQ(std::string(ua->as_string()).find("Headless"), std::string::npos) << ua->as_string();
  auto shot = (*b)->driver().Screenshot();
  ASSERT_TRUE(shot.ok()) << shot.status().ToString();
  Footprint f = FootprintOf((*b)->process());
  b->reset();
  ExpectGone(f);
}

TEST(BrowserProcess, HeadlessAsANormalUser) {
  if (geteuid() != 0) GTEST_SKIP() << "not root: every other case already runs as a normal user";
  ScratchDir root;
  const uid_t nobody = 65534;
  ASSERT_EQ(chown(root.path().c_str(), nobody, nobody), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (setgroups(0, nullptr) != 0 || setgid(nobody) != 0 || setuid(nobody) != 0) _exit(2);
    int code = 3;
    {
      BrowserOptions o;
      o.temp_root = root.path();
      auto b = Browser::Launch(o);
      if (b.ok()) {
        const std::vector<std::string> args = (*b)->process().session_options().args;
        bool sandboxed = std::find(args.begin(), args.end(), "--no-sandbox") == args.end();
        code = sandboxed && (*b)->driver().Navigate("data:text/html,<p>hej</p>").ok() ? 0 : 4;
      } else {
        std::fprintf(stderr, "%s\n", b.status().ToString().c_str());
      }
    }
    _exit(code);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: cannot become nobody, 3: no browser, 4: no page";
  EXPECT_TRUE(fs::is_empty(root.path()));
}

TEST(BrowserProcess, StartupTimeAndMemory) {
  // Warm up what every first use pays once (libcurl, the page cache).
  {
    auto b = Browser::Launch({});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
  }
  const long rss_before = KbField("/proc/self/status", "VmRSS");
  std::vector<double> launches, teardowns;
  long rss_open = 0, watchdog_private_kb = 0;
  for (int i = 0; i < 3; ++i) {
    auto b = Browser::Launch({});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_TRUE((*b)->driver().Navigate("data:text/html,<p>hej</p>").ok());
    ASSERT_TRUE((*b)->driver().Screenshot().ok());
    launches.push_back((*b)->launch_seconds());
    rss_open = std::max(rss_open, KbField("/proc/self/status", "VmRSS"));
    fs::path rollup = "/proc/" + std::to_string((*b)->process().watchdog_pid()) + "/smaps_rollup";
    watchdog_private_kb = std::max(
        watchdog_private_kb, KbField(rollup, "Private_Dirty") + KbField(rollup, "Private_Clean"));
    auto start = Clock::now();
    b->reset();
    teardowns.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  const long rss_after = KbField("/proc/self/status", "VmRSS");
  std::sort(launches.begin(), launches.end());
  std::printf(
      "browser launch (chromedriver + chromium + session): %.2f / %.2f / %.2f s (min / median / "
      "max); teardown (session deleted, processes ended, folder removed) at most %.2f s\n"
      "keyonce side: RSS %ld kB before, %ld kB with a session open, %ld kB after 3 launches; "
      "the watchdog's private memory %ld kB\n",
      launches.front(), launches[1], launches.back(),
      *std::max_element(teardowns.begin(), teardowns.end()), rss_before, rss_open, rss_after,
      watchdog_private_kb);
  RecordProperty("launch_median_ms", static_cast<int>(launches[1] * 1000));
  RecordProperty("watchdog_private_kb", static_cast<int>(watchdog_private_kb));
  EXPECT_LT(launches[1], 15.0);
  EXPECT_LT(rss_after - rss_before, 4 * 1024) << "keyonce's own memory grows per launch";
}

}  // namespace
}  // namespace keyonce::connectors::browser
