// A lookup table held in memory whole: at Open, every row a source reads is
// kept, keyed by one column. For the small tables people keep in files
// (departments, cost centres): the csv and spreadsheet connectors' lookups
// are this, over their own source.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "keyonce/connector.h"

namespace keyonce::connectors {

// A table of the rows `make_source` reads from the table's settings (which
// have a `key`: the column to match). The settings are checked now, the file
// is read at Open. Find matches the key's text with the key column's text,
// spaces around either ignored; when a key repeats, the first row wins and a
// warning names the rows (never the key). A malformed row, a missing key
// column or more rows than limits.records_in_memory fail Open. `what` names
// the table in messages ("a csv table").
Result<std::unique_ptr<Lookup>> MakeLoadedTable(
    const Settings& settings, const std::string& what,
    std::function<Result<std::unique_ptr<Source>>(const Settings&)> make_source);

// The `key` field of such a table's settings ("Column to match: ...").
FieldSpec LoadedTableKeyField(const std::string& example);

}  // namespace keyonce::connectors
