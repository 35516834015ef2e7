// The `jsonl` and `json` connectors: their settings (declared once, as data)
// and their registration. Sources are in json_sources.cc, targets in
// json_targets.cc.

#include <charconv>
#include <cmath>

#include "connectors/common/after_read.h"
#include "connectors/common/fields.h"
#include "connectors/common/net/remote_file.h"
#include "connectors/jsonl/json_internal.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::json {

size_t CharCount(std::string_view s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n && i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++count;
  }
  return count;
}

Result<Value> RenderBody(const Settings& settings, const WriteOp& op) {
  if (const StructureTemplate* body = settings.Structure("body")) {
    if (op.scope == nullptr) return Status::Internal("write without a scope");
    auto v = body->Evaluate(*op.scope);
    if (!v.ok()) return v.status().Wrap("rendering body");
    return v;
  }
  if (op.record == nullptr) return Status::Internal("write without a record");
  return Value(*op.record);
}

namespace {

constexpr const char* kMonthlyPath = "out/{{ params.month }}.jsonl";

FieldSpec BodyField() {
  return FieldSpec::Structure("body")
      .Describe(
          "The JSON value written for each record: any YAML whose strings are templates; a "
          "string that is exactly one {{ expression }} keeps the value's type. Absent: the whole "
          "record as a JSON object.")
      .Example(
          "{cpr: \"{{ record.cpr }}\", hours: \"{{ record.hours }}\", period: {from: \"{{ "
          "record.from_date }}\", to: \"{{ record.to_date }}\"}}");
}

// Files on a server (sftp://, ftp://, ...): the path's note and the
// remote settings are added to a component, and the factories wrapped.
void AddRemote(ComponentSpec& spec, bool target) {
  spec.fields.front().description += " " + net::RemotePathNote(target);
  if (!target) {
    for (auto& f : AfterReadFields(/*remote=*/true)) spec.fields.push_back(std::move(f));
  }
  for (auto& f : net::RemoteFields()) spec.fields.push_back(std::move(f));
}

auto RemoteOrLocal(Result<std::unique_ptr<Source>> (*make)(const Settings&)) {
  return [make](const Settings& s) -> Result<std::unique_ptr<Source>> {
    return net::MakeFileSource(s, make);
  };
}

auto RemoteOrLocal(TargetFormat format) {
  return [format](const Settings& s) -> Result<std::unique_ptr<Target>> {
    auto local = [format](const Settings& ls) { return MakeFileTarget(ls, format); };
    if (!net::IsRemotePath(s)) return local(s);
    // Kept: jsonl append and json (its elements); jsonl replace starts empty.
    bool keep =
        format == TargetFormat::kJsonArray || s.String("mode").value_or("append") == "append";
    return net::MakeRemoteTarget(s, local, keep);
  };
}

ConnectorDef JsonlConnector() {
  ConnectorDef def;
  def.name = "jsonl";
  def.summary = "JSON Lines files: one JSON object per line.";

  ComponentSpec source;
  source.summary =
      "Reads a JSON Lines file, one object per line, streaming. Blank lines are skipped; a line "
      "that is not a JSON object (or not UTF-8) is quarantined with its line and column and the "
      "run goes on.";
  source.fields = {
      FilePathField("JSON Lines file to read (UTF-8).", "in/absence.jsonl", kMonthlyPath),
  };
  AddRemote(source, /*target=*/false);
  source.example_yaml =
      "source:\n"
      "  type: jsonl\n"
      "  path: in/absence-{{ params.month }}.jsonl\n";
  def.source = std::move(source);

  ComponentSpec target;
  target.summary =
      "Writes one compact JSON value per line. mode append adds to the file and after a crash "
      "cuts off lines that were never committed; mode replace writes a new file that takes the "
      "old one's place atomically at the end of the run.";
  target.fields = {
      FilePathField("JSON Lines file to write.", "out/payroll.jsonl", kMonthlyPath),
      BodyField(),
      FieldSpec::Enum("mode", {"append", "replace"})
          .Default("append")
          .Describe(
              "append: add lines to the end of the file (created if missing). replace: the run's "
              "lines become the file's whole content, swapped in atomically at the end of a run "
              "that wrote something; readers never see a half-written file.")
          .Example("append"),
      FieldSpec::Bool("fsync")
          .Default("true")
          .Describe(
              "append: force each batch to disk before it counts as done (safe across power "
              "loss). false is faster; a crash of the machine may then lose the last batches.")
          .Example("true"),
      CreateDirsField(/*on_by_default=*/true),
  };
  AddRemote(target, /*target=*/true);
  target.example_yaml =
      "- name: archive\n"
      "  type: jsonl\n"
      "  path: out/absence-{{ run.id }}.jsonl\n"
      "  mode: append\n"
      "  body:\n"
      "    cpr: \"{{ record.cpr }}\"\n"
      "    hours: \"{{ record.hours }}\"\n";
  def.target = std::move(target);

  def.make_source = RemoteOrLocal(MakeJsonlSource);
  def.make_target = RemoteOrLocal(TargetFormat::kJsonLines);
  return def;
}

ConnectorDef JsonConnector() {
  ConnectorDef def;
  def.name = "json";
  def.summary = "JSON files holding an array of objects.";

  ComponentSpec source;
  source.summary =
      "Reads the objects of a JSON array, streaming (the file is never held whole in memory). "
      "The array is the whole file or, with records_path, a member inside it. An element that "
      "is not an object is quarantined; a malformed file fails the run with its line and column.";
  source.fields = {
      FilePathField("JSON file to read (UTF-8).", "in/employees.json", kMonthlyPath),
      FieldSpec::String("records_path")
          .Describe(
              "When the file is an object: the dotted path of the member that holds the array of "
              "records, e.g. data.items for {\"data\": {\"items\": [...]}}. Absent: the file "
              "itself is the array.")
          .Example("data.items"),
  };
  AddRemote(source, /*target=*/false);
  source.example_yaml =
      "source:\n"
      "  type: json\n"
      "  path: in/employees.json\n"
      "  records_path: data.items\n";
  def.source = std::move(source);

  ComponentSpec target;
  target.summary =
      "Writes a JSON array file. The file's existing elements are kept and the run's objects "
      "added after them; the new file takes the old one's place atomically at the end of a run "
      "that wrote something.";
  target.fields = {
      FilePathField("JSON file to write; if it exists it must hold an array.", "out/employees.json",
                    kMonthlyPath),
      BodyField(),
      CreateDirsField(/*on_by_default=*/true),
  };
  AddRemote(target, /*target=*/true);
  target.example_yaml =
      "- name: export\n"
      "  type: json\n"
      "  path: out/employees.json\n"
      "  body:\n"
      "    id: \"{{ record.id }}\"\n"
      "    name: \"{{ record.name }}\"\n";
  def.target = std::move(target);

  def.make_source = RemoteOrLocal(MakeJsonSource);
  def.make_target = RemoteOrLocal(TargetFormat::kJsonArray);
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::json

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::json::JsonlConnector());
KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::json::JsonConnector());
