// The `sqlite` connector: settings (declared once, as data) and registration.
// Source and lookup: sqlite_source.cc; target: sqlite_target.cc.

#include "connectors/common/fields.h"
#include "connectors/sqlite/sqlite_internal.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::sqlite {
namespace {

FieldSpec BusyField() {
  return FieldSpec::Number("busy_timeout_seconds")
      .Default("10")
      .Describe(
          "How long to wait for a lock held by another connection before giving up; a write "
          "that still finds the database busy fails as transient and is retried.")
      .Example("10");
}

ConnectorDef SqliteConnector() {
  ConnectorDef def;
  def.name = "sqlite";
  def.summary = "SQLite database files: a query as a source, a table as a target or lookup.";

  ComponentSpec source;
  source.summary =
      "Runs one read-only query and streams its rows as records (column name -> value, typed as "
      "SQLite stores them; blobs as base64 text). The database is opened read-only.";
  source.fields = {
      FilePathField("Database file to read.", "data/hr.sqlite"),
      FieldSpec::Tmpl("query", TemplateContext::kSql)
          .Roots(kRootsStatic)
          .Required()
          .Describe("The SELECT to run. Each {{ expression }} becomes a bound parameter (never SQL "
                    "text), so params are safe to use: WHERE updated_at > {{ state.watermark }}.")
          .Example("\"SELECT cpr, name, updated_at FROM employees WHERE dept = {{ params.dept }} "
                   "ORDER BY id\""),
      BusyField(),
  };
  source.example_yaml =
      "source:\n"
      "  type: sqlite\n"
      "  path: data/hr.sqlite\n"
      "  query: >-\n"
      "    SELECT id, cpr, name, updated_at FROM employees\n"
      "    WHERE updated_at > {{ state.watermark | default('') }} ORDER BY updated_at\n";
  def.source = std::move(source);

  ComponentSpec target;
  target.summary =
      "Inserts or upserts one row per record. Each batch is one transaction, committed together "
      "with a checkpoint row (table keyonce_checkpoint) in the same database, so after a crash "
      "keyonce knows exactly which batches arrived: nothing lost, nothing twice. Without capture "
      "or returning, 32 rows go to one statement (faster); a statement that fails is rolled back "
      "to a savepoint and its rows written one by one, so a failing row is quarantined alone.";
  target.fields = {
      FilePathField(
          "Database file to write. WAL mode is switched on, checkpointed every 64 MiB of WAL "
          "(not SQLite's 4 MiB; a batch of upserts changes pages all over a large table), so "
          "the -wal file beside it may reach 64 MiB during a run.",
          "out/payroll.sqlite"),
      FieldSpec::String("table")
          .Required()
          .Describe("Table to write to (quoted as an identifier; any name without control "
                    "characters).")
          .Example("absence"),
      FieldSpec::TmplMap("columns")
          .Required()
          .Describe(
              "Column -> template. A template that is exactly one {{ expression }} keeps the "
              "value's type (number, text, null; true/false become 1/0; lists and objects JSON "
              "text). Values are bound as parameters, never spliced into SQL.")
          .Example("{cpr: \"{{ record.cpr }}\", hours: \"{{ record.hours }}\"}"),
      FieldSpec::Enum("mode", {"insert", "upsert"})
          .Default("upsert")
          .Describe(
              "upsert: insert, or update the row whose key_columns match (needs a UNIQUE index "
              "or PRIMARY KEY on exactly key_columns). insert: always a new row; a record whose "
              "content changed is inserted again.")
          .Example("upsert"),
      FieldSpec::StringList("key_columns")
          .Describe("Columns (among columns) that identify a row. Required for upsert; with insert "
                    "they let keyonce check whether an interrupted write arrived.")
          .Example("[cpr, from_date]"),
      FieldSpec::Bool("create_table")
          .Default("false")
          .Describe(
              "Create the table when missing, with the columns (no declared types) and a UNIQUE "
              "index on key_columns. The database file (and its folder) is created too. false: the "
              "table must exist.")
          .Example("true"),
      FieldSpec::StringList("returning")
          .Describe(
              "Columns to read back from the written row; they form the reply, with rowid, for "
              "capture templates: {{ reply.rowid }}, {{ reply.<column> }}.")
          .Example("[id]"),
      BusyField(),
      FieldSpec::Enum("synchronous", {"normal", "full"})
          .Default("full")
          .Describe(
              "full: each batch is on disk when committed (survives power loss). normal: faster; "
              "a power loss may undo the last batches (keyonce then redoes them).")
          .Example("full"),
  };
  target.example_yaml =
      "- name: payroll\n"
      "  type: sqlite\n"
      "  path: out/payroll.sqlite\n"
      "  table: absence\n"
      "  mode: upsert\n"
      "  key_columns: [cpr, from_date]\n"
      "  create_table: true\n"
      "  columns:\n"
      "    cpr: \"{{ record.cpr }}\"\n"
      "    from_date: \"{{ record.from_date }}\"\n"
      "    hours: \"{{ record.hours }}\"\n"
      "  returning: [id]\n"
      "  capture:\n"
      "    row: \"{{ reply.rowid }}\"\n";
  def.target = std::move(target);

  ComponentSpec lookup;
  lookup.summary =
      "Finds the row of a table whose key column equals a value (SELECT * ... WHERE key = ?, "
      "prepared once). The database is opened read-only.";
  lookup.fields = {
      FilePathField("Database file to read.", "data/hr.sqlite"),
      FieldSpec::String("table").Required().Describe("Table to search.").Example("departments"),
      FieldSpec::String("key").Required().Describe("Column holding the key.").Example("code"),
      BusyField(),
  };
  lookup.example_yaml =
      "tables:\n"
      "  departments:\n"
      "    type: sqlite\n"
      "    path: data/hr.sqlite\n"
      "    table: departments\n"
      "    key: code\n";
  def.lookup = std::move(lookup);

  def.make_source = MakeSource;
  def.make_target = MakeTarget;
  def.make_lookup = MakeLookup;
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::sqlite

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::sqlite::SqliteConnector());
