// Internals of the template engine shared by template.cc, filters.cc,
// numbers.cc and dates.cc. Not part of the public API.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keyonce/status.h"
#include "keyonce/template.h"
#include "keyonce/value.h"

namespace date {
class time_zone;
}  // namespace date

namespace keyonce::tmpl {

// A shared immutable null.
const Value& NullValue();

// The result of evaluating an expression node: either a reference to a value
// that outlives the evaluation (scope data, a literal in the AST) or a value
// owned by the slot. Lets paths and pass-through filters avoid copies.
class Slot {
 public:
  const Value& get() const { return ref_ ? *ref_ : owned_; }
  // True when get() refers to data that outlives the evaluation.
  bool is_ref() const { return ref_ != nullptr; }
  void Ref(const Value* v) { ref_ = v; }
  void Set(Value v) {
    owned_ = std::move(v);
    ref_ = nullptr;
  }
  Value Take() {
    if (ref_) return *ref_;
    return std::move(owned_);
  }

 private:
  const Value* ref_ = nullptr;
  Value owned_;
};

// ---------------------------------------------------------------- filters

// The most arguments any filter takes (the evaluator keeps them on the stack).
inline constexpr int kMaxFilterArgs = 4;

struct FilterContext {
  const Scope& scope;
  const void* prepared;   // the state the filter's Prepare built, or nullptr
  std::string_view name;  // the filter name, for messages
};

// Replaces io's value by the filter's result (or leaves it to pass it
// through). A filter must not Ref() one of its arguments: argument slots die
// when the filter returns, so it copies them with Set().
using FilterFn = Status (*)(Slot& io, std::span<const Value* const> args, const FilterContext& ctx);

// A compile-time problem with a filter call; `arg` is the index of the
// offending argument, or kNoArg for the call itself.
struct PrepareError {
  static constexpr size_t kNoArg = static_cast<size_t>(-1);
  size_t arg = kNoArg;
  std::string message;
};

// Runs once at compile time. literal[i] is argument i's value when it is a
// literal, else nullptr. May build state (e.g. a compiled regex) into *state.
using PrepareFn = std::optional<PrepareError> (*)(std::span<const Value* const> literal,
                                                  std::shared_ptr<const void>* state);

struct FilterSpec {
  std::string_view name;
  int min_args;
  int max_args;
  FilterFn fn;
  PrepareFn prepare;  // may be nullptr
};

const FilterSpec* FindFilter(std::string_view name);
std::span<const FilterSpec> AllFilters();

// "filter 'x': message" as a kInvalid status.
Status FilterError(const FilterContext& ctx, std::string_view message);

// ---------------------------------------------------------------- text

// Appends the JSON-escaped form of s (without quotes).
void AppendJsonEscaped(std::string& out, std::string_view s);
// Appends v as compact JSON: numbers in their shortest exact form (no
// exponent-only forms like 1.2345E3), non-finite numbers as null.
void AppendJson(std::string& out, const Value& v);
// Appends s with & < > " ' replaced by entities.
void AppendXmlEscaped(std::string& out, std::string_view s);
// Appends ToText(v) without copying strings.
void AppendText(std::string& out, const Value& v);

// The sizes the appenders above would add, counted without building the text,
// so that a filter or template checks limits.template_bytes before it grows.
size_t JsonEscapedSize(std::string_view s);
size_t XmlEscapedSize(std::string_view s);
size_t JsonSize(const Value& v);
size_t TextSize(const Value& v);  // AppendText's size: exact for texts, at most for the rest

// Edit distance for "did you mean" hints.
size_t Levenshtein(std::string_view a, std::string_view b);
// The closest candidate within a small distance, or "".
std::string_view ClosestName(std::string_view word, std::span<const std::string_view> candidates);

// Number of code points (characters) in UTF-8 text.
size_t CodePoints(std::string_view s);

// Appends code point `cp` encoded as UTF-8.
void AppendUtf8(std::string& out, uint32_t cp);

// ---------------------------------------------------------------- numbers

struct Number {
  bool is_int = true;
  int64_t i = 0;
  double d = 0;
  double AsDouble() const { return is_int ? static_cast<double>(i) : d; }
};

// A JSON number, or a string in plain form: optional '-', digits, optional
// '.' and digits (what comparisons treat as numeric).
std::optional<Number> NumericValue(const Value& v);
std::optional<Number> ParsePlainNumber(std::string_view s);
bool IsPlainNumber(std::string_view s);

// Compares two numbers given as plain decimal text exactly (any length):
// -1, 0 or 1. Both must satisfy IsPlainNumber.
int CompareDecimalText(std::string_view a, std::string_view b);
// The exact decimal text of a JSON number (shortest round-trip form for
// doubles, never an exponent); nullopt for non-numbers and non-finite values.
std::optional<std::string> DecimalText(const Value& v);

// Parses locale-formatted text: decimal separator `decimal` ('.' or ','),
// the other one is the thousands separator (groups of three), spaces ignored.
std::optional<Number> ParseLocaleNumber(std::string_view s, char decimal);

// The decimal digits of |n| rounded half away from zero to `decimals`
// fractional digits: "[-]int[.frac]".
std::string RoundDecimal(const Number& n, int decimals);
// Formats with separators; thousands may be empty.
std::string FormatNumber(const Number& n, int decimals, std::string_view decimal_sep,
                         std::string_view thousands_sep);
// Rounds half away from zero; int when decimals == 0 and it fits.
Value RoundNumber(const Number& n, int decimals);
Value NumberToValue(const Number& n);

// ---------------------------------------------------------------- dates

// A parsed strftime-like format.
struct DateFormat {
  struct Item {
    char directive = 0;  // 0 for a literal
    bool colon = false;  // %:z
    std::string literal;
  };
  std::vector<Item> items;
  bool iso_instant = false;  // the 'iso' name in datetime(): the ISO 8601 parser
  bool has_date = false;     // %Y, %m and %d all present
  bool has_time = false;     // any of %H %M %S
  bool has_offset = false;   // %z
};

enum class FormatUse { kParseDate, kParseDateTime, kFormat };

// Parses a format (or a name: 'dk', 'iso'). On failure returns nullopt and
// sets *error to a message that names the format.
std::optional<DateFormat> ParseDateFormat(std::string_view format, FormatUse use,
                                          std::string* error);

// Finds an IANA zone; nullptr when unknown. "UTC" is returned as a zone too.
const date::time_zone* FindZone(std::string_view name);

struct CivilTime {
  int year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  std::string fraction;             // digits after the seconds' '.', if any
  std::optional<int> offset_sec;    // a UTC offset given in the text
  bool has_time = false;
};

// Parses text with a format. Returns an error message (without the value)
// on failure.
std::optional<std::string> ParseWithFormat(std::string_view text, const DateFormat& format,
                                           CivilTime* out);
// Parses "YYYY-MM-DD[(T| )HH:MM[:SS[.fff]][Z|±hh[:]mm]]".
std::optional<std::string> ParseIsoInstant(std::string_view text, CivilTime* out);

// Turns a civil time into an instant shown in zone tz (nullptr = UTC).
// Without an offset the time is local in tz: nonexistent times move forward
// to the end of the gap, ambiguous ones take the earliest instant.
// Returns an error message or nullopt; *out is the civil time in tz with
// offset_sec set.
std::optional<std::string> ToZone(const CivilTime& in, const date::time_zone* tz,
                                  CivilTime* out);

std::string FormatIsoInstant(const CivilTime& t);
std::string FormatIsoDate(const CivilTime& t);
std::string FormatWith(const CivilTime& t, const DateFormat& format);
bool IsValidDate(int y, int m, int d);

}  // namespace keyonce::tmpl
