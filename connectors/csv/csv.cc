// The csv connector: its settings, declared once as data, and registration.
//
// Source: streams a CSV file (any size) record by record; malformed rows are
// quarantined with the line number while the run goes on.
// Target: appends rows to a CSV file, or swaps in a new file atomically.
// Lookup: a small CSV table loaded into memory, matched on one column.
#include "connectors/common/after_read.h"
#include "connectors/common/fields.h"
#include "connectors/common/loaded_table.h"
#include "connectors/common/net/remote_file.h"
#include "connectors/csv/csv_connector.h"

namespace keyonce::connectors::csv {
namespace {

FieldSpec PathField(const std::string& what, const std::string& example,
                    const std::string& template_example) {
  return FieldSpec::Tmpl("path", TemplateContext::kText)
      .Roots(kRootsStatic)
      .Required()
      .Describe(what +
                " Relative paths are resolved against the recipe's folder. May use params, "
                "run and state, e.g. `" + template_example + "`; not record fields.")
      .Example(example);
}

FieldSpec DelimiterField(const std::string& what) {
  return FieldSpec::String("delimiter")
      .Default("\",\"")
      .Describe(what + " One ASCII character: \",\" (default), \";\" (Danish Excel exports), \"|\" "
                       "or a tab written \"\\t\".")
      .Example("\";\"");
}

std::vector<FieldSpec> ReadFields(const std::string& path_what, const std::string& path_example) {
  return {
      PathField(path_what, path_example, "in/fravaer_{{ params.month }}.csv"),
      DelimiterField("Character between fields."),
      FieldSpec::String("quote")
          .Default("'\"'")
          .Describe("Character that encloses a field holding the delimiter, line breaks or "
                    "quotes (a quote inside is written twice, as in RFC 4180). A quote in the "
                    "middle of an unquoted field is kept as text. \"\" turns quoting off.")
          .Example("'\"'"),
      FieldSpec::Enum("encoding", {"auto", "utf-8", "windows-1252", "iso-8859-1"})
          .Default("auto")
          .Describe("Character encoding of the file; values are converted to UTF-8. auto: a "
                    "UTF-8 byte order mark or valid UTF-8 means UTF-8, anything else "
                    "windows-1252 (what older Windows programs export). With utf-8, a row with "
                    "invalid UTF-8 is rejected, naming the line and column.")
          .Example("windows-1252"),
      FieldSpec::Bool("header")
          .Default("true")
          .Describe("true: the first row (after skip_rows) names the fields; names are trimmed "
                    "and must be unique and non-empty (an empty last name, from a delimiter at "
                    "the end of every line, is ignored). false: every row is data and `columns` "
                    "names the fields.")
          .Example("false"),
      FieldSpec::StringList("columns")
          .Describe("Field names, in file order. With header: false they name the fields; with "
                    "header: true they rename the header's columns one by one (same count).")
          .Example("[employee_id, cpr, from_date, to_date]"),
      FieldSpec::Int("skip_rows")
          .Default("0")
          .Describe("Number of physical lines to skip before the header (or the first row), "
                    "e.g. a title and an export date above the table.")
          .Example("2"),
      FieldSpec::Bool("trim")
          .Default("false")
          .Describe("Remove spaces and tabs around each value (also around quoted fields). "
                    "Header names are always trimmed.")
          .Example("true"),
      FieldSpec::Int("max_record_lines")
          .Default("1000")
          .Describe("Most physical lines one quoted field may span. A quoted field running "
                    "longer (or to the end of the file) is taken as an unbalanced quote: the "
                    "row that opened it is rejected and reading resumes on the next line.")
          .Example("50"),
  };
}

ComponentSpec SourceSpec() {
  ComponentSpec spec;
  spec.summary =
      "Reads a CSV file row by row (RFC 4180, any size); each row becomes a record of text "
      "fields, blank lines are skipped and malformed rows are quarantined with their line "
      "number.";
  spec.fields = ReadFields("CSV file to read.", "in/fravaer.csv");
  spec.fields.front().description += " " + net::RemotePathNote(/*target=*/false);
  for (auto& f : AfterReadFields(/*remote=*/true)) spec.fields.push_back(std::move(f));
  for (auto& f : net::RemoteFields()) spec.fields.push_back(std::move(f));
  spec.example_yaml =
      "source:\n"
      "  type: csv\n"
      "  path: in/fravaer_{{ params.month }}.csv\n"
      "  delimiter: \";\"\n"
      "  encoding: windows-1252\n"
      "  skip_rows: 1\n"
      "  trim: true\n";
  return spec;
}

ComponentSpec TargetSpec() {
  ComponentSpec spec;
  spec.summary =
      "Writes records as rows of a CSV file: appended in place, or swapped in atomically at "
      "the end of the run.";
  spec.fields = {
      PathField("CSV file to write.", "out/loen_import.csv",
                "out/loen_{{ run.started_at | format_date('%Y-%m') }}.csv"),
      FieldSpec::Enum("mode", {"append", "replace"})
          .Default("append")
          .Describe("append: rows are added to the end of the file as the run goes; after a "
                    "crash the file is cut back to its last committed size. replace: the "
                    "existing rows plus this run's rows are written to a temporary file beside "
                    "it, which replaces the file only when the run ends (and only if rows were "
                    "written), so readers never see a half-written file.")
          .Example("replace"),
      FieldSpec::TmplMap("columns", TemplateContext::kText)
          .Describe("Header name -> template giving the column's text, in column order. "
                    "Without it, the record's fields are written as they are (the header "
                    "comes from the existing file, or else from the first record). When the "
                    "file already has a header, it must match.")
          .Example("{Medarbejdernr: \"{{ record.employee_id }}\", "
                   "Fra dato: \"{{ record.from_date | format_date('%d-%m-%Y') }}\"}"),
      DelimiterField("Character between fields."),
      FieldSpec::Enum("encoding", {"utf-8", "windows-1252", "iso-8859-1"})
          .Default("utf-8")
          .Describe("Character encoding to write. windows-1252 for older systems that cannot "
                    "read UTF-8; a record with a character it cannot hold (e.g. Ł) is "
                    "rejected, naming the column.")
          .Example("windows-1252"),
      FieldSpec::Bool("bom")
          .Default("false")
          .Describe("Start a new UTF-8 file with a byte order mark (helps Excel recognise "
                    "UTF-8). Only with encoding: utf-8.")
          .Example("true"),
      FieldSpec::Enum("line_ending", {"crlf", "lf"})
          .Default("crlf")
          .Describe("Line break after each row: crlf (\\r\\n, RFC 4180 and Windows) or lf (\\n).")
          .Example("lf"),
      FieldSpec::Bool("formula_guard")
          .Default("true")
          .Describe("Protect against spreadsheet formula injection: a value starting with = + - "
                    "@ (or a tab) that is not a number gets a leading apostrophe, so Excel shows "
                    "it as text instead of running it.")
          .Example("false"),
      FieldSpec::Bool("fsync")
          .Default("true")
          .Describe("Make each commit durable on disk (fdatasync) before the run counts the "
                    "rows as written. Turn off only for scratch files.")
          .Example("false"),
      CreateDirsField(),
  };
  spec.fields.front().description += " " + net::RemotePathNote(/*target=*/true);
  for (auto& f : net::RemoteFields()) spec.fields.push_back(std::move(f));
  spec.example_yaml =
      "- name: payroll_file\n"
      "  type: csv\n"
      "  path: out/loen_import.csv\n"
      "  mode: append\n"
      "  delimiter: \";\"\n"
      "  encoding: windows-1252\n"
      "  columns:\n"
      "    Medarbejdernr: \"{{ record.employee_id }}\"\n"
      "    Fra dato: \"{{ record.from_date | format_date('%d-%m-%Y') }}\"\n"
      "    Timer: \"{{ record.hours | format_number(2, ',') }}\"\n";
  return spec;
}

ComponentSpec LookupSpec() {
  ComponentSpec spec;
  spec.summary = "A small CSV table loaded into memory, matched on one column (e.g. departments).";
  spec.fields = ReadFields("CSV file holding the table.", "tables/afdelinger.csv");
  spec.fields.insert(spec.fields.begin() + 1, LoadedTableKeyField("afdeling_id"));
  spec.example_yaml =
      "departments:\n"
      "  type: csv\n"
      "  path: tables/afdelinger.csv\n"
      "  delimiter: \";\"\n"
      "  key: afdeling_id\n";
  return spec;
}

}  // namespace

ConnectorDef CsvConnector() {
  ConnectorDef def;
  def.name = "csv";
  def.summary = "CSV files: read rows, write rows, look rows up.";
  def.source = SourceSpec();
  def.target = TargetSpec();
  def.lookup = LookupSpec();
  def.make_source = MakeSource;
  def.make_target = MakeTarget;
  def.make_lookup = MakeLookup;
  return def;
}

}  // namespace keyonce::connectors::csv

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::csv::CsvConnector());
