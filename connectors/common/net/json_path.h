// JSON paths: picking records and values out of a JSON reply.
//
// The syntax is a small, total subset of JSONPath; every input either parses
// or gives a clear error with the offset, and selecting never fails:
//
//   path     := [ "$" ] segment*          ("" and "$" select the root itself)
//   segment  := "." name                  a member (name: letters, digits, _ - $ @)
//             | name                      a member, only as the very first segment
//             | "." "*" | "[*]"           every element of an array / member of an object
//             | "[" integer "]"           an array element; negative counts from the end
//             | "[" quoted "]"            a member with any name: ['first name'] or ["a.b"]
//
//   $.data.items[*]   data.items   [0].id   items[-1]   meta['next page']   $
//
// A segment that does not apply (a member of a non-object, an index out of
// range) selects nothing: `data.items` on {"data": 1} selects no values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "keyonce/status.h"
#include "keyonce/value.h"

namespace keyonce::connectors::net {

class JsonPath {
 public:
  JsonPath() = default;  // selects the root
  // kInvalid "JSON path 'x[': expected ']' at offset 2" style errors.
  static Result<JsonPath> Parse(std::string_view text);

  // Every value the path selects, in document order; pointers into `root`.
  std::vector<const Value*> Select(const Value& root) const;
  // The first selected value, or nullptr.
  const Value* SelectOne(const Value& root) const;
  // As written (for messages).
  const std::string& text() const { return text_; }
  bool IsRoot() const { return segments_.empty(); }

 private:
  struct Segment {
    enum class Kind { kMember, kIndex, kWildcard } kind = Kind::kMember;
    std::string name;
    long long index = 0;
  };
  std::string text_;
  std::vector<Segment> segments_;
};

}  // namespace keyonce::connectors::net
