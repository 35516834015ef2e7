// Templates: `{{ expression | filter(arg) | ... }}` inside recipe strings.
//
// A template is compiled once per run (Template::Compile) and evaluated per
// record. Expressions read from named roots (record, params, secrets,
// captures, run, state, reply, lookup) with dotted paths (`record.name`) or
// brackets (`record["Fra dato"]`, `items[0]`), literals ('text', "text", 12,
// 3.5, true, false, null), comparisons (== != < <= > >=), `and`, `or`, `not`,
// parentheses, and filters (see docs/templates.md for the list).
//
// Rendering is context-aware: the compile-time TemplateContext decides how an
// interpolated value is placed into the surrounding text, so no target ever
// receives a value spliced unescaped into its own syntax.
//
// Thread-safety: a compiled Template is immutable; Evaluate/Render may be
// called concurrently from several threads with different scopes.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyonce/status.h"
#include "keyonce/value.h"

namespace keyonce {

enum class TemplateContext {
  kValue,  // a field value: a lone `{{ expr }}` keeps its type; mixed text is a string
  kText,   // plain text: values are inserted as their text form
  kJson,   // the text is JSON: values are inserted JSON-encoded (strings quoted+escaped)
  kXml,    // the text is XML: values are XML-escaped (& < > " ')
  kSql,    // the text is SQL: each value becomes a `?` placeholder and a bound parameter
};

// Tables that the `lookup` filter reads: `{{ record.dept | lookup('departments', 'name') }}`.
class TableResolver {
 public:
  virtual ~TableResolver() = default;
  // Finds the row whose key equals `key` in table `table`. Returns the row
  // (nullopt when no row matches) or an error (unknown table, I/O failure).
  virtual Result<std::optional<Record>> Find(std::string_view table, const Value& key) = 0;
};

// Warnings raised while evaluating (e.g. a CPR that fails the modulus-11
// check). Never rejects; the engine logs them without the value.
class WarningSink {
 public:
  virtual ~WarningSink() = default;
  virtual void Warn(const std::string& message) = 0;
};

// The values an expression can see. Any root may be null (absent); reading a
// field of an absent root yields null, so `default(...)` works.
struct Scope {
  const Value* record = nullptr;
  const Value* params = nullptr;
  const Value* secrets = nullptr;
  const Value* captures = nullptr;  // object: target name -> object of captured values
  const Value* run = nullptr;       // {id, started_at, recipe}
  const Value* state = nullptr;     // {watermark}
  const Value* reply = nullptr;     // a target's reply, for capture templates
  const Value* lookup = nullptr;    // the matched table row, inside a lookup step
  const Value* key = nullptr;       // the key a lookup table is asked for (Lookup::Find)
  TableResolver* tables = nullptr;
  WarningSink* warnings = nullptr;
  // The longest text a template or one of its filters may make (the
  // recipe's limits.template_bytes); longer is an error, not a huge string.
  size_t max_text_bytes = kDefaultMaxTextBytes;
  static constexpr size_t kDefaultMaxTextBytes = 16u << 20;
};

// The error for a text longer than scope.max_text_bytes; `what` says what
// made it ("the template", "the filter 'replace'").
Status TextTooLong(const std::string& what, size_t bytes, size_t limit);
// The same, said before the text is made: what checks the size it would make
// first, so memory never holds the oversized text.
Status TextWouldBeTooLong(const std::string& what, size_t bytes, size_t limit);

// Where a compile error is: offset into the template text (0-based, bytes).
struct TemplateError {
  size_t offset = 0;
  std::string message;
};

class Template {
 public:
  Template();
  ~Template();
  Template(const Template&);
  Template& operator=(const Template&);
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Parses `text`. Text without `{{` is a constant. On failure returns
  // nullopt and fills *error with the offset of the problem inside `text`.
  static std::optional<Template> Compile(std::string_view text, TemplateContext context,
                                         TemplateError* error);

  // Evaluates to a typed value. In kValue context a template that is exactly
  // one `{{ expr }}` (whitespace around allowed) returns the expression's
  // value with its type; anything else returns the rendered string.
  // Errors (a filter given the wrong kind of value, an unknown table) are
  // kInvalid statuses whose message names the filter but never the value.
  Result<Value> Evaluate(const Scope& scope) const;

  // Evaluate without copying what the template only reads: *out points at
  // the value itself when the template names one (`{{ record.name }}`, a
  // literal), else at *storage, which receives the value made. *out stays
  // valid as long as the scope's values, the template and *storage do.
  Status EvaluateInto(const Scope& scope, Value* storage, const Value** out) const;

  // Renders to text, escaping each interpolated value for the context. In
  // kSql context interpolations become `?` and `binds` receives the values in
  // order (binds must be non-null then).
  Result<std::string> Render(const Scope& scope, std::vector<Value>* binds = nullptr) const;

  // The original text and context.
  const std::string& source() const;
  TemplateContext context() const;
  bool IsConstant() const;

  // Each reference to a root, e.g. {"secrets", "api_token", offset} for
  // `secrets.api_token`; `name` is empty when the root is used whole or with
  // a computed index. Lets the validator check that secrets and params are
  // declared and that a record-free context does not read `record`.
  struct Reference {
    std::string root;
    std::string name;
    size_t offset = 0;
  };
  std::vector<Reference> References() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Names of all filters, for "did you mean" hints and docs.
std::vector<std::string> FilterNames();

}  // namespace keyonce
