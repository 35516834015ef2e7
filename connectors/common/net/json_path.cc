// JSON paths (json_path.h).

#include "connectors/common/net/json_path.h"

#include <cctype>
#include <limits>

namespace keyonce::connectors::net {
namespace {

bool NameChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || c == '-' || c == '$' || c == '@' || u >= 0x80;
}

}  // namespace

Result<JsonPath> JsonPath::Parse(std::string_view text) {
  JsonPath p;
  p.text_ = std::string(text);
  auto fail = [&](size_t at, const std::string& what) -> Result<JsonPath> {
    return Status::Invalid("JSON path '" + std::string(text) + "': " + what + " at offset " +
                           std::to_string(at));
  };
  size_t i = 0;
  const size_t n = text.size();
  if (i < n && text[i] == '$') ++i;
  bool first = true;
  while (i < n) {
    char c = text[i];
    if (c == '.') {
      ++i;
      if (i < n && text[i] == '*') {
        ++i;
        p.segments_.push_back({Segment::Kind::kWildcard, "", 0});
      } else {
        size_t b = i;
        while (i < n && NameChar(text[i])) ++i;
        if (i == b) return fail(b, "expected a name after '.'");
        p.segments_.push_back({Segment::Kind::kMember, std::string(text.substr(b, i - b)), 0});
      }
    } else if (c == '[') {
      ++i;
      if (i < n && text[i] == '*') {
        ++i;
        p.segments_.push_back({Segment::Kind::kWildcard, "", 0});
      } else if (i < n && (text[i] == '\'' || text[i] == '"')) {
        char q = text[i++];
        std::string name;
        while (i < n && text[i] != q) {
          if (text[i] == '\\' && i + 1 < n) ++i;
          name.push_back(text[i++]);
        }
        if (i >= n) return fail(i, "unterminated quoted name");
        ++i;
        p.segments_.push_back({Segment::Kind::kMember, std::move(name), 0});
      } else {
        size_t b = i;
        bool neg = false;
        if (i < n && text[i] == '-') {
          neg = true;
          ++i;
        }
        size_t digits = i;
        long long v = 0;
        while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) {
          if (v > (std::numeric_limits<long long>::max() - 9) / 10)
            return fail(b, "index too large");
          v = v * 10 + (text[i] - '0');
          ++i;
        }
        if (i == digits) return fail(b, "expected an index, '*' or a quoted name after '['");
        p.segments_.push_back({Segment::Kind::kIndex, "", neg ? -v : v});
      }
      if (i >= n || text[i] != ']') return fail(i, "expected ']'");
      ++i;
    } else if (first && NameChar(c)) {
      size_t b = i;
      while (i < n && NameChar(text[i])) ++i;
      p.segments_.push_back({Segment::Kind::kMember, std::string(text.substr(b, i - b)), 0});
    } else {
      return fail(i, std::string("unexpected '") + c + "'");
    }
    first = false;
  }
  return p;
}

std::vector<const Value*> JsonPath::Select(const Value& root) const {
  std::vector<const Value*> cur{&root};
  std::vector<const Value*> nxt;
  for (const auto& s : segments_) {
    nxt.clear();
    for (const Value* v : cur) {
      switch (s.kind) {
        case Segment::Kind::kMember:
          if (v->is_object()) {
            if (const Value* m = v->get_object().if_contains(s.name)) nxt.push_back(m);
          }
          break;
        case Segment::Kind::kIndex:
          if (v->is_array()) {
            const auto& a = v->get_array();
            long long size = static_cast<long long>(a.size());
            long long idx = s.index < 0 ? size + s.index : s.index;
            if (idx >= 0 && idx < size) nxt.push_back(&a[static_cast<size_t>(idx)]);
          }
          break;
        case Segment::Kind::kWildcard:
          if (v->is_array()) {
            for (const auto& e : v->get_array()) nxt.push_back(&e);
          } else if (v->is_object()) {
            for (const auto& kv : v->get_object()) nxt.push_back(&kv.value());
          }
          break;
      }
    }
    cur.swap(nxt);
    if (cur.empty()) break;
  }
  return cur;
}

const Value* JsonPath::SelectOne(const Value& root) const {
  auto all = Select(root);
  return all.empty() ? nullptr : all.front();
}

}  // namespace keyonce::connectors::net
