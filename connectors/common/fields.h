// Settings that several connectors declare alike.
#pragma once

#include <string>

#include "keyonce/spec.h"

namespace keyonce::connectors {

// The required `path` of a local file: a template of params, run and state,
// relative to the recipe's folder. `what` starts the description; a
// `template_example` (e.g. "out/{{ params.month }}.jsonl") is shown in it.
FieldSpec FilePathField(const std::string& what, const std::string& example,
                        const std::string& template_example = "");

// `create_dirs` of a target that writes a local file: off by default for
// files that land on shares (csv, xlsx), on for jsonl's own output files.
FieldSpec CreateDirsField(bool on_by_default = false);

}  // namespace keyonce::connectors
