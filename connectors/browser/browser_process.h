// The browser processes behind the browser connector: one chromedriver on
// 127.0.0.1 that starts one Debian chromium, owned by one BrowserProcess, and
// never left behind.
//
//   auto browser = Browser::Launch(options);           // chromedriver + chromium + session
//   if (!browser.ok()) return browser.status();        // missing, or did not start
//   WebDriver& driver = (*browser)->driver();          // connectors/browser/webdriver.h
//   ...
//   browser->reset();  // session deleted, every process ended, the folder removed
//
// Never left behind. Start() makes a temp folder of its own (the chromium
// profile, HOME, XDG_CONFIG_HOME/XDG_CACHE_HOME, TMPDIR and the driver's log
// all live in it, so nothing of the browser is written elsewhere; the
// browser gets only locale, time zone, display and proxy variables of
// keyonce's environment, never its secrets) and forks a
// small watchdog process first. The watchdog makes itself a child subreaper
// (prctl(PR_SET_CHILD_SUBREAPER)), so every process started under it that is
// orphaned (chromium's zygotes, renderers and crashpad handlers, which
// daemonize) becomes its child rather than init's; it starts chromedriver
// (which starts chromium on NewSession) and then waits on a pipe whose only
// write end keyonce holds. That pipe closes when the BrowserProcess is
// destroyed or stopped, when keyonce exits, and when keyonce is killed,
// SIGKILL included (the kernel closes a dead process's files). The watchdog
// then sends SIGTERM to every descendant (found by walking
// /proc/<pid>/task/*/children from itself down) and to chromedriver's process
// group (which chromium's processes share), gives them a short grace, sends
// SIGKILL to what is left, reaps them all, removes the temp folder and exits. It also ends chromium
// when chromedriver dies by itself. The watchdog runs in its own process group, so a Ctrl-C meant
// for keyonce does not cut the browser's shutdown short (keyonce closes the pipe itself), and
// chromedriver has PR_SET_PDEATHSIG(SIGKILL), so it dies even if someone kills
// the watchdog with SIGKILL. Between fork and exec the watchdog makes only
// async-signal-safe system calls (keyonce is multi-threaded: another thread
// may have held a lock at the moment of the fork), prepared in full before the
// fork, and closes every file it inherited except its own three, so it holds
// no lock file, socket or database of keyonce's.
//
// What it cannot cover: a watchdog killed by SIGKILL leaves chromium (not
// chromedriver) to init; a kernel that cannot run a subreaper (Linux < 3.4).
// A folder no one removed (keyonce killed between making it and forking the
// watchdog, or the watchdog killed) is removed by the next start in the same
// place: each folder holds a `lock` that keyonce and its watchdog keep
// locked (flock) while either lives (SweepStaleBrowserFolders).
//
// What it costs: the watchdog is a fork of keyonce that does not exec, so
// every page keyonce changes after the fork is copied and the old copy stays
// with the watchdog, up to keyonce's resident memory at the moment of the
// fork (measured: keyonce rewriting 200 MB after the fork left the watchdog
// 205 MB). Start browsers while keyonce is small, or move the watchdog into
// a small program of its own that the fork executes.
//
// Who can reach the browser: chromedriver has no authentication, and listens
// on 127.0.0.1 only; any local user could drive the session while it runs.
// Run keyonce on a host (or in a network namespace) that is not shared with
// untrusted users.
//
// Threading: a BrowserProcess is used from one thread at a time; different
// instances may be started and stopped from different threads at once.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connectors/browser/webdriver.h"
#include "keyonce/status.h"

namespace keyonce::connectors::browser {

struct BrowserOptions {
  // Programs; empty: /usr/bin/chromium and /usr/bin/chromedriver (Debian's
  // chromium and chromium-driver), else the first of the usual names on PATH.
  std::string chromium;
  std::string chromedriver;
  // headless: --headless=new; headed (false): a visible window, which needs
  // DISPLAY (or WAYLAND_DISPLAY), e.g. from Xvfb.
  bool headless = true;
  int window_width = 1366;
  int window_height = 900;
  // navigator.language, the Accept-Language header and chromium's UI.
  std::string accept_language = "da-DK";
  // Where downloads land, without a prompt (Chrome prefs
  // download.default_directory, download.prompt_for_download). Empty: the
  // browser's own downloads_dir(), removed with it (by the watchdog too,
  // when keyonce is killed). A folder set here is the caller's; it is not
  // removed with the browser.
  std::filesystem::path download_dir;
  // More chromium switches, after keyonce's own ("--force-device-scale-factor=1").
  std::vector<std::string> extra_args;
  // Where the temp folder is made; empty: $TMPDIR, else /tmp.
  std::filesystem::path temp_root;
  // How long chromedriver may take to answer /status.
  double start_timeout_seconds = 30;
  // How long the processes have after SIGTERM before SIGKILL.
  double kill_grace_seconds = 2;
};

// The temp folders of browsers are named kFolderPrefix + 6 characters.
inline constexpr const char* kFolderPrefix = "keyonce-browser-";
// A folder without its lock this long after it was last written belongs to
// no one (a keyonce killed before it could lock it).
inline constexpr int kUnlockedFolderGraceSeconds = 60;

// Removes the browser folders in `root` (of this user) that no keyonce or
// watchdog will remove: their lock is free, or they have none and are older
// than kUnlockedFolderGraceSeconds. Every start does this first, so a folder
// left by a keyonce killed at an unlucky moment, or by a watchdog killed
// with SIGKILL, lasts only until the next browser starts in the same place.
void SweepStaleBrowserFolders(const std::filesystem::path& root);

// One chromedriver (and the chromium it starts) under a watchdog, with a
// temp folder of its own. See the contract at the top of this file.
class BrowserProcess {
 public:
  // Finds the programs, makes the temp folder, starts the watchdog and
  // chromedriver on a free port of 127.0.0.1 (a port taken between choosing
  // and binding it is retried on another), and waits until chromedriver
  // answers /status. Errors: kInvalid when chromium or chromedriver is not
  // installed or cannot be executed, or a headed browser has no display;
  // kTransient when chromedriver does not start or answer in time (its
  // stderr's last lines in the message, CPR numbers masked); kIo when the
  // temp folder or a pipe cannot be made. Nothing is left behind on failure.
  static Result<std::unique_ptr<BrowserProcess>> Start(const BrowserOptions& options);

