// The audit log: every operation a robot performs on personal data.
//
// One row per operation (a record read from a source, created or updated in
// a target, looked up in a table with its criterion; a run started; a
// record quarantined, and a quarantined record edited, retried or
// dismissed), kept in the table
// `audit` of the state file. A row names the time (UTC, milliseconds), the
// robot, the person or token that started the run (actor), the recipe, the
// run, the system, the operation and the pseudonymous reference of the
// person the record is about (the subject). It never holds a CPR number or a
// field value: the subject is a keyed hash of the CPR number (the state
// file's pseudonym key), so `keyonce audit --subject CPR` can find every
// operation on a person for an access request while the table alone names
// no one.
//
// The rows a run makes for its records (reads, lookups, writes) are stored
// as chunks (table `audit_chunks`): the rows of one operation on one system
// in one transaction share one row, whose blob lists each row's subject
// (sorted, for a binary search) and detail. Appending a record's rows then
// costs microseconds instead of an indexed row each; QueryAudit returns
// them as rows like any other.
//
// Writes to a target are logged in the same state-store transaction as
// their write intent and carry the journal batch: a row whose batch is
// rolled back (the write did not happen) is removed, one whose batch is in
// doubt is listed as such, so the log never claims a write that did not
// happen and a crash loses none.
//
// Thread-safety: as the StateStore the sqlite3 handle belongs to.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keyonce/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keyonce {

class Pseudonymizer;
class StateStore;
class Template;
struct Scope;

// Operations (AuditEntry::operation).
inline constexpr const char* kAuditRead = "read";
inline constexpr const char* kAuditCreate = "create";
inline constexpr const char* kAuditUpdate = "update";
inline constexpr const char* kAuditLookup = "lookup";
inline constexpr const char* kAuditStartRun = "start_run";
inline constexpr const char* kAuditQuarantine = "quarantine";  // a record kept for a person
inline constexpr const char* kAuditQuarantineEdit = "quarantine_edit";
inline constexpr const char* kAuditQuarantineRetry = "quarantine_retry";
inline constexpr const char* kAuditQuarantineDismiss = "quarantine_dismiss";

// Default retention of audit rows (RunOptions::audit_retention_days).
inline constexpr int kAuditRetentionDays = 180;

struct AuditEntry {
  int64_t id = 0;
  std::string time;   // UTC ISO 8601 with ms, "2026-11-27T03:56:26.123Z"; "" = now
  std::string robot;  // the identity the operation ran as, e.g. "keyonce@host"
  std::string actor;  // who started the run (a token's name or a Unix user)
  std::string recipe;
  int64_t run = 0;        // 0 = not part of a run
  std::string system;     // "source:csv", a target's or table's name in the recipe
  std::string operation;  // kAudit*
  std::string subject;    // pseudonymous reference of the person, "" = none
  std::string detail;     // short, never personal data (criterion, trigger, connector)
  int64_t batch = 0;      // journal batch of a write (0 = none); see the header comment
  // Filled by QueryAudit: "" when certain, else "pending" (the run was
  // interrupted before its batch was confirmed; the next run settles it) or
  // "in doubt" (the target could not tell whether the write arrived).
  std::string state;
};

struct AuditQuery {
  std::string subject{};  // a reference ("ref-..."), "" = any
  std::string recipe{};   // "" = any
  int64_t run = 0;        // 0 = any
  std::string from{};     // inclusive; a date (YYYY-MM-DD) or a time as stored; "" = open
  std::string to{};       // inclusive, as `from`
  int limit = 0;          // 0 = no limit
};

// Creates the audit table and its indexes when missing.
Status EnsureAuditSchema(StateStore& store);

// Appends one row (own statement; for occasional rows such as the service's
// quarantine actions). Fills entry time when empty.
Status AppendAudit(StateStore& store, const AuditEntry& entry);

// Rows matching `query`, oldest first. A state file without an audit table
// yields none.
Result<std::vector<AuditEntry>> QueryAudit(StateStore& store, const AuditQuery& query);

// Deletes rows older than `days` days (days >= 1).
Status PruneAudit(StateStore& store, int days);

// PruneAudit, unless the state file was pruned with the same retention in
// the last 24 hours (a meta row remembers). *pruned: rows deleted.
Status PruneAuditIfDue(StateStore& store, int days, int64_t* pruned = nullptr);

// The current time as the audit log stores it.
std::string AuditTime();

// The 10 digits of a CPR number given as "DDMMYY-SSSS" or "DDMMYYSSSS"
// (surrounding blanks ignored) with a valid birth date; nullopt otherwise.
std::optional<std::string> NormalizeSubjectCpr(std::string_view text);

