// Small helpers the service uses to read an HTTP request: the target's path
// and query, form bodies, cookies, ids, JSON bodies and the parameter an error
// message is about. Kept apart from service.cc so that they can be unit
// tested and fuzzed (tests/fuzz/http_request_fuzzer.cc) on their own.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyonce::service {

// Decodes %XX escapes and '+' (a space) as in a query string or form body; a
// '%' not followed by two hex digits stays as it is.
std::string PercentDecode(std::string_view s);

// "a=1&b=x%20y&c" -> {a: "1", b: "x y", c: ""}; keys and values decoded, the
// last of repeated keys wins, empty parts ignored.
std::map<std::string, std::string> ParseForm(std::string_view q);

// "/api/runs/7" -> {"api", "runs", "7"}: the non-empty segments, each decoded.
std::vector<std::string> SplitPath(std::string_view path);

// A non-negative decimal id of at most 18 digits, or nullopt.
std::optional<int64_t> ToId(const std::string& s);

// The value of cookie `name` in a Cookie header, or "" if absent.
std::string CookieValue(std::string_view header, std::string_view name);

// `text` parsed as JSON, or `fallback` if it is empty or not valid JSON.
boost::json::value ParseOr(const std::string& text, boost::json::value fallback);

// The declared parameter a ResolveParams message is about: "parameter 'x'
// ..." -> "x"; "" for any other message (e.g. "unknown parameter; did you mean
// 'y'?", which names no field).
std::string FieldOf(const std::string& message);

}  // namespace keyonce::service
