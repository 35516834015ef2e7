#include "cli/audit_cmd.h"

#include <algorithm>
#include <boost/json/object.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "recipe/loader.h"
#include "state/audit.h"
#include "state/privacy.h"
#include "state/store.h"
#include "template/cpr.h"

namespace keyonce {
namespace {

const char* kAuditHelp = R"(Usage: keyonce audit --subject CPR|- [options]
       keyonce audit --run ID | --recipe NAME [options]

Lists the audit log, oldest first: every operation the robots performed on
personal data (a record read from a source, created or updated in a target,
looked up in a table with its criterion), who started which run with which
parameters, and quarantined records edited, retried or dismissed.

For a citizen's access request give the person's CPR number: keyonce turns
it into the person's pseudonymous reference with the state file's key and
lists every operation on that person. The CPR number itself is never
stored or printed; the reference is.

Options:
  --subject CPR       the person, DDMMYY-SSSS or 10 digits; `--subject -` reads
                      it from standard input, so it stays out of the shell
                      history (e.g. `keyonce audit --subject - < cpr.txt`)
  --run ID            the operations of one run
  --recipe NAME       the operations of one recipe (its name or its file)
  --from DATE         from this day (YYYY-MM-DD, UTC) or time (2026-11-02T08:00Z)
  --to DATE           up to and including this day or time
  --limit N           at most N operations
  --state FILE        the state store (default: $KEYONCE_STATE or ./keyonce-state.db)
  --log-format FORMAT text (default: a table) or json (one object per line)

Rows are kept for the retention set on `keyonce run`/`keyonce serve`
(--audit-retention-days, default 180 days).

Exit codes: 0 listed (also when nothing matched); 1 the state store cannot
be read; 2 usage error or a malformed CPR number.
)";

const std::vector<std::string> kValued = {"--subject", "--run",   "--recipe", "--from",
                                          "--to",      "--limit", "--state",  "--log-format"};
const std::vector<std::string> kFlags = {"--help", "-h"};

// The shape of what was typed, without the characters themselves.
std::string MaskAll(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(c == '-' || c == ' ' ? c : 'x');
  return out.size() > 20 ? out.substr(0, 20) + "..." : out;
}

// A stored-time bound: "YYYY-MM-DD" stays a day; a time gets seconds and
// milliseconds (".000" for a start, ".999" for an end) and "Z".
std::optional<std::string> TimeBound(const std::string& s, bool end) {
  static const std::regex day(R"(^\d{4}-\d{2}-\d{2}$)");
  static const std::regex time(R"(^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?(\.\d{3})?Z?$)");
  if (std::regex_match(s, day)) return s;
  std::smatch m;
  if (!std::regex_match(s, m, time)) return std::nullopt;
  std::string out = m[1].str() + "T" + m[2].str();
  out += m[3].matched ? m[3].str() : (end ? ":59" : ":00");
  out += m[4].matched ? m[4].str() : (end ? ".999" : ".000");
  return out + "Z";
}

std::string Pad(const std::string& s, size_t width) {
  // Width in characters (UTF-8 continuation bytes take no room).
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return chars >= width ? s : s + std::string(width - chars, ' ');
}

}  // namespace

