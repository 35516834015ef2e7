// keyonce: the command line.
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "cli/audit_cmd.h"
#include "cli/schedule_cmd.h"
#include "cli/serve_cmd.h"
#include "cli/state_cmd.h"
#include "keyonce/connector.h"
#include "pipeline/runner.h"
#include "pipeline/test_runner.h"
#include "recipe/loader.h"
#include "recipe/schema.h"
#include "state/audit.h"
#include "state/privacy.h"
#include "state/store.h"

namespace keyonce {
namespace {

constexpr const char* kVersion = "0.1.0";

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

const char* kMainHelp =
    R"(keyonce - key data once: read records from one system, write them into the others.

Usage: keyonce COMMAND [options]

Commands:
  run RECIPE          run a recipe (writes each record to each target exactly once)
  validate FILE...    check recipes; every problem with file:line:column
  test TEST.yaml...   check a recipe against fixture records, writing nothing
  history [RECIPE]    list runs with their counts
  quarantine [RECIPE] list quarantined records; --retry ID|all, --dismiss ID
  audit               operations on personal data: --subject CPR (access request), --run, --recipe
  state init|check    start a journal on purpose; verify a state file
  serve               run recipes on schedules and on demand; the API and web page
  token new|hash      make an API token, or hash one for the tokens file
  schedule next CRON  the next fire times of a cron expression in a time zone
  schema              print the JSON Schema of the recipe format
  docs DIR            write the generated reference docs into DIR
  connectors          list the connectors
  version             print the version

`keyonce COMMAND --help` tells more. Exit codes: docs/cli.md.
)";

const char* kRunHelp = R"(Usage: keyonce run RECIPE [options]

Reads the recipe's source once and writes every record to every target. A
rerun writes only what is missing or changed; after a crash (even kill -9) a
rerun completes the work without duplicates.

Options:
  --param NAME=VALUE   a parameter (repeatable); checked against the recipe's params
  --dry-run            print every write each target would receive; write nothing,
                       leave the journal untouched
  --state FILE         the state store (default: $KEYONCE_STATE or ./keyonce-state.db)
  --log-format FORMAT  text (default) or json (one JSON object per line)
  --no-progress        no progress line, even on a terminal
  --audit-retention-days N  keep audit log entries N days (default 180; pruned daily)
  --wait               if another run of this recipe (on this state file) is going
                       on, wait for it to end instead of refusing
  --adopt              take over targets that another state file wrote (after a
                       `keyonce state init`): records the journal does not know are
                       checked at the target first where it can tell

Exit codes: 0 all written; 1 the run failed; 2 usage, invalid recipe, bad
parameter or missing secret; 3 completed, but records were quarantined or are
in doubt (see `keyonce quarantine`); 4 refused, nothing written: the recipe is
running elsewhere, or the state file is not a whole keyonce state file or not
the one the targets know (the message says what to do).
)";

const char* kValidateHelp = R"(Usage: keyonce validate FILE... [--log-format json]

Checks each recipe completely without running it: YAML syntax, unknown or
misspelled keys (with a "did you mean" hint), types, connectors and their
settings, templates (with the column of the problem inside the template),
declared params and secrets, and references between targets. Touches no
network, no file named in the recipe, no secret.

Exit codes: 0 every file is valid (warnings allowed); 1 at least one file has
errors; 2 usage error.
)";

const char* kTestHelp = R"(Usage: keyonce test TEST.yaml...

Feeds each case's input records through the recipe's steps and renders what
every target would receive, without opening any target, network or journal,
and compares that with the case's expected writes. See docs/testing.md.

Exit codes: 0 all cases pass; 1 a case fails; 2 invalid test file or recipe.
)";

const char* kHistoryHelp =
    R"(Usage: keyonce history [RECIPE] [--state FILE] [--limit N] [--log-format json]

Lists recent runs, newest first, with their status and counts.
)";

const char* kQuarantineHelp = R"(Usage: keyonce quarantine [RECIPE] [options]

Lists quarantined records (open ones by default) with the reason, where they
came from and a pseudonymous reference; personal data is never shown.

