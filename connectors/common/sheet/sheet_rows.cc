#include "connectors/common/sheet/sheet_rows.h"

#include <algorithm>
#include <memory>
#include <set>

#include "connectors/common/sheet/cells.h"

namespace keyonce::connectors::sheet {

namespace {

bool IsEmptyValue(const Value& v) {
  return v.is_null() || (v.is_string() && v.get_string().empty());
}

bool IsEmptyRow(const std::vector<SheetCell>& cells) {
  return std::all_of(cells.begin(), cells.end(),
                     [](const SheetCell& c) { return IsEmptyValue(c.value); });
}

// Makes `built` the record *out, keeping built's memory (assignment would
// copy it into the memory of the record it replaces).
void Emplace(Record* out, Record&& built) {
  std::destroy_at(out);
  std::construct_at(out, std::move(built));
}

std::string Trim(std::string s) {
  auto space = [](unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  size_t b = 0, e = s.size();
  while (b < e && space(s[b])) ++b;
  while (e > b && space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

void RowShaper::Offer(int64_t row, std::vector<SheetCell> cells, bool skip) {
  has_offered_ = true;
  offered_skip_ = skip;
  offered_row_ = row;
  offered_ = std::move(cells);
}

void RowShaper::SetHeader(const std::vector<SheetCell>& cells) {
  header_.clear();
  std::set<std::string> used;
  int last = 0;
  for (const auto& c : cells) {
    if (!IsEmptyValue(c.value)) last = c.column;
  }
  header_.assign(static_cast<size_t>(last), "");
  std::vector<std::string> raw(static_cast<size_t>(last));
  for (const auto& c : cells) {
    if (c.column <= last) raw[static_cast<size_t>(c.column - 1)] = Trim(ToText(c.value));
  }
  for (int col = 1; col <= last; ++col) {
    std::string name = raw[static_cast<size_t>(col - 1)];
    if (name.empty()) name = ColumnLetters(col);
    std::string unique = name;
    for (int n = 2; used.count(unique); ++n) unique = name + "_" + std::to_string(n);
    used.insert(unique);
    header_[static_cast<size_t>(col - 1)] = unique;
  }
}

Record RowShaper::Build(std::vector<SheetCell>& cells, boost::json::storage_ptr storage) const {
  Record r(std::move(storage));
  if (options_.header_row > 0) {
    r.reserve(header_.size());
    for (const auto& name : header_) r.emplace(name, nullptr);
  }
  for (auto& c : cells) {
    if (IsEmptyValue(c.value)) continue;
    size_t i = static_cast<size_t>(c.column - 1);
    if (i < header_.size()) {
      r[header_[i]] = std::move(c.value);
    } else {
      std::string name = ColumnLetters(c.column);
      // A header may have used this letter for an empty header cell.
      for (int n = 2; r.contains(name) && i >= header_.size(); ++n) {
        name = ColumnLetters(c.column) + "_" + std::to_string(n);
      }
      r[name] = std::move(c.value);
    }
  }
  return r;
}

RowShaper::Step RowShaper::NextRecord(Record* out, int64_t* row, boost::json::storage_ptr storage) {
  while (true) {
    if (stopped_) return Step::kEnd;
    if (!has_offered_) return at_end_ ? Step::kEnd : Step::kNeedRow;
    const int64_t r = offered_row_;
    if (r < options_.first_row) {
      if (r == options_.header_row) SetHeader(offered_);
      has_offered_ = false;
      continue;
    }
    cursor_ = std::max(cursor_, options_.first_row);
    const bool gap = cursor_ < r;
    if (!gap && offered_skip_) {
      has_offered_ = false;
      cursor_ = r + 1;
      continue;
    }
    if (gap || IsEmptyRow(offered_)) {
      if (options_.stop_at_empty_row) {
        stopped_ = true;
        return Step::kEnd;
      }
      if (options_.skip_empty_rows) {
        if (gap) {
          cursor_ = r;
        } else {
          has_offered_ = false;
          cursor_ = r + 1;
        }
        continue;
      }
      *row = cursor_;
      std::vector<SheetCell> none;
      Emplace(out, Build(none, storage));
      if (!gap) has_offered_ = false;
      ++cursor_;
      return Step::kRecord;
    }
    *row = r;
    Emplace(out, Build(offered_, std::move(storage)));
    has_offered_ = false;
    cursor_ = r + 1;
    return Step::kRecord;
  }
}

MergeFill::MergeFill(std::vector<MergedRange> ranges) : ranges_(std::move(ranges)) {
  std::sort(ranges_.begin(), ranges_.end(),
            [](const MergedRange& a, const MergedRange& b) { return a.first_row < b.first_row; });
}

void MergeFill::Apply(int64_t row, std::vector<SheetCell>* cells) {
  active_.erase(std::remove_if(active_.begin(), active_.end(),
                               [&](const Active& a) { return a.range.last_row < row; }),
                active_.end());
  while (next_ < ranges_.size() && ranges_[next_].first_row <= row) {
    const MergedRange& m = ranges_[next_++];
    if (m.last_row < row) continue;  // its rows were missing from the file
    Active a{m, nullptr};
    if (m.first_row == row) {
      for (const auto& c : *cells) {
        if (c.column == m.first_column) a.value = c.value;
      }
    }
    active_.push_back(std::move(a));
  }
  if (active_.empty()) return;
  bool changed = false;
  for (const auto& a : active_) {
    if (a.value.is_null()) continue;
    for (int col = a.range.first_column; col <= a.range.last_column; ++col) {
      if (row == a.range.first_row && col == a.range.first_column) continue;
      auto it = std::find_if(cells->begin(), cells->end(),
                             [&](const SheetCell& c) { return c.column == col; });
      if (it != cells->end()) {
        it->value = a.value;
      } else {
        cells->push_back(SheetCell{col, a.value});
        changed = true;
      }
    }
  }
  if (changed) {
    std::sort(cells->begin(), cells->end(),
              [](const SheetCell& x, const SheetCell& y) { return x.column < y.column; });
  }
}

std::optional<MergedRange> ParseRange(const std::string& text) {
  size_t colon = text.find(':');
  auto a = ParseCellRef(std::string_view(text).substr(0, colon));
  auto b = colon == std::string::npos ? a : ParseCellRef(std::string_view(text).substr(colon + 1));
  if (!a || !b || a->row == 0 || b->row == 0) return std::nullopt;
  MergedRange m;
  m.first_column = std::min(a->column, b->column);
  m.last_column = std::max(a->column, b->column);
  m.first_row = std::min(a->row, b->row);
  m.last_row = std::max(a->row, b->row);
  return m;
}

}  // namespace keyonce::connectors::sheet