int AuditCommand(int argc, char** argv, int start) {
  std::map<std::string, std::string> opts;
  bool help = false;
  for (int i = start; i < argc; ++i) {
    std::string a = argv[i], value;
    bool has_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    if (std::find(kFlags.begin(), kFlags.end(), a) != kFlags.end()) {
      help = true;
      continue;
    }
    if (std::find(kValued.begin(), kValued.end(), a) == kValued.end()) {
      std::cerr << "keyonce audit: unknown "
                << (a.rfind("-", 0) == 0 ? "option " + a : std::string("argument"))
                << " (keyonce audit --help)\n";
      return 2;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::cerr << "keyonce audit: " << a << " needs a value\n";
        return 2;
      }
      value = argv[++i];
    }
    opts[a] = value;
  }
  if (help) {
    std::cout << kAuditHelp;
    return 0;
  }
  auto get = [&](const char* k) -> std::optional<std::string> {
    auto it = opts.find(k);
    if (it == opts.end()) return std::nullopt;
    return it->second;
  };
  if (!get("--subject") && !get("--run") && !get("--recipe")) {
    std::cerr
        << "keyonce audit: give --subject CPR, --run ID or --recipe NAME (keyonce audit --help)\n";
    return 2;
  }
  const bool json = get("--log-format").value_or("text") == "json";
  if (auto f = get("--log-format"); f && *f != "json" && *f != "text") {
    std::cerr << "keyonce audit: --log-format must be text or json\n";
    return 2;
  }

  AuditQuery q;
  if (auto r = get("--run")) {
    static const std::regex num(R"(^[1-9][0-9]{0,17}$)");
    if (!std::regex_match(*r, num)) {
      std::cerr << "keyonce audit: --run must be a run id (a positive whole number)\n";
      return 2;
    }
    q.run = std::stoll(*r);
  }
  if (auto r = get("--recipe")) {
    q.recipe = *r;
    if (r->find('/') != std::string::npos || r->ends_with(".yaml") || r->ends_with(".yml")) {
      Diagnostics d;
      auto recipe = LoadRecipe(*r, &d);
      if (!recipe) {
        std::cerr << "keyonce audit: --recipe: cannot read the recipe file " << *r << "\n";
        return 2;
      }
      q.recipe = recipe->name;
    }
  }
  for (const char* name : {"--from", "--to"}) {
    auto v = get(name);
    if (!v) continue;
    auto bound = TimeBound(*v, std::string(name) == "--to");
    if (!bound) {
      std::cerr << "keyonce audit: " << name
                << " must be a day (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM[:SS]Z)\n";
      return 2;
    }
    (std::string(name) == "--from" ? q.from : q.to) = *bound;
  }
  if (auto l = get("--limit")) {
    static const std::regex num(R"(^[1-9][0-9]{0,8}$)");
    if (!std::regex_match(*l, num)) {
      std::cerr << "keyonce audit: --limit must be a positive whole number\n";
      return 2;
    }
    q.limit = std::stoi(*l);
  }

  // The CPR number: checked before the state store is opened; never echoed.
  std::optional<std::string> cpr;
  if (auto s = get("--subject")) {
    std::string text = *s;
    if (text == "-") {
      std::getline(std::cin, text);
    }
    cpr = NormalizeSubjectCpr(text);
    if (!cpr) {
      std::string trimmed = text;
      trimmed.erase(0, trimmed.find_first_not_of(" \t"));
      trimmed.erase(trimmed.find_last_not_of(" \t\r\n") + 1);
      if (cpr::IsCprShape(trimmed)) {
        std::cerr << "keyonce audit: --subject is not a CPR number: its first six digits are not a "
                     "valid birth date (DDMMYY)\n";
      } else {
        std::cerr << "keyonce audit: --subject is not a CPR number (got '" << MaskAll(trimmed)
                  << "', " << trimmed.size() << " characters); give DDMMYY-SSSS or 10 digits\n";
      }
      return 2;
    }
  }

  std::filesystem::path state =
      get("--state") ? std::filesystem::path(*get("--state")) : StateStore::DefaultPath();
  std::error_code ec;
  if (!std::filesystem::exists(state, ec)) {
    std::cerr << "keyonce audit: there is no state store at " << state.string()
              << " (give --state FILE or set KEYONCE_STATE)\n";
    return 1;
  }
  auto store = StateStore::Open(state, true);
  if (!store.ok()) {
    std::cerr << "keyonce audit: " << MaskCpr(store.status().message()) << "\n";
    return 1;
  }
  if (cpr) {
    Pseudonymizer p((*store)->pseudonym_key());
    q.subject = SubjectReference(p, *cpr);
    cpr->assign(cpr->size(), '0');  // not kept around longer than needed
  }
  auto rows = QueryAudit(**store, q);
  if (!rows.ok()) {
    std::cerr << "keyonce audit: " << MaskCpr(rows.status().message()) << "\n";
    return 1;
  }

  if (json) {
    if (!q.subject.empty()) std::cerr << "subject reference: " << q.subject << "\n";
    for (const auto& e : *rows) {
      boost::json::object o{
          {"time", e.time},           {"robot", e.robot},     {"actor", e.actor},
          {"recipe", e.recipe},       {"run", e.run},         {"system", e.system},
          {"operation", e.operation}, {"subject", e.subject}, {"detail", MaskCpr(e.detail)}};
      if (!e.state.empty()) o["state"] = e.state;
      std::cout << ToJson(o) << "\n";
    }
    return 0;
  }

  if (!q.subject.empty()) {
    std::cout << "Subject reference " << q.subject << ": " << rows->size() << " operation(s)";
  } else {
    std::cout << rows->size() << " operation(s)";
  }
  if (!q.recipe.empty()) std::cout << " in recipe " << q.recipe;
  if (q.run) std::cout << " in run " << q.run;
  std::cout << (rows->empty() ? ".\n" : ":\n");
  if (rows->empty()) return 0;
  std::vector<std::vector<std::string>> table = {
      {"time", "robot", "actor", "recipe", "run", "system", "operation", "subject", "detail"}};
  for (const auto& e : *rows) {
    std::string detail = MaskCpr(e.detail);
    if (!e.state.empty()) detail += (detail.empty() ? "(" : " (") + e.state + ")";
    table.push_back({e.time, e.robot, e.actor, e.recipe, e.run ? std::to_string(e.run) : "-",
                     e.system, e.operation, e.subject.empty() ? "-" : e.subject, detail});
  }
  // The subject column is left out when every row is about the one asked for.
  const bool subject_col = q.subject.empty();
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& r : table) {
    for (size_t c = 0; c < r.size(); ++c) {
      size_t chars = 0;
      for (unsigned char ch : r[c]) chars += (ch & 0xC0) != 0x80;
      width[c] = std::max(width[c], chars);
    }
  }
  for (const auto& r : table) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      if (c == 7 && !subject_col) continue;
      line += c + 1 == r.size() ? r[c] : Pad(r[c], width[c]) + "  ";
    }
    std::cout << line << "\n";
  }
  return 0;
}

}  // namespace keyonce