Options:
  --state FILE        the state store
  --all               include retried and dismissed records
  --retry ID|all      run the recipe again for these records (needs RECIPE as a
                      file path), with the parameters of the run that read them:
                      records from runs with different parameters are retried in
                      one run each; --param NAME=VALUE overrides one
  --wait              wait for a run of the recipe that is going on (as for run)
  --dismiss ID        mark a record as handled by a person
  --log-format json   JSON lines
)";

struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> opts;
  std::vector<std::string> flags;
  bool Has(const std::string& f) const {
    return std::find(flags.begin(), flags.end(), f) != flags.end() || opts.count(f);
  }
  std::optional<std::string> Get(const std::string& k) const {
    auto it = opts.find(k);
    if (it == opts.end()) return std::nullopt;
    return it->second;
  }
};

// Options that take a value.
const std::vector<std::string> kValued = {
    "--param", "--state",   "--log-format", "--limit",
    "--retry", "--dismiss", "--status",     "--audit-retention-days"};

// The exit code of a run that could not start.
int ExitCodeOf(const Status& st) {
  switch (st.code()) {
    case Status::Code::kInvalid:
      return kExitUsage;
    case Status::Code::kRefused:
      return kExitRefused;
    default:
      return kExitFailed;
  }
}

std::optional<Args> Parse(int argc, char** argv, int start, const std::vector<std::string>& known,
                          std::string* error) {
  Args a;
  for (int i = start; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string name = s, value;
      bool has_value = false;
      if (auto eq = s.find('='); eq != std::string::npos) {
        name = s.substr(0, eq);
        value = s.substr(eq + 1);
        has_value = true;
      }
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        *error = "unknown option " + name;
        std::vector<std::string> names(known.begin(), known.end());
        std::string hint;
        size_t best = 99;
        for (const auto& k : names) {
          size_t common = 0;
          while (common < k.size() && common < name.size() && k[common] == name[common]) ++common;
          if (k.size() - common < best && common > 3) {
            best = k.size() - common;
            hint = k;
          }
        }
        if (!hint.empty()) *error += "; did you mean " + hint + "?";
        return std::nullopt;
      }
      bool valued = std::find(kValued.begin(), kValued.end(), name) != kValued.end();
      if (valued && !has_value) {
        if (i + 1 >= argc) {
          *error = name + " needs a value";
          return std::nullopt;
        }
        value = argv[++i];
      }
      if (valued)
        a.opts.emplace(name, value);
      else
        a.flags.push_back(name);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

// Collects `--param NAME=VALUE` options; false (after saying why) when one has no '='.
bool CollectParams(const Args& a, const std::string& cmd, std::map<std::string, std::string>* out) {
  for (auto [it, end] = a.opts.equal_range("--param"); it != end; ++it) {
    auto eq = it->second.find('=');
    if (eq == std::string::npos) {
      std::cerr << "keyonce " << cmd << ": --param takes NAME=VALUE\n";
      return false;
    }
    (*out)[it->second.substr(0, eq)] = it->second.substr(eq + 1);
  }
  return true;
}

LogFormat FormatOf(const Args& a) {
  return a.Get("--log-format") == std::optional<std::string>("json") ? LogFormat::kJson
                                                                     : LogFormat::kText;
}

std::filesystem::path StatePath(const Args& a) {
  if (auto s = a.Get("--state")) return *s;
  return StateStore::DefaultPath();
}

std::shared_ptr<const Recipe> LoadOrReport(const std::string& file) {
  Diagnostics diags;
  auto r = LoadRecipe(file, &diags);
  for (const auto& d : diags.items()) std::cerr << d.ToString() << "\n";
  return r;
}

void PrintSummary(const RunSummary& s, LogFormat fmt, const std::string& recipe) {
  if (fmt == LogFormat::kJson) {
    std::cout << s.ToJson() << "\n";
    return;
  }
  std::cout << (s.status == "dry_run" ? "Dry run of " + recipe
                                      : "Run " + std::to_string(s.run) + " of " + recipe)
            << " "
            << (s.status == "failed"        ? "failed"
                : s.status == "refused"     ? "was refused"
                : s.status == "interrupted" ? "was interrupted"
                                            : "finished")
            << " in " << std::fixed << std::setprecision(2) << s.seconds << " s: read " << s.read;
  if (s.rejected) std::cout << " (" << s.rejected << " unreadable)";
  std::cout << ", filtered " << s.filtered << ", quarantined " << s.quarantined << ", in doubt "
            << s.in_doubt << ".\n";
  for (const auto& [name, c] : s.targets) {
    std::cout << "  " << name << ": " << c.written
              << (s.status == "dry_run" ? " to write" : " written");
    if (c.updated) std::cout << ", " << c.updated << " updated";
    std::cout << ", " << c.unchanged << " unchanged";
    if (c.not_applicable) std::cout << ", " << c.not_applicable << " not for this target";
    if (c.failed) std::cout << ", " << c.failed << " failed";
    if (c.in_doubt) std::cout << ", " << c.in_doubt << " in doubt";
    std::cout << "\n";
  }
  if (!s.error.empty()) std::cout << "Error: " << s.error << "\n";
  if (s.quarantined && s.status != "dry_run") {
    std::cout << s.quarantined << " record(s) need a person: keyonce quarantine " << recipe << "\n";
  }
}

int CmdRun(int argc, char** argv) {
  std::string error;
  auto a = Parse(argc, argv, 2,
                 {"--param", "--dry-run", "--state", "--log-format", "--no-progress",
                  "--audit-retention-days", "--wait", "--adopt", "--help"},
                 &error);
  if (!a) {
    std::cerr << "keyonce run: " << error << "\n";
    return kExitUsage;
  }
  if (a->Has("--help")) {
    std::cout << kRunHelp;
    return 0;
  }
  if (a->positional.size() != 1) {
    std::cerr << "keyonce run: give exactly one recipe file (keyonce run --help)\n";
    return kExitUsage;
  }
  auto recipe = LoadOrReport(a->positional[0]);
  if (!recipe) return kExitUsage;
  RunOptions opt;
  opt.state_path = StatePath(*a);
  opt.dry_run = a->Has("--dry-run");
  opt.wait = a->Has("--wait");
  opt.adopt = a->Has("--adopt");
  opt.log_format = FormatOf(*a);
  opt.out = &std::cout;
  opt.err = &std::cerr;
  opt.progress =
      !a->Has("--no-progress") && isatty(STDERR_FILENO) && opt.log_format == LogFormat::kText;
  opt.stop = &g_stop;
  if (auto days = a->Get("--audit-retention-days")) {
    char* end = nullptr;
    long n = std::strtol(days->c_str(), &end, 10);
    if (days->empty() || *end || n < 1 || n > 100000) {
      std::cerr
          << "keyonce run: --audit-retention-days must be a whole number of days, at least 1\n";
      return kExitUsage;
    }
    opt.audit_retention_days = static_cast<int>(n);
  }
  if (!CollectParams(*a, "run", &opt.params)) return kExitUsage;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto s = RunRecipe(*recipe, opt);
  if (!s.ok()) {
    std::cerr << "keyonce run: " << MaskCpr(s.status().message()) << "\n";
    return ExitCodeOf(s.status());
  }
  PrintSummary(*s, opt.log_format, recipe->name);
  return s->exit_code;
}

int CmdValidate(int argc, char** argv) {
  std::string error;
  auto a = Parse(argc, argv, 2, {"--log-format", "--help"}, &error);
  if (!a) {
    std::cerr << "keyonce validate: " << error << "\n";
    return 2;
  }
  if (a->Has("--help")) {
    std::cout << kValidateHelp;
    return 0;
  }
  if (a->positional.empty()) {
    std::cerr << "keyonce validate: give one or more recipe files\n";
    return 2;
  }
  bool json = FormatOf(*a) == LogFormat::kJson;
  int bad = 0;
  for (const auto& f : a->positional) {
    Diagnostics diags;
    auto r = LoadRecipe(f, &diags);
    for (const auto& d : diags.items()) {
      if (json) {
        boost::json::object o{{"file", d.file},
                              {"line", d.line},
                              {"column", d.column},
                              {"path", d.path},
                              {"severity", d.warning ? "warning" : "error"},
                              {"message", MaskCpr(d.message)}};
        std::cout << ToJson(o) << "\n";
      } else {
        std::cout << MaskCpr(d.ToString()) << "\n";
      }
    }
    if (!r)
      ++bad;
    else if (!json)
      std::cout << f << ": ok (" << r->name << ")\n";
  }
  return bad ? 1 : 0;
}

int CmdTest(int argc, char** argv) {
  std::string error;
  auto a = Parse(argc, argv, 2, {"--help"}, &error);
  if (!a || a->Has("--help") || a->positional.empty()) {
    if (!a) std::cerr << "keyonce test: " << error << "\n";
    std::cout << kTestHelp;
    return a && a->Has("--help") ? 0 : 2;
  }
  int worst = 0;
  for (const auto& f : a->positional)
    worst = std::max(worst, RunRecipeTest(f, std::cout, std::cerr));
  return worst;
}

int CmdHistory(int argc, char** argv) {
  std::string error;
  auto a = Parse(argc, argv, 2, {"--state", "--limit", "--log-format", "--help"}, &error);
  if (!a) {
    std::cerr << "keyonce history: " << error << "\n";
    return 2;
  }
  if (a->Has("--help")) {
    std::cout << kHistoryHelp;
    return 0;
  }
  auto store = StateStore::Open(StatePath(*a), true);
  if (!store.ok()) {
    std::cerr << "keyonce history: " << store.status().message() << "\n";
    return 1;
  }
  std::string recipe = a->positional.empty() ? "" : a->positional[0];
  int limit = a->Get("--limit") ? std::atoi(a->Get("--limit")->c_str()) : 20;
  auto runs = (*store)->ListRuns(recipe, limit);
  if (!runs.ok()) {
    std::cerr << "keyonce history: " << runs.status().message() << "\n";
    return 1;
  }
  bool json = FormatOf(*a) == LogFormat::kJson;
  if (!json)
    std::cout
        << "run   recipe                    started               status                  counts\n";
  for (const auto& r : *runs) {
    if (json) {
      boost::json::object o{{"run", r.id},
                            {"recipe", r.recipe},
                            {"started_at", r.started_at},
                            {"finished_at", r.finished_at},
                            {"status", r.status},
                            {"exit_code", r.exit_code},
                            {"trigger", r.trigger},
                            {"params", r.params}};
      boost::system::error_code ec;
      Value counts = boost::json::parse(r.counts, ec);
      if (!ec) o["counts"] = counts;
      std::cout << ToJson(o) << "\n";
      continue;
    }
    std::string counts;
    boost::system::error_code ec;
    Value c = boost::json::parse(r.counts, ec);
    if (!ec && c.is_object() && c.as_object().contains("read")) {
      const auto& o = c.as_object();
      counts = "read " + ToText(o.at("read")) + ", quarantined " + ToText(o.at("quarantined"));
      if (o.contains("targets")) {
        for (const auto& t : o.at("targets").as_object()) {
          counts += ", " + std::string(t.key()) + " +" + ToText(t.value().at("written"));
          if (t.value().at("updated").as_int64()) counts += "~" + ToText(t.value().at("updated"));
        }
      }
    }
    char line[256];
    std::snprintf(line, sizeof line, "%-5lld %-25s %-21s %-23s ", static_cast<long long>(r.id),
                  r.recipe.c_str(), r.started_at.c_str(), r.status.c_str());
    // A failed run says why (e.g. it ran out of memory, or its process died).
    if (r.status == "failed" && !ec && c.is_object() && c.as_object().contains("error")) {
      counts += (counts.empty() ? "" : " · ") + MaskCpr(ToText(c.as_object().at("error")));
    }
    std::cout << line << counts << "\n";
  }
  return 0;
}

int CmdQuarantine(int argc, char** argv) {
  std::string error;
  auto a = Parse(argc, argv, 2,
                 {"--state", "--all", "--retry", "--dismiss", "--param", "--log-format", "--limit",
                  "--wait", "--help"},
                 &error);
  if (!a) {
    std::cerr << "keyonce quarantine: " << error << "\n";
    return 2;
  }
  if (a->Has("--help")) {
    std::cout << kQuarantineHelp;
    return 0;
  }
  std::string recipe_arg = a->positional.empty() ? "" : a->positional[0];
  if (auto id = a->Get("--dismiss")) {
    auto store = StateStore::Open(StatePath(*a));
    if (!store.ok()) {
      std::cerr << store.status().message() << "\n";
      return 1;
    }
    auto row = (*store)->GetQuarantine(std::atoll(id->c_str()));
    if (!row.ok()) {
      std::cerr << "keyonce quarantine: " << row.status().message() << "\n";
      return 1;
    }
    if (Status st = (*store)->SetQuarantineStatus(row->id, "dismissed"); !st.ok()) {
      std::cerr << "keyonce quarantine: " << st.message() << "\n";
      return 1;
    }
    AuditEntry e;
    e.robot = DefaultRobotName();
    e.actor = LocalUserName();
    e.recipe = row->recipe;
    e.run = row->run;
    e.system = "keyonce";
    e.operation = kAuditQuarantineDismiss;
    Pseudonymizer pseudonymizer((*store)->pseudonym_key());
    e.subject = StoredRecordSubject(pseudonymizer, row->record);
    e.detail = "quarantined record " + std::to_string(row->id) +
               (row->ref.empty() ? "" : " (" + row->ref + ")");
    if (Status st = AppendAudit(**store, e); !st.ok()) {
      std::cerr << "keyonce quarantine: writing the audit log: " << st.message() << "\n";
      return 1;
    }
    std::cout << "Quarantined record " << row->id << " dismissed.\n";
    return 0;
  }
  if (auto which = a->Get("--retry")) {
    auto recipe = LoadOrReport(recipe_arg);
    if (!recipe) {
      std::cerr << "keyonce quarantine --retry needs the recipe file\n";
      return 2;
    }
    RunOptions opt;
    opt.state_path = StatePath(*a);
    opt.log_format = FormatOf(*a);
    opt.out = &std::cout;
    opt.err = &std::cerr;
    opt.trigger = "quarantine-retry";
    opt.wait = a->Has("--wait");
    if (!CollectParams(*a, "quarantine", &opt.params)) return kExitUsage;
    std::vector<StateStore::QuarantineRow> rows;
    {
      auto store = StateStore::Open(opt.state_path, true);
      if (!store.ok()) {
        std::cerr << "keyonce quarantine: " << store.status().message() << "\n";
        return 1;
      }
      if (*which == "all") {
        auto open = (*store)->ListQuarantine(recipe->name, "open", 1000000);
        if (!open.ok()) {
          std::cerr << "keyonce quarantine: " << open.status().message() << "\n";
          return 1;
        }
        for (auto& r : *open) {
          if (r.stage != "source") rows.push_back(std::move(r));
        }
      } else {
        auto row = (*store)->GetQuarantine(std::atoll(which->c_str()));
        if (!row.ok()) {
          std::cerr << "keyonce quarantine: " << row.status().message() << "\n";
          return 1;
        }
        rows.push_back(std::move(row).value());
      }
    }
    if (rows.empty()) {
      std::cout << "Nothing to retry.\n";
      return 0;
    }
    // Each record is retried with the parameters of the run that read it:
    // one run per set of parameters.
    int worst = 0;
    for (auto& ids : GroupRetries(rows, opt.params)) {
      opt.retry_quarantine = std::move(ids);
      auto s = RunRecipe(*recipe, opt);
      if (!s.ok()) {
        std::cerr << "keyonce quarantine: " << MaskCpr(s.status().message()) << "\n";
        return ExitCodeOf(s.status());
      }
      PrintSummary(*s, opt.log_format, recipe->name);
      worst = std::max(worst, s->exit_code);
    }
    return worst;
  }
  // A recipe may be named by its name or its file.
  std::string recipe_name = recipe_arg;
  if (recipe_arg.find('/') != std::string::npos || recipe_arg.find(".yaml") != std::string::npos) {
    Diagnostics d;
    if (auto r = LoadRecipe(recipe_arg, &d)) recipe_name = r->name;
  }
  auto store = StateStore::Open(StatePath(*a), true);
  if (!store.ok()) {
    std::cerr << store.status().message() << "\n";
    return 1;
  }
  int limit = a->Get("--limit") ? std::atoi(a->Get("--limit")->c_str()) : 1000;
  auto rows = (*store)->ListQuarantine(recipe_name, a->Has("--all") ? "" : "open", limit);
  if (!rows.ok()) {
    std::cerr << rows.status().message() << "\n";
    return 1;
  }
  bool json = FormatOf(*a) == LogFormat::kJson;
  for (const auto& r : *rows) {
    if (json) {
      boost::json::object o{{"id", r.id},
                            {"recipe", r.recipe},
                            {"run", r.run},
                            {"ref", r.ref},
                            {"stage", r.stage},
                            {"target", r.target},
                            {"position", r.position},
                            {"reason", MaskCpr(r.reason)},
                            {"status", r.status},
                            {"created_at", r.created_at}};
      std::cout << ToJson(o) << "\n";
    } else {
      std::cout << "#" << r.id << " " << r.recipe << " run " << r.run << " " << r.created_at << " ["
                << r.status << "] " << (r.ref.empty() ? "" : r.ref + " ") << "(" << r.position
                << ") " << r.stage << (r.target.empty() ? "" : " " + r.target) << ": "
                << MaskCpr(r.reason) << "\n";
    }
  }
  if (!json) {
    std::cout << rows->size() << " record(s)."
              << (rows->empty() ? "" : " Retry with: keyonce quarantine RECIPE.yaml --retry ID|all")
              << "\n";
  }
  return 0;
}

int CmdConnectors() {
  for (const auto* d : Registry::Global().All()) {
    std::string roles;
    if (d->source) roles += "source ";
    if (d->target) roles += "target ";
    if (d->lookup) roles += "lookup ";
    std::printf("%-10s %-22s %s\n", d->name.c_str(), roles.c_str(), d->summary.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace keyonce

int main(int argc, char** argv) {
  using namespace keyonce;
  // Batches allocate and free many records; keep freed memory for the next
  // batch instead of returning it to the OS and faulting it back in (this
  // alone made runs about 40% faster).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help") ||
      !std::strcmp(argv[1], "-h")) {
    std::cout << kMainHelp;
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "run") return CmdRun(argc, argv);
    if (cmd == "validate") return CmdValidate(argc, argv);
    if (cmd == "test") return CmdTest(argc, argv);
    if (cmd == "history") return CmdHistory(argc, argv);
    if (cmd == "quarantine") return CmdQuarantine(argc, argv);
    if (cmd == "audit") return AuditCommand(argc, argv, 2);
    if (cmd == "state") return StateCommand(argc, argv, 2);
    if (cmd == "schedule") return ScheduleCommand(argc, argv, 2);
    if (cmd == "serve") return ServeCommand(argc, argv, 2);
    if (cmd == "token") return TokenCommand(argc, argv, 2);
    bool help = argc > 2 && (!std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h"));
    if (cmd == "schema") {
      if (help) {
        std::cout << "Usage: keyonce schema\n\nPrints the JSON Schema of the recipe format, "
                     "generated from the\n"
                     "declarations the validator uses. Save it and point your editor's YAML\n"
                     "support at it for completion and checks while typing.\n";
        return 0;
      }
      std::cout << RecipeJsonSchema() << "\n";
      return 0;
    }
    if (cmd == "docs") {
      if (help) {
        std::cout << "Usage: keyonce docs DIR\n\nWrites the generated reference into DIR: "
                     "reference.md (every recipe\n"
                     "key and step) and connectors/*.md (every connector's settings).\n";
        return 0;
      }
      if (argc < 3) {
        std::cerr << "Usage: keyonce docs DIR\n";
        return 2;
      }
      Status s = WriteReferenceDocs(argv[2]);
      if (!s.ok()) {
        std::cerr << s.message() << "\n";
        return 1;
      }
      return 0;
    }
    if (cmd == "connectors") {
      if (help) {
        std::cout << "Usage: keyonce connectors\n\nLists the connectors with their roles (source, "
                     "target, lookup).\n"
                     "Their settings: docs/connectors/ or `keyonce docs DIR`.\n";
        return 0;
      }
      return CmdConnectors();
    }
    if (cmd == "version" || cmd == "--version") {
      std::cout << "keyonce " << kVersion << "\n";
      return 0;
    }
  } catch (const std::bad_alloc&) {
    std::cerr << "keyonce " << cmd
              << ": out of memory (an allocation failed); give keyonce more memory or lower the "
                 "recipe's limits\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "keyonce " << cmd << ": internal error: " << MaskCpr(e.what()) << "\n";
    return 1;
  }
  std::vector<std::string> cmds = {"run",    "validate", "test",       "history", "quarantine",
                                   "audit",  "state",    "serve",      "token",   "schedule",
                                   "schema", "docs",     "connectors", "version"};
  std::cerr << "keyonce: unknown command '" << cmd << "'" << DidYouMean(cmd, cmds)
            << " (keyonce --help)\n";
  return 2;
}
