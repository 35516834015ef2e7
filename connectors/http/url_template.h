// URL templates: `https://cases.example.dk/api/cases/{{ record.id }}?q={{ record.name }}`.
//
// The engine's template language has no URL context, so an http setting
// declared as a text template is split here into its literal text and its
// `{{ ... }}` interpolations, and each interpolated value is percent-encoded
// (RFC 3986 unreserved characters kept), so a record value can never change
// the URL's structure (add a path segment, a query parameter, a host). One
// exception: an interpolation that starts the URL is inserted as it is, so a
// base URL from params or secrets works (`{{ params.base_url }}/cases`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "keyonce/status.h"
#include "keyonce/template.h"

namespace keyonce::connectors::http {

class UrlTemplate {
 public:
  UrlTemplate() = default;
  // From a compiled text template (its source is split again); kInvalid
  // when a piece does not compile (cannot happen for a validated template).
  static Result<UrlTemplate> From(const Template& t);
  // The URL for `scope`; kInvalid when an expression fails or the result is
  // empty. `display` (optional) receives the URL fit for messages and logs:
  // a leading base URL from params, run or state rendered, every other
  // interpolation as written in the recipe (`/people/{{ record.email }}`),
  // so no field value reaches an error message, a quarantine reason or the
  // run history.
  Result<std::string> Render(const Scope& scope, std::string* display = nullptr) const;
  bool empty() const { return parts_.empty(); }

 private:
  struct Part {
    std::string text;              // literal text (when !expr)
    std::optional<Template> expr;  // one interpolation
    bool raw = false;              // inserted without encoding
    bool shown = false;            // its value may appear in messages
  };
  std::vector<Part> parts_;
};

}  // namespace keyonce::connectors::http