  // Stop().
  ~BrowserProcess();
  BrowserProcess(const BrowserProcess&) = delete;
  BrowserProcess& operator=(const BrowserProcess&) = delete;

  // Ends chromedriver, chromium and everything they started, and removes the
  // temp folder; returns when that is done (bounded by kill_grace_seconds
  // plus a few seconds; a watchdog that does not finish by then is killed and
  // the folder removed from here). Idempotent. A session still open is not
  // deleted first: delete it (WebDriver::DeleteSession, or Browser) for a
  // clean browser shutdown. kInternal when something could not be removed.
  Status Stop();

  // True while chromedriver runs (false once it exited by itself or Stop ran).
  bool alive();

  // What NewSession needs to start this chromium as the options say:
  // binary, switches, prefs. Timeouts and the page load strategy are the
  // defaults of SessionOptions; change them on the copy.
  SessionOptions session_options() const;

  // "http://127.0.0.1:PORT".
  const std::string& driver_url() const { return driver_url_; }
  // The temp folder, and the chromium profile inside it.
  const std::filesystem::path& folder() const { return folder_; }
  std::filesystem::path profile_dir() const { return folder_ / "profile"; }
  // Where downloads land: options().download_dir, else <folder>/downloads.
  std::filesystem::path downloads_dir() const {
    return options_.download_dir.empty() ? folder_ / "downloads" : options_.download_dir;
  }
  pid_t watchdog_pid() const { return watchdog_pid_; }
  pid_t driver_pid() const { return driver_pid_; }
  const BrowserOptions& options() const { return options_; }

  // The last lines of chromedriver's and chromium's stderr (at most
  // `max_chars`, CPR numbers masked), for error messages.
  std::string LogTail(size_t max_chars = 600) const;

 private:
  BrowserProcess() = default;
  Status StartOnce(int port, bool* port_taken);
  void ReadReports();
  void ReleaseLock();

  BrowserOptions options_;
  std::string chromium_, chromedriver_;
  std::filesystem::path folder_;
  std::string driver_url_;
  pid_t watchdog_pid_ = -1;
  pid_t driver_pid_ = -1;
  int control_fd_ = -1;  // write end of the pipe the watchdog waits on
  int lock_fd_ = -1;     // the folder's lock (flock), shared with the watchdog
  int report_fd_ = -1;   // read end of the watchdog's reports
  bool driver_exited_ = false;
  bool watchdog_failed_ = false;  // exited at once: no subreaper, no file descriptors
  int driver_wait_status_ = 0;
};

// A BrowserProcess with a WebDriver session on it: what a connector holds
// per browser. Destroying it deletes the session (so chromium shuts down
// cleanly) and then stops the processes.
class Browser {
 public:
  // BrowserProcess::Start, then WebDriver::NewSession with
  // process.session_options(); `adjust` (optional) may change those options
  // first (timeouts, page load strategy). A session that cannot be made is
  // kTransient with chromium's stderr tail in the message.
  static Result<std::unique_ptr<Browser>> Launch(
      const BrowserOptions& options, const std::function<void(SessionOptions&)>& adjust = {});
  ~Browser();
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  WebDriver& driver() { return *driver_; }
  BrowserProcess& process() { return *process_; }
  // Seconds Launch took (processes and session), for logs and benchmarks.
  double launch_seconds() const { return launch_seconds_; }

 private:
  Browser() = default;
  std::unique_ptr<BrowserProcess> process_;
  std::unique_ptr<WebDriver> driver_;
  double launch_seconds_ = 0;
};

}  // namespace keyonce::connectors::browser
