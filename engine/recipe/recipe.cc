#include "recipe/recipe_spec.h"

namespace keyonce {

const ComponentSpec* RoleSpec(const ConnectorDef& def, std::string_view role) {
  const std::optional<ComponentSpec>* spec = role == "source"   ? &def.source
                                             : role == "target" ? &def.target
                                             : role == "lookup" ? &def.lookup
                                                                : nullptr;
  return spec && *spec ? &**spec : nullptr;
}

const std::vector<FieldSpec>& RecipeFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::String("recipe")
          .Required()
          .Describe("The recipe's name: lower case letters, digits, '-' and '_'. Runs, the journal "
                    "and the quarantine are kept per name, so renaming a recipe starts afresh.")
          .Example("sick-leave-to-payroll"),
      FieldSpec::String("description")
          .Describe("What the recipe does, for people.")
          .Example("Sygefravær fra vagtplan til løn"),
      FieldSpec::String("label")
          .Describe("A short title for people, shown on the caseworkers' page "
                    "(default: the description, else the name).")
          .Example("Sygefravær til løn"),
      FieldSpec::Object("schedule", ScheduleFields())
          .Describe("When `keyonce serve` runs the recipe unattended (cron, in a time zone)."),
      FieldSpec::Enum("overlap", {"queue", "refuse"})
          .Default("queue")
          .Describe("A trigger while this recipe is already running or queued in `keyonce serve`: "
                    "queue it (runs after the current one) or refuse it (HTTP 409)."),
      FieldSpec::ObjectMap("params", ParamFields())
          .Describe("Typed parameters for on-demand runs (`--param name=value`), read as "
                    "{{ params.name }}."),
      FieldSpec::ObjectMap("secrets", SecretFields())
          .Describe("Secrets the recipe needs, resolved at run time from an environment variable "
                    "or a file; read as {{ secrets.name }}. Never write a secret in a recipe."),
      FieldSpec::ObjectMap("tables", TableCommonFields())
          .Describe("Lookup tables (e.g. a CSV file), used by the `lookup` step and the "
                    "`lookup(table, column)` filter. Each is a connector with `type`."),
      FieldSpec::Object("source", SourceCommonFields())
          .Required()
          .Describe("Where records are read from: a connector with `type` and its settings."),
      FieldSpec::Tmpl("key")
          .Required()
          .Roots(kRootsRecord)
          .Describe("The record's identity, evaluated after the steps. Two records with the same "
                    "key are the same record: a rerun never writes it twice.")
          .Example("\"{{ record.cpr }}/{{ record.from_date }}\""),
      FieldSpec::Tmpl("subject")
          .Roots(kRootsRecord)
          .Describe("The person a record is about, for the audit log (evaluated after the steps; "
                    "only its pseudonymous reference is stored). Default: the key when it is a "
                    "CPR number, else no subject.")
          .Example("\"{{ record.cpr }}\""),
      FieldSpec::ObjectList("steps", {})
          .Describe("Ordered steps that shape each record: set, map, drop, filter, validate, "
                    "lookup. Each item is a mapping with one key, the step's name."),
      FieldSpec::ObjectList("targets", TargetCommonFields())
          .Required()
          .Describe("Ordered targets; each record is written to each target in this order, so a "
                    "later target can use {{ captures.<earlier target>.<name> }}."),
      FieldSpec::ObjectList("notify", NotifyCommonFields())
          .Describe("Messages about the run itself (e.g. a summary mail to IT when records were "
                    "quarantined or the run failed): each is a target connector written once per "
                    "run with the run's summary as the record."),
      FieldSpec::Object("on_error", ErrorFields())
          .Describe("Retries and what counts as a permanent error."),
      FieldSpec::Int("batch_records")
          .Default("5000")
          .Describe("Records per journal batch: larger is faster, smaller redoes less after a "
                    "crash. Memory holds two batches: one written while the next is read."),
      FieldSpec::Object("limits", LimitFields())
          .Describe("Resource limits of a run, so that a hostile or broken input fails with a "
                    "clear message instead of exhausting memory or running forever."),
  };
  return f;
}