// The first valid CPR number standing alone in `text` (e.g. a record key
// "0101851233/2026-11-02"), as 10 digits.
std::optional<std::string> FindCpr(std::string_view text);

// The subject reference of a CPR number (10 digits): the same for the same
// person and state file, computable from the CPR alone.
std::string SubjectReference(Pseudonymizer& pseudonymizer, std::string_view cpr10);

// The subject of a record: `subject` (the recipe's template, if it has one)
// evaluated in `scope` (a CPR number), else the first CPR number in `key`.
// "" when the record has none.
std::string RecordSubject(const Template* subject, const Scope& scope, std::string_view key,
                          Pseudonymizer& pseudonymizer);

// The subject of a record kept in the quarantine (a JSON object): the first
// field holding a valid CPR number. "" when none does.
std::string StoredRecordSubject(Pseudonymizer& pseudonymizer, std::string_view record_json);

// `Unix user name` of this process, for actors of command-line runs.
std::string LocalUserName();
// "keyonce@<hostname>".
std::string DefaultRobotName();

// Rows of one operation on one system (and, for writes, one journal batch)
// made in one transaction, stored as one chunk (AuditWriter::Save).
class AuditChunk {
 public:
  AuditChunk(std::string system, std::string operation, int64_t batch = 0)
      : system_(std::move(system)), operation_(std::move(operation)), batch_(batch) {}
  // Adds a row about `subject`; returns its index for Remove, or -1 when
  // `subject` is not a reference ("ref-" and 12 letters) and needs a row of
  // its own (AuditWriter::Append).
  int Add(std::string_view subject, std::string_view detail);
  // Takes back a row (a write that did not happen); Save stores the change.
  void Remove(int index);
  // Rows added and not removed.
  size_t size() const { return live_; }
  const std::string& system() const { return system_; }
  const std::string& operation() const { return operation_; }
  int64_t batch() const { return batch_; }

 private:
  friend class AuditWriter;
  struct Row {
    uint64_t subject;  // the reference's 48 bits
    uint32_t detail;   // index into details_
    bool removed;
  };
  // The stored form: rows as (subject, detail index) sorted by subject, and
  // the details, each once.
  std::string EncodeRows() const;
  std::string EncodeDetails() const;

  std::string system_, operation_;
  int64_t batch_ = 0;
  std::vector<Row> rows_;
  std::vector<std::string> details_;
  size_t live_ = 0;
  int64_t id_ = 0;  // its row once saved
  bool dirty_ = false;
};

// The runner's writer: prepared statements and the fields every row of one
// run shares.
class AuditWriter {
 public:
  static Result<std::unique_ptr<AuditWriter>> Open(StateStore& store, std::string robot,
                                                   std::string actor, std::string recipe,
                                                   int64_t run);
  ~AuditWriter();
  AuditWriter(const AuditWriter&) = delete;
  AuditWriter& operator=(const AuditWriter&) = delete;

  // Appends a row (inside the caller's transaction); returns its id.
  Result<int64_t> Append(std::string_view time, std::string_view system, std::string_view operation,
                         std::string_view subject, std::string_view detail, int64_t batch = 0);
  // Removes a row appended for a write that then did not happen.
  Status Remove(int64_t id);
  // Removes the rows of a batch that was rolled back (it did not arrive).
  Status DiscardBatch(int64_t batch);
  // Stores `chunk` (inside the caller's transaction) at `time`: a new one
  // is inserted; one saved before is rewritten after Remove, or deleted
  // when no row is left. A chunk without rows is not stored.
  Status Save(std::string_view time, AuditChunk& chunk);

 private:
  AuditWriter() = default;
  // Binds the columns every row shares (1-7: time, robot, actor, recipe,
  // run, system, operation) of an insert into `audit` or `audit_chunks`.
  void BindCommon(sqlite3_stmt* s, std::string_view time, std::string_view system,
                  std::string_view operation);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* insert_chunk_ = nullptr;
  sqlite3_stmt* update_chunk_ = nullptr;
  sqlite3_stmt* delete_chunk_ = nullptr;
  sqlite3_stmt* discard_chunks_ = nullptr;
  sqlite3_stmt* remove_ = nullptr;
  sqlite3_stmt* discard_ = nullptr;
  std::string robot_, actor_, recipe_;
  int64_t run_ = 0;
};

// Lookups in the recipe's tables made for the record being processed, so
// they can be logged with its subject. The lookup step tells the tables its
// criterion before asking (a lookup from the `lookup` filter has none).
class LookupAuditSink {
 public:
  virtual ~LookupAuditSink() = default;
  // The template that made the key of the next Find (a lookup step's
  // `key`, logged as its source text "key: {{ record.Afdeling }}").
  virtual void NextCriterion(const Template* key) = 0;
};

}  // namespace keyonce
