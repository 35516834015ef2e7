// The csv lookup table: the whole file is loaded at Open, keyed by the `key`
// column (tables are small: departments, cost centres).
#include "connectors/common/loaded_table.h"
#include "connectors/csv/csv_connector.h"

namespace keyonce::connectors::csv {

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  return MakeLoadedTable(settings, "a csv table", MakeLocalSource);
}

}  // namespace keyonce::connectors::csv
