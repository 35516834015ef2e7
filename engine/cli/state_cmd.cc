#include "cli/state_cmd.h"

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "state/store.h"

namespace keyonce {
namespace {

const char* kStateHelp = R"(Usage: keyonce state init FILE
       keyonce state check [FILE]

The state file holds the journal that makes runs exactly-once. keyonce
refuses a state file that is not a whole keyonce state file (empty, foreign,
damaged, cut short, incomplete) or one the targets do not know, instead of
starting an empty journal in its place and writing every record again.

  init FILE    make a new, empty state file on purpose (its folder must exist;
               an existing file is never replaced, unless it is empty). Targets
               written under another state file are refused until a run with
               --adopt takes them over (docs/reliability.md).
  check FILE   verify a state file: its identity (state id, schema version),
               SQLite's integrity check, and per recipe its runs, journal rows
               per target, unfinished batches and open quarantine. Changes
               nothing. FILE defaults to $KEYONCE_STATE or ./keyonce-state.db.

Exit codes: 0 done, or the file is sound; 1 refused or damaged; 2 usage error.
)";

int Init(const std::string& file) {
  Status st = StateStore::Init(file);
  if (!st.ok()) {
    std::cerr << "keyonce state init: " << st.message() << "\n";
    return 1;
  }
  auto store = StateStore::Open(file, true);
  std::cout << "Made a new state file " << file;
  if (store.ok()) std::cout << " (state id " << (*store)->state_id() << ")";
  std::cout << ".\n";
  return 0;
}

int Check(const std::string& file) {
  auto store = StateStore::Open(file, true);
  if (!store.ok()) {
    std::cerr << "keyonce state check: " << store.status().message() << "\n";
    return 1;
  }
  auto report = (*store)->Check();
  if (!report.ok()) {
    std::cerr << "keyonce state check: " << report.status().message() << "\n";
    return 1;
  }
  const auto& r = *report;
  std::cout << "State file " << file << "\n"
            << "  state id:       " << r.state_id << "\n"
            << "  schema version: " << r.schema_version
            << (r.schema_version < kStateSchemaVersion ? " (upgraded at the next run)" : "") << "\n"
            << "  created:        " << (r.created_at.empty() ? "before keyonce 0.2" : r.created_at)
            << "\n"
            << "  size:           " << r.bytes << " bytes\n"
            << "  integrity:      " << r.integrity << "\n"
            << "  audit rows:     " << r.audit_rows << "\n";
  if (r.recipes.empty()) std::cout << "  no recipe has run with it yet\n";
  for (const auto& c : r.recipes) {
    std::cout << "  recipe " << c.recipe << ": runs: " << c.runs
              << (c.last_run.empty() ? "" : " (last " + c.last_run + ")")
              << ", journal: " << c.journal << " record(s)";
    if (c.pending_batches) std::cout << ", " << c.pending_batches << " unfinished batch(es)";
    if (c.open_quarantine) std::cout << ", " << c.open_quarantine << " open in quarantine";
    std::cout << "\n";
    for (const auto& [name, rows] : c.targets) {
      std::cout << "    target " << name << ": " << rows << " journal row(s)\n";
    }
  }
  if (r.integrity != "ok") {
    std::cerr << "keyonce state check: " << file
              << " is damaged; restore it from a backup (with its -wal file, if it has one).\n";
    return 1;
  }
  return 0;
}

}  // namespace

int StateCommand(int argc, char** argv, int start) {
  if (argc <= start || !std::strcmp(argv[start], "--help") || !std::strcmp(argv[start], "-h")) {
    std::cout << kStateHelp;
    return argc <= start ? 2 : 0;
  }
  std::string sub = argv[start];
  if (argc > start + 2) {
    std::cerr << "keyonce state " << sub << ": give one state file (keyonce state --help)\n";
    return 2;
  }
  if (sub == "init") {
    if (argc != start + 2) {
      std::cerr << "keyonce state init: give the new state file (keyonce state --help)\n";
      return 2;
    }
    return Init(argv[start + 1]);
  }
  if (sub == "check") {
    return Check(argc == start + 2 ? std::string(argv[start + 1])
                                   : StateStore::DefaultPath().string());
  }
  std::cerr << "keyonce state: unknown subcommand '" << sub << "' (init or check)\n";
  return 2;
}

}  // namespace keyonce
