// The recipe model: what a validated recipe file becomes.
//
// A Recipe is built only by the loader (loader.h), which checks every key
// against the declarations in spec (recipe_spec.h) and the connectors' specs
// and compiles every template once. A Recipe is immutable afterwards and may
// be shared by concurrent runs.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "keyonce/connector.h"
#include "keyonce/settings.h"
#include "keyonce/template.h"

namespace keyonce {

struct ParamDecl {
  std::string name;
  std::string type;  // string | int | date | enum | bool
  std::string label, help;
  bool required = false;
  std::optional<std::string> default_value;
  std::string pattern;
  std::optional<std::regex> pattern_re;
  std::vector<std::string> values;  // enum
};

struct SecretDecl {
  std::string name;
  std::string env;   // environment variable
  std::string file;  // or a file holding the value
  std::string description;
};

struct ComponentRef {
  std::string name;  // targets/tables: the recipe's name for it
  std::string type;  // connector name
  const ConnectorDef* def = nullptr;
  Settings settings;  // the connector's own settings
};

struct StepDef {
  std::string kind;   // set, map, drop, filter, validate, lookup
  std::string where;  // "file.yaml:12" for messages
  Settings settings;
  std::vector<std::pair<std::string, Settings>> rules;  // validate: field -> rules
};

enum class OnChange { kUpdate, kSkip, kInsertNew };
enum class InDoubt { kCheck, kRewrite, kQuarantine };

struct TargetDef : ComponentRef {
  std::optional<Template> when;
  OnChange on_change = OnChange::kUpdate;
  bool on_change_set = false;
  InDoubt in_doubt = InDoubt::kCheck;
  std::vector<std::pair<std::string, Template>> capture;  // name -> template over `reply`
};

struct SourceDef : ComponentRef {
  std::optional<Template> watermark;  // per record; the run keeps the largest
};

struct NotifyDef : ComponentRef {
  std::vector<std::string> on;  // failed, quarantined, completed, interrupted, always
};

struct ErrorPolicy {
  int retry_attempts = 3;
  double backoff_seconds = 1.0;
  double backoff_max_seconds = 60.0;
  std::vector<std::regex> permanent;  // error messages matching any are never retried
  // How they are applied: RetryPolicy (pipeline/retry.h).
};

struct ScheduleDef {
  std::string cron;      // as written; checked by the loader
  std::string timezone;  // "" = the service's zone
  bool run_missed_once = false;
};

struct Recipe {
  std::string name, description, label;
  std::optional<ScheduleDef> schedule;
  bool refuse_overlap = false;
  std::optional<Template> subject;  // the person a record is about (audit)
  std::filesystem::path file, base_dir;
  std::vector<ParamDecl> params;
  std::vector<SecretDecl> secrets;
  std::vector<ComponentRef> tables;
  SourceDef source;
  Template key;
  std::vector<StepDef> steps;
  std::vector<TargetDef> targets;
  std::vector<NotifyDef> notify;
  ErrorPolicy errors;
  int batch_records = 5000;
  Limits limits;
};

}  // namespace keyonce
