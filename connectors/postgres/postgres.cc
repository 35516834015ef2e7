// The `postgres` connector: settings (declared once, as data) and
// registration. Source and lookup: postgres_source.cc; target:
// postgres_target.cc; connecting and values: pg_util.cc.

#include "connectors/postgres/pg_util.h"
#include "connectors/postgres/postgres_internal.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::postgres {
namespace {

std::vector<FieldSpec> With(std::vector<FieldSpec> more) {
  std::vector<FieldSpec> fields = ConnectionFields();
  fields.insert(fields.end(), more.begin(), more.end());
  return fields;
}

ConnectorDef PostgresConnector() {
  ConnectorDef def;
  def.name = "postgres";
  def.summary =
      "PostgreSQL databases (libpq): a query as a source or lookup, a table as a target with "
      "exactly-once batches.";

  ComponentSpec source;
  source.summary =
      "Runs one query in a read-only session and streams its rows as records (single-row mode: "
      "memory stays flat). Types: integers and floats become numbers; numeric a number when at "
      "most 15 significant digits (integers up to 18 digits) are exact, else text, so no digit "
      "is lost; boolean true/false; json/jsonb parsed; bytea base64 text; date, time and "
      "timestamp ISO text (2026-11-02 10:30:00, timestamptz with the session's offset); NULL "
      "null; anything else (uuid, arrays, ...) PostgreSQL's text form.";
  source.fields = With({
      FieldSpec::Tmpl("query", TemplateContext::kSql)
          .Roots(kRootsStatic)
          .Required()
          .Describe(
              "The SELECT to run. Each {{ expression }} becomes a bound parameter ($1, $2, ...; "
              "never SQL text), so params and the watermark are safe to use.")
          .Example("\"SELECT id, cpr, name, updated_at FROM employees WHERE updated_at > {{ "
                   "state.watermark | default('1970-01-01') }} ORDER BY updated_at\""),
  });
  source.example_yaml =
      "source:\n"
      "  type: postgres\n"
      "  connection: \"host=db.kommune.local dbname=hr user=keyonce\"\n"
      "  password: \"{{ secrets.hr_db_password }}\"\n"
      "  query: >-\n"
      "    SELECT id, cpr, name, updated_at FROM employees\n"
      "    WHERE updated_at > {{ state.watermark | default('1970-01-01') }} ORDER BY updated_at\n"
      "  watermark: \"{{ record.updated_at }}\"\n";
  def.source = std::move(source);

  ComponentSpec target;
  target.summary =
      "Inserts or upserts one row per record (prepared once). Each batch is one transaction, "
      "committed together with a checkpoint row (table keyonce_checkpoint), so after a crash "
      "keyonce knows exactly which batches arrived: nothing lost, nothing twice. Each record is "
      "written inside a savepoint: a record that breaks a constraint or holds invalid input is "
      "quarantined while the rest of its batch commits. If the connection is lost mid-batch, "
      "keyonce reconnects and writes the batch's earlier records again in a new transaction "
      "(when their `returning` values come back different, e.g. new serial ids, the batch "
      "fails instead and the next run redoes it).";
  target.fields = With({
      FieldSpec::String("schema")
          .Describe("Schema of the table (and of keyonce_checkpoint). Default: the first schema "
                    "on the search_path (usually public).")
          .Example("payroll"),
      FieldSpec::String("table")
          .Required()
          .Describe("Table to write to (quoted as an identifier: case and spaces are kept).")
          .Example("absence"),
      FieldSpec::TmplMap("columns")
          .Required()
          .Describe(
              "Column -> template. Values are bound as parameters, never spliced into SQL; "
              "PostgreSQL converts them to the column's type (text '7.5' into numeric, "
              "'2026-11-02' into date; true/false into boolean; lists and objects as JSON text "
              "into json/jsonb). A value the column cannot take quarantines the record.")
          .Example("{cpr: \"{{ record.cpr }}\", hours: \"{{ record.hours }}\"}"),
      FieldSpec::Enum("mode", {"insert", "upsert"})
          .Default("upsert")
          .Describe(
              "upsert: INSERT ... ON CONFLICT (key_columns) DO UPDATE (needs a unique index or "
              "primary key on exactly key_columns). insert: always a new row; a record whose "
              "content changed is inserted again.")
          .Example("upsert"),
      FieldSpec::StringList("key_columns")
          .Describe("Columns (among columns) that identify a row. Required for upsert; with insert "
                    "they let keyonce check whether an interrupted write arrived.")
          .Example("[cpr, from_date]"),
      FieldSpec::Bool("create_table")
          .Default("false")
          .Describe("Create the table when missing, every column of type text, with a unique index "
                    "on key_columns. For other types create the table yourself.")
          .Example("true"),
      FieldSpec::StringList("returning")
          .Describe(
              "Columns to read back from the written row (RETURNING); they form the reply for "
              "capture templates: {{ reply.<column> }}, e.g. a serial id.")
          .Example("[id]"),
  });
  target.example_yaml =
      "- name: payroll\n"
      "  type: postgres\n"
      "  connection: \"host=db.kommune.local dbname=payroll user=keyonce sslmode=verify-full\"\n"
      "  password: \"{{ secrets.payroll_db_password }}\"\n"
      "  sslrootcert: certs/db-ca.pem\n"
      "  table: absence\n"
      "  mode: upsert\n"
      "  key_columns: [cpr, from_date]\n"
      "  columns:\n"
      "    cpr: \"{{ record.cpr }}\"\n"
      "    from_date: \"{{ record.from_date }}\"\n"
      "    hours: \"{{ record.hours }}\"\n"
      "  returning: [id]\n"
      "  capture:\n"
      "    absence_id: \"{{ reply.id }}\"\n";
  def.target = std::move(target);

  ComponentSpec lookup;
  lookup.summary =
      "Runs a query with the key bound as a parameter (prepared once) and returns its first "
      "row, or none. Typed like the source.";
  lookup.fields = With({
      FieldSpec::Tmpl("query", TemplateContext::kSql)
          .Roots(kRootsStatic | kRootKey)
          .Required()
          .Describe("The SELECT that finds the row for {{ key }} (the value asked for); each {{ }} "
                    "becomes a bound parameter. Only the first row is used.")
          .Example("\"SELECT code, name FROM departments WHERE code = {{ key }}\""),
  });
  lookup.example_yaml =
      "tables:\n"
      "  departments:\n"
      "    type: postgres\n"
      "    connection: \"host=db.kommune.local dbname=hr user=keyonce\"\n"
      "    password: \"{{ secrets.hr_db_password }}\"\n"
      "    query: \"SELECT code, name FROM departments WHERE code = {{ key }}\"\n";
  def.lookup = std::move(lookup);

  def.make_source = MakeSource;
  def.make_target = MakeTarget;
  def.make_lookup = MakeLookup;
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::postgres

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::postgres::PostgresConnector());