const std::vector<FieldSpec>& ScheduleFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::String("cron")
          .Required()
          .Describe("Five cron fields (minute hour day-of-month month day-of-week; ranges, steps, "
                    "lists, JAN-DEC, SUN-SAT) or @hourly/@daily/@weekly/@monthly/@yearly, in "
                    "`timezone`. Daylight-saving rules: docs/operations.md.")
          .Example("\"30 2 * * *\""),
      FieldSpec::String("timezone")
          .Describe("IANA time zone the cron fields are read in (default: the service's "
                    "`--timezone`, Europe/Copenhagen unless set).")
          .Example("Europe/Copenhagen"),
      FieldSpec::Enum("missed", {"skip", "run_once"})
          .Default("skip")
          .Describe("Runs missed while the service was down: skip them, or run once at start-up "
                    "(never a burst of catch-up runs)."),
  };
  return f;
}

const std::vector<FieldSpec>& ParamFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::Enum("type", {"string", "int", "date", "enum", "bool"})
          .Default("string")
          .Describe("The value's type; a date is YYYY-MM-DD (or DD-MM-YYYY, converted)."),
      FieldSpec::String("label")
          .Describe("Label shown to the person starting the run.")
          .Example("Cpr-nummer"),
      FieldSpec::String("help").Describe("Help text shown below the field."),
      FieldSpec::Bool("required").Default("false").Describe("Whether a value must be given."),
      FieldSpec::Any("default").Describe("Value used when none is given."),
      FieldSpec::String("pattern")
          .Describe("Regular expression the whole value must match.")
          .Example("'^\\d{6}-?\\d{4}$'"),
      FieldSpec::StringList("values").Describe("The allowed values of an enum parameter."),
  };
  return f;
}

const std::vector<FieldSpec>& SecretFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::String("env")
          .Describe("Environment variable holding the secret.")
          .Example("PAYROLL_TOKEN"),
      FieldSpec::String("file")
          .Describe("File holding the secret (trailing newline removed), e.g. "
                    "a systemd credential.")
          .Example("/run/credentials/keyonce/payroll_token"),
      FieldSpec::String("description").Describe("What the secret is for."),
  };
  return f;
}

const std::vector<FieldSpec>& SourceCommonFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::String("type").Required().Describe("The connector, e.g. csv, jsonl, sqlite."),
      FieldSpec::Tmpl("watermark")
          .Roots(kRootRecord)
          .Describe("Incremental reads: evaluated per record; the largest value of a successful "
                    "run is stored and offered to the next run as {{ state.watermark }}.")
          .Example("\"{{ record.updated_at }}\""),
  };
  return f;
}

const std::vector<FieldSpec>& TargetCommonFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::String("name")
          .Required()
          .Describe("The target's name in the journal, history and captures. Keep it stable.")
          .Example("payroll"),
      FieldSpec::String("type").Required().Describe("The connector, e.g. csv, jsonl, sqlite."),
      FieldSpec::Tmpl("when")
          .Describe("Write to this target only when the condition is true.")
          .Example("\"{{ record.hours > 0 }}\""),
      FieldSpec::Enum("on_change", {"update", "skip", "insert_new"})
          .Describe("What to do with a record written before whose content has changed: update "
                    "it in place (targets that can), skip it, or write it again as new. Default: "
                    "update where the target can, else insert_new."),
      FieldSpec::Enum("in_doubt", {"check", "rewrite", "quarantine"})
          .Default("check")
          .Describe("A write interrupted by a crash whose outcome the target cannot tell: check "
                    "asks the target (if it can; else rewrite for idempotent targets and "
                    "quarantine for others), rewrite writes again, quarantine hands it to a "
                    "person."),
      FieldSpec::TmplMap("capture")
          .Roots(kRootsRecord | kRootReply)
          .Describe("Values to keep from the target's reply, readable by later targets as "
                    "{{ captures.<name>.<capture> }}.")
          .Example("{case_id: \"{{ reply.id }}\"}"),
  };
  return f;
}

