// The csv connector's parts: settings parsing shared by the source, target
// and lookup, and their factories (registered in csv.cc).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "connectors/csv/csv_reader.h"
#include "connectors/csv/csv_writer.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::csv {

// The connector definition (settings declared once, as data).
ConnectorDef CsvConnector();

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings);
// The source of a file on this machine (MakeSource also downloads one from a server).
Result<std::unique_ptr<Source>> MakeLocalSource(const Settings& settings);
Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings);
Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings);

// One-character setting (delimiter, quote). "\t" may also be written "\\t" or
// "tab". `allow_empty`: "" gives '\0'.
Result<char> ParseCharSetting(const Settings& settings, const std::string& name,
                              std::string_view fallback, bool allow_empty);

// The reading settings of a source or lookup (path excluded).
Result<CsvReaderOptions> ReaderOptionsFromSettings(const Settings& settings);

}  // namespace keyonce::connectors::csv
