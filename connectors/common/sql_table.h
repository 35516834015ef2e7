// The settings SQL table targets share (sqlite, postgres): which columns,
// which are the key, insert or upsert, what comes back. Each database quotes
// identifiers its own way.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "keyonce/settings.h"
#include "keyonce/status.h"
#include "keyonce/value.h"

namespace keyonce::connectors {

struct SqlTableShape {
  std::vector<std::string> columns, columns_q;  // in the order of the `columns` setting
  std::vector<size_t> keys;                     // indexes into columns
  std::vector<std::string> returning, returning_q;
  bool upsert = true;
  bool create_table = false;
};

using QuoteIdentFn =
    std::function<Result<std::string>(const std::string& name, const std::string& what)>;

// Reads `columns`, `mode`, `key_columns`, `returning` and `create_table`;
// kInvalid with a message naming the setting when they do not fit together.
Status ReadSqlTableShape(const Settings& settings, const QuoteIdentFn& quote, SqlTableShape* out);

// What a write of `values` (one per column) into `table` looks like in a dry
// run: {table, op: insert|upsert, values: {column: value}}.
Value RenderSqlWrite(const std::string& table, const SqlTableShape& shape,
                     const std::vector<Value>& values);

}  // namespace keyonce::connectors
