#include "connectors/common/sql_table.h"

#include <algorithm>

namespace keyonce::connectors {

Status ReadSqlTableShape(const Settings& settings, const QuoteIdentFn& quote, SqlTableShape* c) {
  for (const auto& [name, tmpl] : settings.TmplMap("columns")) {
    auto q = quote(name, "column");
    if (!q.ok()) return q.status();
    if (std::find(c->columns.begin(), c->columns.end(), name) != c->columns.end()) {
      return Status::Invalid("column '" + name + "' is given twice");
    }
    c->columns.push_back(name);
    c->columns_q.push_back(*q);
  }
  if (c->columns.empty()) return Status::Invalid("columns is empty: name at least one column");
  c->upsert = settings.String("mode").value_or("upsert") == "upsert";
  for (const auto& k : settings.StringList("key_columns")) {
    auto it = std::find(c->columns.begin(), c->columns.end(), k);
    if (it == c->columns.end())
      return Status::Invalid("key column '" + k + "' is not one of columns");
    c->keys.push_back(static_cast<size_t>(it - c->columns.begin()));
  }
  if (c->upsert && c->keys.empty()) return Status::Invalid("mode upsert needs key_columns");
  for (const auto& r : settings.StringList("returning")) {
    auto q = quote(r, "returning column");
    if (!q.ok()) return q.status();
    c->returning.push_back(r);
    c->returning_q.push_back(*q);
  }
  c->create_table = settings.Bool("create_table").value_or(false);
  return Status::OK();
}

Value RenderSqlWrite(const std::string& table, const SqlTableShape& shape,
                     const std::vector<Value>& values) {
  boost::json::object vals;
  vals.reserve(shape.columns.size());
  for (size_t i = 0; i < shape.columns.size(); ++i)
    vals.insert_or_assign(shape.columns[i], values[i]);
  boost::json::object out;
  out.emplace("table", table);
  out.emplace("op", shape.upsert ? "upsert" : "insert");
  out.emplace("values", std::move(vals));
  return Value(std::move(out));
}

}  // namespace keyonce::connectors
