#include "recipe/loader.h"

#include <date/tz.h>
#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "recipe/recipe_spec.h"
#include "recipe/user_regex.h"
#include "schedule/cron.h"

namespace keyonce {
namespace {

std::vector<std::string> ConnectorNames(const char* role) {
  std::vector<std::string> out;
  for (const auto* d : Registry::Global().All()) {
    if (RoleSpec(*d, role)) out.push_back(d->name);
  }
  return out;
}

// Duplicate keys are silently merged by YAML parsers; here they are errors.
void CheckDuplicates(const YAML::Node& node, SpecWalker& w, const std::string& path) {
  if (node.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "";
      if (!seen.insert(k).second) w.Error(kv.first, path + (path.empty() ? "" : ".") + k, "duplicate key '" + k + "'");
      CheckDuplicates(kv.second, w, path + (path.empty() ? "" : ".") + k);
    }
  } else if (node.IsSequence()) {
    size_t i = 0;
    for (const auto& c : node) CheckDuplicates(c, w, path + "[" + std::to_string(i++) + "]");
  }
}

// False once more than *budget nodes were seen, counting aliases as the walkers
// below expand them: a recipe is small, and an alias bomb ("billion laughs")
// must be refused instead of walked for hours.
bool WithinNodeBudget(const YAML::Node& node, size_t* budget) {
  if (*budget == 0) return false;
  --*budget;
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!WithinNodeBudget(kv.first, budget) || !WithinNodeBudget(kv.second, budget)) return false;
    }
  } else if (node.IsSequence()) {
    for (const auto& c : node) {
      if (!WithinNodeBudget(c, budget)) return false;
    }
  }
  return true;
}

// Finds `captures.NAME` in every string of a section and checks NAME.
void CheckCaptures(const YAML::Node& node, SpecWalker& w, const std::string& path,
                   const std::vector<std::string>& earlier, const std::string& self) {
  static const std::regex re(R"(captures\s*\.\s*([A-Za-z_][A-Za-z0-9_-]*))");
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    for (std::sregex_iterator it(s.begin(), s.end(), re), end; it != end; ++it) {
      std::string name = (*it)[1];
      if (std::find(earlier.begin(), earlier.end(), name) != earlier.end()) continue;
      std::string msg = name == self ? "a target cannot read its own captures"
                                     : "'captures." + name + "': no earlier target is named '" +
                                           name + "'" + DidYouMean(name, earlier);
      w.ErrorAt(node, static_cast<size_t>(it->position(0)), path, msg);
    }
  } else if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string k = kv.first.Scalar();
      if (k == "capture") continue;  // capture templates read `reply`
      CheckCaptures(kv.second, w, path + "." + k, earlier, self);
    }
  } else if (node.IsSequence()) {
    size_t i = 0;
    for (const auto& c : node) CheckCaptures(c, w, path + "[" + std::to_string(i++) + "]", earlier, self);
  }
}

const ConnectorDef* FindConnector(const YAML::Node& section, const char* role, SpecWalker& w,
                                  const std::string& path) {
  if (!section.IsMap()) return nullptr;
  YAML::Node t = section["type"];
  if (!t || !t.IsScalar()) return nullptr;  // reported as a missing required key
  const ConnectorDef* d = Registry::Global().Find(t.Scalar());
  std::vector<std::string> names = ConnectorNames(role);
  if (!d) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    w.Error(t, path + ".type", "unknown connector '" + t.Scalar() + "'" + DidYouMean(t.Scalar(), names) +
                                   " (" + role + " connectors: " + list + ")");
    return nullptr;
  }
  if (!RoleSpec(*d, role)) {
    w.Error(t, path + ".type", "connector '" + d->name + "' cannot be used as a " + role);
    return nullptr;
  }
  return d;
}

std::vector<FieldSpec> Concat(const std::vector<FieldSpec>& a, const std::vector<FieldSpec>& b) {
  std::vector<FieldSpec> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

const Template* CommonTmpl(const Settings& s, const std::string& name) { return s.Tmpl(name); }

// Walks a connector section; without a known connector only `type` problems are reported.
Settings WalkComponent(SpecWalker& w, const YAML::Node& node, const ConnectorDef* d,
                       const std::vector<FieldSpec>& common, const char* role,
                       const std::string& path) {
  if (const ComponentSpec* own = d ? RoleSpec(*d, role) : nullptr) {
    return w.Walk(node, Concat(common, own->fields), path);
  }
  if (!node.IsMap()) {
    w.Error(node, path, "expected a mapping with `type` and the connector's settings");
  } else if (!node["type"]) {
    w.Error(node, path, "missing required key 'type'");
  }
  return Settings();
}

}  // namespace

