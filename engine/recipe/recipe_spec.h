// The recipe format, declared once as data. The loader, `keyonce schema`
// and the generated reference docs all read these declarations.
#pragma once

#include <string>
#include <vector>

#include "keyonce/connector.h"
#include "keyonce/spec.h"

namespace keyonce {

const std::vector<FieldSpec>& RecipeFields();  // top level; sections below are checked by the loader
const std::vector<FieldSpec>& ScheduleFields();
const std::vector<FieldSpec>& ParamFields();
const std::vector<FieldSpec>& SecretFields();
const std::vector<FieldSpec>& SourceCommonFields();
const std::vector<FieldSpec>& TargetCommonFields();
const std::vector<FieldSpec>& TableCommonFields();
const std::vector<FieldSpec>& NotifyCommonFields();
const std::vector<FieldSpec>& ErrorFields();
const std::vector<FieldSpec>& LimitFields();

// A connector's spec for a role ("source", "target" or "lookup"), or nullptr
// when it does not play that role.
const ComponentSpec* RoleSpec(const ConnectorDef& def, std::string_view role);

struct StepSpec {
  std::string name;
  std::string summary;
  FieldSpec value;  // what follows `- name:`
  std::string example_yaml;
};
const std::vector<StepSpec>& StepSpecs();
const StepSpec* FindStep(const std::string& name);

}  // namespace keyonce