const std::vector<FieldSpec>& NotifyCommonFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::String("name")
          .Required()
          .Describe("The notification's name in the run log.")
          .Example("it-mail"),
      FieldSpec::String("type").Required().Describe("The connector, e.g. smtp."),
      FieldSpec::StringList("on")
          .Describe("When to send: any of failed, quarantined (records were quarantined or are "
                    "in doubt), completed (no problems), interrupted; or always. Default: failed "
                    "and quarantined.")
          .Example("[failed, quarantined]"),
  };
  return f;
}

const std::vector<FieldSpec>& TableCommonFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::String("type").Required().Describe("The connector, e.g. csv."),
  };
  return f;
}

const std::vector<FieldSpec>& LimitFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::Int("record_bytes")
          .Default("16777216")
          .Describe("Largest record, in bytes, as read (a CSV row, an XML element, a JSON line, "
                    "a database row). A larger one is quarantined without being held whole."),
      FieldSpec::Int("reply_bytes")
          .Default("16777216")
          .Describe("Largest reply from a server, in bytes, for connectors that do not set their "
                    "own max_reply_bytes. A larger reply fails that request (permanent)."),
      FieldSpec::Int("records_in_memory")
          .Default("100000")
          .Describe("Most records held in memory at once: batch_records may not exceed it, and a "
                    "lookup table that is loaded whole (csv) may not have more rows."),
      FieldSpec::Int("template_bytes")
          .Default("16777216")
          .Describe("Longest text, in bytes, that one template, or one filter or `~` in it, "
                    "may make; filters check the size they would make before they make it (a "
                    "list from split counts its items too). Longer fails that record "
                    "(quarantined)."),
      FieldSpec::Int("run_seconds")
          .Default("0")
          .Describe("Longest a run may take, in seconds; 0 means no limit. When it is reached the "
                    "run stops after the batch in flight, as interrupted, and the next run goes "
                    "on from there.")
          .Example("21600"),
      FieldSpec::Int("columns")
          .Default("16384")
          .Describe("Most fields (columns) one record may have. A CSV file whose header (or "
                    "`columns`) has more fails the run; a record from another source with more "
                    "is quarantined. The default is a spreadsheet's widest sheet.")
          .Example("100000"),
      FieldSpec::Int("batch_bytes")
          .Default("67108864")
          .Describe("Most bytes the records of a run's batches may take in memory (estimated: "
                    "their fields, names and what is kept for the quarantine). Two batches are "
                    "in memory (one written while the next is read), each within half of this: a "
                    "batch is written when it holds batch_records records or half this many "
                    "bytes, whichever comes first, so wide or large records are written a few at "
                    "a time; a single larger record is written alone, and the next is read once "
                    "it is written."),
  };
  return f;
}

const std::vector<FieldSpec>& ErrorFields() {
  static const std::vector<FieldSpec> f = {
      FieldSpec::Int("retry_attempts")
          .Default("3")
          .Describe("Attempts in all for a write, a check of a write in doubt, a lookup or a "
                    "notification that fails with a transient error (timeout, busy, 503)."),
      FieldSpec::Number("backoff_seconds")
          .Default("1")
          .Describe("Wait before the first retry; doubles each attempt, with jitter."),
      FieldSpec::Number("backoff_max_seconds")
          .Default("60")
          .Describe("Longest wait between tries."),
      FieldSpec::StringList("permanent")
          .Describe("Regular expressions: an error message matching one is never retried and "
                    "quarantines the record at once.")
          .Example("['UNIQUE constraint failed']"),
  };
  return f;
}

