// The xlsx target: writes the run's records as the rows of one sheet of a
// new workbook, with libxlsxwriter in constant-memory mode, into a temporary
// file that replaces the workbook at the end of the run (ReplaceRun).
#pragma once

#include <memory>

#include "keyonce/connector.h"
#include "keyonce/spec.h"

namespace keyonce::connectors::xlsx {

// The target's settings, declared once (validate, schema and docs read it).
ComponentSpec TargetSpec();

// Checks the settings and makes the target; no I/O. A path naming a file on
// a server (sftp://, ftp://) writes a local copy that is uploaded whole at
// the end of the run.
Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings);

}  // namespace keyonce::connectors::xlsx
