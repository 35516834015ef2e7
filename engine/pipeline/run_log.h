// The run's log: every line passes through the Redactor (CPR numbers masked,
// secret values removed) and is printed as text or JSON lines.
#pragma once

#include <boost/json/serialize.hpp>
#include <map>
#include <mutex>
#include <ostream>
#include <string>

#include "core/clock.h"
#include "keyonce/connector.h"
#include "keyonce/template.h"
#include "pipeline/runner.h"
#include "state/privacy.h"

namespace keyonce {

class RunLog : public Log, public WarningSink {
 public:
  RunLog(std::ostream* out, LogFormat format, Redactor* redactor)
      : out_(out), format_(format), redactor_(redactor) {}

  void set_context(std::string recipe, int64_t run) {
    recipe_ = std::move(recipe);
    run_ = run;
  }
  // Thread-safe: the run's two stages log from their own threads.
  void Info(const std::string& msg) override {
    std::lock_guard<std::mutex> lock(mu_);
    Line("info", msg);
  }
  void Warn(const std::string& msg) override {
    // The same warning for many records is shown a few times, then counted.
    std::lock_guard<std::mutex> lock(mu_);
    int n = ++seen_[msg];
    if (n <= 3) Line("warn", msg);
    if (n == 3) Line("warn", "(further identical warnings are not shown)");
  }
  void Error(const std::string& msg) {
    std::lock_guard<std::mutex> lock(mu_);
    Line("error", msg);
  }
  // The redactor's Apply, safe against a secret added meanwhile (AddSecret).
  std::string Redact(std::string_view text) {
    std::lock_guard<std::mutex> lock(mu_);
    return redactor_->Apply(text);
  }
  void AddSecret(const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    redactor_->AddSecret(value);
  }

 private:
  void Line(const char* level, const std::string& msg) {  // with mu_ held
    std::string text = redactor_->Apply(msg);
    std::string ts = UtcTimestamp();
    if (format_ == LogFormat::kJson) {
      boost::json::object o{{"time", ts}, {"level", level}, {"recipe", recipe_}, {"msg", text}};
      if (run_) o["run"] = run_;
      *out_ << boost::json::serialize(o) << "\n";
    } else {
      *out_ << ts << " " << level << (std::string(level).size() == 4 ? "  " : " ") << text << "\n";
    }
    out_->flush();
  }

  std::ostream* out_;
  LogFormat format_;
  Redactor* redactor_;
  std::string recipe_;
  int64_t run_ = 0;
  std::map<std::string, int> seen_;
  std::mutex mu_;
};

}  // namespace keyonce