const std::vector<StepSpec>& StepSpecs() {
  static const std::vector<StepSpec> steps = [] {
    std::vector<StepSpec> s;
    s.push_back({"set", "Adds or overwrites fields; each value is a template.",
                 FieldSpec::TmplMap("set").Roots(kRootsRecord),
                 "- set:\n    cpr: \"{{ record.CPR | cpr }}\"\n    from_date: \"{{ record.Fra | "
                 "date('dk') }}\""});
    s.push_back({"map", "Replaces the record with exactly these fields.",
                 FieldSpec::TmplMap("map").Roots(kRootsRecord),
                 "- map:\n    cpr: \"{{ record.CPR | cpr }}\"\n    hours: \"{{ record.Timer | "
                 "number(',') }}\""});
    s.push_back(
        {"drop", "Removes fields.", FieldSpec::StringList("drop"), "- drop: [Navn, Adresse]"});
    s.push_back(
        {"filter",
         "Keeps only records for which `when` is true; the others are counted as "
         "filtered, not quarantined.",
         FieldSpec::Object("filter", {FieldSpec::Tmpl("when")
                                          .Required()
                                          .Roots(kRootsRecord)
                                          .Describe("Condition; the record is kept when true."),
                                      FieldSpec::String("reason").Describe(
                                          "Why records are left out, for the run log.")}),
         "- filter:\n    when: \"{{ record.hours > 0 }}\"\n    reason: no hours"});
    s.push_back(
        {"validate",
         "Checks fields; a record that breaks a rule is quarantined with the field and the rule "
         "(never the value).",
         FieldSpec::ObjectMap(
             "validate",
             {FieldSpec::Bool("required").Default("false").Describe("The field must be non-empty."),
              FieldSpec::Enum("type", {"string", "int", "number", "date", "cpr", "email"})
                  .Describe("The text must be of this kind (cpr: DDMMYY-SSSS or 10 digits with a "
                            "valid birth date; a failed modulus-11 check only warns)."),
              FieldSpec::String("pattern").Describe(
                  "Regular expression the whole value must match."),
              FieldSpec::Number("min").Describe("Smallest allowed number."),
              FieldSpec::Number("max").Describe("Largest allowed number."),
              FieldSpec::Int("max_length").Describe("Longest allowed text, in characters."),
              FieldSpec::StringList("one_of").Describe("The allowed values."),
              FieldSpec::String("message").Describe("Reason shown instead of the default.")}),
         "- validate:\n    cpr: {required: true, type: cpr}\n    hours: {type: number, min: 0, "
         "max: 24}"});
    s.push_back(
        {"lookup", "Finds a row in a table by key and sets fields from it.",
         FieldSpec::Object(
             "lookup",
             {FieldSpec::String("table").Required().Describe("A table declared under `tables`."),
              FieldSpec::Tmpl("key").Required().Roots(kRootsRecord).Describe("The value to find."),
              FieldSpec::TmplMap("set")
                  .Roots(kRootsRecord | kRootLookup)
                  .Describe("Fields to set; {{ lookup.<column> }} is the row found."),
              FieldSpec::Enum("on_missing", {"quarantine", "skip", "keep"})
                  .Default("quarantine")
                  .Describe("No row found: quarantine the record, skip it (filtered), or keep it "
                            "unchanged."),
              FieldSpec::Tmpl("require")
                  .Roots(kRootsRecord | kRootLookup)
                  .Describe("A condition on the row found (e.g. \"{{ lookup.resident }}\"); when "
                            "false, the record is routed by `otherwise`."),
              FieldSpec::Enum("otherwise", {"quarantine", "skip"})
                  .Default("quarantine")
                  .Describe("When `require` is false: quarantine the record for a person, or skip "
                            "it (filtered) with `reason`."),
              FieldSpec::String("reason").Describe(
                  "Why a record failing `require` is skipped or quarantined; shown in "
                  "the run log and the quarantine (no field values).")}),
         "- lookup:\n    table: residents\n    key: \"{{ record.cpr }}\"\n    require: \"{{ "
         "lookup.municipality == '0101' }}\"\n    otherwise: skip\n    reason: not resident in "
         "the municipality\n    set: {address: \"{{ lookup.address }}\"}"});
    return s;
  }();
  return steps;
}

const StepSpec* FindStep(const std::string& name) {
  for (const auto& s : StepSpecs()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace keyonce