// The errors reported so far. A connector's own checks of a section (make_*)
// run only when walking it found none: they would say the same again.
size_t ErrorCount(const Diagnostics& d) {
  size_t n = 0;
  for (const auto& x : d.items()) n += !x.warning;
  return n;
}

std::shared_ptr<const Recipe> LoadRecipe(const std::filesystem::path& file, Diagnostics* diags) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    diags->Add({file.string(), 0, 0, "", "cannot read the file", false});
    return nullptr;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::filesystem::path base = file.has_parent_path() ? file.parent_path() : ".";
  return LoadRecipeText(file.string(), ss.str(), base, diags);
}

std::shared_ptr<const Recipe> LoadRecipeText(const std::string& name, const std::string& text,
                                             const std::filesystem::path& base_dir,
                                             Diagnostics* diags) {
  SpecWalker w(name, text, diags);
  w.base_dir = base_dir;
  if (size_t nul = text.find('\0'); nul != std::string::npos) {
    size_t line_start = text.rfind('\n', nul) == std::string::npos ? 0 : text.rfind('\n', nul) + 1;
    size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + nul, '\n'));
    diags->Add({name, static_cast<int>(line), static_cast<int>(nul - line_start + 1), "",
                "the file holds a NUL byte; a recipe is a YAML text file", false});
    return nullptr;
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    diags->Add({name, e.mark.line + 1, e.mark.column + 1, "",
                "YAML syntax: nested more than " + std::to_string(e.depth()) + " levels deep",
                false});
    return nullptr;
  } catch (const YAML::Exception& e) {
    diags->Add({name, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax: " + e.msg, false});
    return nullptr;
  }
  if (!root.IsMap()) {
    diags->Add({name, 1, 1, "", "a recipe is a YAML mapping (recipe:, source:, key:, targets:, ...)", false});
    return nullptr;
  }
  constexpr size_t kMaxNodes = 100000;
  if (size_t budget = kMaxNodes; !WithinNodeBudget(root, &budget)) {
    diags->Add({name, 1, 1, "",
                "the recipe expands to more than 100000 YAML values (aliases that repeat aliases?)",
                false});
    return nullptr;
  }
  CheckDuplicates(root, w, "");
  auto r = std::make_shared<Recipe>();
  r->file = name;
  r->base_dir = base_dir;

  // Params and secrets first: templates elsewhere are checked against them.
  if (YAML::Node p = root["params"]; p && p.IsMap()) {
    for (const auto& kv : p) {
      std::string pname = kv.first.Scalar();
      std::string path = "params." + pname;
      Settings s = w.Walk(kv.second, ParamFields(), path);
      ParamDecl d;
      d.name = pname;
      d.type = s.String("type").value_or("string");
      d.label = s.String("label").value_or(pname);
      d.help = s.String("help").value_or("");
      d.required = s.Bool("required").value_or(false);
      if (const Value* dv = s.Raw("default"); dv && !dv->is_null()) d.default_value = ToText(*dv);
      d.pattern = s.String("pattern").value_or("");
      if (!d.pattern.empty()) {
        std::regex re;
        if (auto bad = CompileUserRegex(d.pattern, &re)) {
          w.Error(kv.second["pattern"], path + ".pattern", *bad);
        } else {
          d.pattern_re = std::move(re);
        }
      }
      d.values = s.StringList("values");
      if (d.type == "enum" && d.values.empty()) {
        w.Error(kv.second, path, "an enum parameter needs `values`");
      }
      w.params.push_back(pname);
      r->params.push_back(std::move(d));
    }
  }
  if (YAML::Node p = root["secrets"]; p && p.IsMap()) {
    for (const auto& kv : p) {
      std::string sname = kv.first.Scalar();
      Settings s = w.Walk(kv.second, SecretFields(), "secrets." + sname);
      SecretDecl d;
      d.name = sname;
      d.env = s.String("env").value_or("");
      d.file = s.String("file").value_or("");
      d.description = s.String("description").value_or("");
      if (d.env.empty() == d.file.empty()) {
        w.Error(kv.second, "secrets." + sname, "give exactly one of `env` or `file`");
      }
      w.secrets.push_back(sname);
      r->secrets.push_back(std::move(d));
    }
  }

  Settings top = w.Walk(root, RecipeFields(), "",
                        {"params", "secrets", "tables", "source", "steps", "targets", "notify",
                         "on_error", "schedule", "limits"});
  r->name = top.String("recipe").value_or("");
  static const std::regex name_re("^[a-z0-9][a-z0-9_-]*$");
  if (!r->name.empty() && !std::regex_match(r->name, name_re)) {
    w.Error(root["recipe"], "recipe", "use lower case letters, digits, '-' and '_' (it names files and URLs)");
  }
  r->description = top.String("description").value_or("");
  r->label = top.String("label").value_or("");
  r->refuse_overlap = top.String("overlap").value_or("queue") == "refuse";
  if (const Template* k = top.Tmpl("subject")) r->subject = *k;
  if (YAML::Node sch = root["schedule"]; sch) {
    Settings s = w.Walk(sch, ScheduleFields(), "schedule");
    ScheduleDef def;
    def.cron = s.String("cron").value_or("");
    def.timezone = s.String("timezone").value_or("");
    def.run_missed_once = s.String("missed").value_or("skip") == "run_once";
    if (!def.cron.empty()) {
      if (auto c = CronSchedule::Parse(def.cron); !c.ok()) w.Error(sch["cron"], "schedule.cron", c.status().message());
    }
    if (!def.timezone.empty()) {
      try {
        date::locate_zone(def.timezone);
      } catch (const std::exception&) {
        w.Error(sch["timezone"], "schedule.timezone",
                "unknown time zone '" + def.timezone + "' (an IANA name such as Europe/Copenhagen)");
      }
    }
    r->schedule = std::move(def);
  }
  if (const Template* k = top.Tmpl("key")) r->key = *k;
  r->batch_records = static_cast<int>(top.Int("batch_records").value_or(5000));
  if (r->batch_records < 1 || r->batch_records > 1000000) {
    w.Error(root["batch_records"], "batch_records", "must be between 1 and 1000000");
  }
  if (YAML::Node l = root["limits"]; l) {
    Settings s = w.Walk(l, LimitFields(), "limits");
    // Each positive; a byte limit at least 1 KiB (anything less would refuse
    // ordinary records, and a typo like `16` for 16 MiB should say so).
    auto bytes = [&](const char* name, size_t* out) {
      if (auto v = s.Int(name)) {
        if (*v < 1024) {
          w.Error(l[name], std::string("limits.") + name, "must be at least 1024 (bytes)");
        } else {
          *out = static_cast<size_t>(*v);
        }
      }
    };
    bytes("record_bytes", &r->limits.record_bytes);
    bytes("reply_bytes", &r->limits.reply_bytes);
    bytes("template_bytes", &r->limits.template_bytes);
    bytes("batch_bytes", &r->limits.batch_bytes);
    if (auto v = s.Int("columns")) {
      if (*v < 1)
        w.Error(l["columns"], "limits.columns", "must be at least 1");
      else
        r->limits.columns = *v;
    }
    if (auto v = s.Int("records_in_memory")) {
      if (*v < 1)
        w.Error(l["records_in_memory"], "limits.records_in_memory", "must be at least 1");
      else
        r->limits.records_in_memory = *v;
    }
    if (auto v = s.Int("run_seconds")) {
      if (*v < 0)
        w.Error(l["run_seconds"], "limits.run_seconds", "must be 0 (no limit) or more");
      else
        r->limits.run_seconds = *v;
    }
  }
  if (r->batch_records > r->limits.records_in_memory) {
    w.Error(root["batch_records"] ? root["batch_records"] : root["limits"], "batch_records",
            std::to_string(r->batch_records) + " is more than limits.records_in_memory (" +
                std::to_string(r->limits.records_in_memory) + ")");
  }

  // Tables.
  std::vector<std::string> table_names;
  if (YAML::Node t = root["tables"]; t) {
    if (!t.IsMap()) {
      w.Error(t, "tables", "expected a mapping of table names to tables");
    } else {
      for (const auto& kv : t) {
        std::string tname = kv.first.Scalar();
        std::string path = "tables." + tname;
        const ConnectorDef* d = FindConnector(kv.second, "lookup", w, path);
        ComponentRef c;
        c.name = tname;
        c.def = d;
        const size_t errors = ErrorCount(*diags);
        c.settings = WalkComponent(w, kv.second, d, TableCommonFields(), "lookup", path);
        c.type = c.settings.String("type").value_or("");
        if (d && ErrorCount(*diags) == errors) {
          auto made = d->make_lookup(c.settings);
          if (!made.ok()) w.Error(kv.second, path, made.status().message());
        }
        table_names.push_back(tname);
        r->tables.push_back(std::move(c));
      }
    }
  }

  // Source.
  if (YAML::Node s = root["source"]; s) {
    const ConnectorDef* d = FindConnector(s, "source", w, "source");
    r->source.def = d;
    const size_t errors = ErrorCount(*diags);
    r->source.settings = WalkComponent(w, s, d, SourceCommonFields(), "source", "source");
    r->source.type = r->source.settings.String("type").value_or("");
    if (const Template* wm = CommonTmpl(r->source.settings, "watermark")) r->source.watermark = *wm;
    if (d && ErrorCount(*diags) == errors) {
      auto made = d->make_source(r->source.settings);
      if (!made.ok()) w.Error(s, "source", made.status().message());
    }
  }

  // Steps.
  if (YAML::Node steps = root["steps"]; steps) {
    if (!steps.IsSequence()) {
      w.Error(steps, "steps", "expected a list of steps (each `- name: ...`)");
    } else {
      size_t i = 0;
      std::vector<std::string> step_names;
      for (const auto& s : StepSpecs()) step_names.push_back(s.name);
      for (const auto& item : steps) {
        std::string path = "steps[" + std::to_string(i++) + "]";
        if (!item.IsMap() || item.size() != 1) {
          w.Error(item, path, "each step is a mapping with one key, the step's name (set, map, drop, "
                              "filter, validate, lookup)");
          continue;
        }
        auto kv = *item.begin();
        std::string kind = kv.first.Scalar();
        const StepSpec* spec = FindStep(kind);
        if (!spec) {
          w.Error(kv.first, path, "unknown step '" + kind + "'" + DidYouMean(kind, step_names));
          continue;
        }
        StepDef def;
        def.kind = kind;
        def.where = name + ":" + std::to_string(item.Mark().line + 1);
        path += "." + kind;
        if (spec->value.type == FieldType::kObject) {
          if (!kv.second.IsMap()) {
            w.Error(kv.second, path, "expected a mapping");
            continue;
          }
          def.settings = w.Walk(kv.second, spec->value.children, path);
          if (kind == "lookup") {
            auto t = def.settings.String("table");
            if (t && std::find(table_names.begin(), table_names.end(), *t) == table_names.end()) {
              w.Error(kv.second["table"], path + ".table",
                      "no table named '" + *t + "' under tables:" + DidYouMean(*t, table_names));
            }
          }
        } else if (spec->value.type == FieldType::kObjectMap) {
          if (!kv.second.IsMap()) {
            w.Error(kv.second, path, "expected a mapping of field names to rules");
            continue;
          }
          for (const auto& rule : kv.second) {
            std::string field = rule.first.Scalar();
            Settings rs = w.Walk(rule.second, spec->value.children, path + "." + field);
            std::regex test;
            if (auto p = rs.String("pattern")) {
              if (auto bad = CompileUserRegex(*p, &test)) {
                w.Error(rule.second["pattern"], path + "." + field + ".pattern", *bad);
              }
            }
            def.rules.emplace_back(field, std::move(rs));
          }
        } else {
          def.settings = w.Walk(item, {spec->value}, "steps[" + std::to_string(i - 1) + "]");
        }
        r->steps.push_back(std::move(def));
      }
    }
  }

  // Targets.
  if (YAML::Node targets = root["targets"]; targets) {
    if (!targets.IsSequence() || targets.size() == 0) {
      w.Error(targets, "targets", "expected a list of one or more targets");
    } else {
      std::vector<std::string> earlier;
      size_t i = 0;
      for (const auto& node : targets) {
        std::string path = "targets[" + std::to_string(i++) + "]";
        if (node.IsMap() && node["name"] && node["name"].IsScalar()) path = "targets[" + node["name"].Scalar() + "]";
        const ConnectorDef* d = FindConnector(node, "target", w, path);
        TargetDef t;
        t.def = d;
        const size_t errors = ErrorCount(*diags);
        t.settings = WalkComponent(w, node, d, TargetCommonFields(), "target", path);
        const bool walked_clean = ErrorCount(*diags) == errors;
        t.name = t.settings.String("name").value_or("");
        t.type = t.settings.String("type").value_or("");
        if (!t.name.empty()) {
          if (std::find(earlier.begin(), earlier.end(), t.name) != earlier.end()) {
            w.Error(node["name"], path, "two targets are named '" + t.name + "'");
          }
        }
        if (const Template* wt = t.settings.Tmpl("when")) t.when = *wt;
        t.capture = t.settings.TmplMap("capture");
        auto oc = t.settings.String("on_change");
        t.on_change_set = oc.has_value();
        if (oc == "skip") t.on_change = OnChange::kSkip;
        if (oc == "insert_new") t.on_change = OnChange::kInsertNew;
        auto id = t.settings.String("in_doubt").value_or("check");
        t.in_doubt = id == "rewrite" ? InDoubt::kRewrite : id == "quarantine" ? InDoubt::kQuarantine : InDoubt::kCheck;
        CheckCaptures(node, w, path, earlier, t.name);
        if (d && walked_clean) {
          auto made = d->make_target(t.settings);
          if (!made.ok()) {
            w.Error(node, path, made.status().message());
          } else {
            bool can_update = (*made)->Traits().supports_update;
            if (!t.on_change_set) {
              t.on_change = can_update ? OnChange::kUpdate : OnChange::kInsertNew;
            } else if (t.on_change == OnChange::kUpdate && !can_update) {
              w.Error(node["on_change"], path + ".on_change",
                      "a " + t.type + " target cannot update what it wrote before (with these settings); "
                      "use insert_new or skip");
            }
          }
        }
        earlier.push_back(t.name);
        r->targets.push_back(std::move(t));
      }
    }
  }

  // Notifications about the run.
  if (YAML::Node notify = root["notify"]; notify) {
    if (!notify.IsSequence()) {
      w.Error(notify, "notify", "expected a list of notifications");
    } else {
      size_t i = 0;
      for (const auto& node : notify) {
        std::string path = "notify[" + std::to_string(i++) + "]";
        const ConnectorDef* d = FindConnector(node, "target", w, path);
        NotifyDef n;
        n.def = d;
        const size_t errors = ErrorCount(*diags);
        n.settings = WalkComponent(w, node, d, NotifyCommonFields(), "target", path);
        const bool walked_clean = ErrorCount(*diags) == errors;
        n.name = n.settings.String("name").value_or("");
        n.type = n.settings.String("type").value_or("");
        n.on = n.settings.StringList("on");
        if (n.on.empty()) n.on = {"failed", "quarantined"};
        static const std::vector<std::string> kOn = {"failed", "quarantined", "completed", "interrupted", "always"};
        for (const auto& o : n.on) {
          if (std::find(kOn.begin(), kOn.end(), o) == kOn.end()) {
            w.Error(node["on"], path + ".on",
                    "unknown '" + o + "'; use failed, quarantined, completed, interrupted or always");
          }
        }
        if (d && walked_clean) {
          auto made = d->make_target(n.settings);
          if (!made.ok()) w.Error(node, path, made.status().message());
        }
        r->notify.push_back(std::move(n));
      }
    }
  }

  // Error policy.
  if (YAML::Node e = root["on_error"]; e) {
    Settings s = w.Walk(e, ErrorFields(), "on_error");
    r->errors.retry_attempts = static_cast<int>(s.Int("retry_attempts").value_or(3));
    r->errors.backoff_seconds = s.Number("backoff_seconds").value_or(1.0);
    r->errors.backoff_max_seconds = s.Number("backoff_max_seconds").value_or(60.0);
    for (const auto& p : s.StringList("permanent")) {
      std::regex re;
      if (auto bad = CompileUserRegex(p, &re)) {
        w.Error(e["permanent"], "on_error.permanent", *bad);
      } else {
        r->errors.permanent.push_back(std::move(re));
      }
    }
    if (r->errors.retry_attempts < 1) w.Error(e, "on_error.retry_attempts", "must be at least 1");
  }

  if (diags->HasErrors()) return nullptr;
  return r;
}

}  // namespace keyonce
