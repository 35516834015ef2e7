#include "keyonce/value.h"

#include "template/internal.h"

#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdio>

namespace keyonce {

std::string ToText(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return {};
    case boost::json::kind::bool_: return v.get_bool() ? "true" : "false";
    case boost::json::kind::int64: return std::to_string(v.get_int64());
    case boost::json::kind::uint64: return std::to_string(v.get_uint64());
    case boost::json::kind::double_: {
      double d = v.get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
        return std::to_string(static_cast<long long>(d));
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.15g", d);
      return buf;
    }
    case boost::json::kind::string: return std::string(v.get_string());
    default: return boost::json::serialize(v);
  }
}

bool IsTruthy(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return false;
    case boost::json::kind::bool_: return v.get_bool();
    case boost::json::kind::int64: return v.get_int64() != 0;
    case boost::json::kind::uint64: return v.get_uint64() != 0;
    case boost::json::kind::double_: return v.get_double() != 0;
    case boost::json::kind::string: {
      auto s = v.get_string();
      return !(s.empty() || s == "false" || s == "0" || s == "no" || s == "False" || s == "FALSE");
    }
    case boost::json::kind::array: return !v.get_array().empty();
    case boost::json::kind::object: return !v.get_object().empty();
  }
  return false;
}

std::string ToJson(const Value& v) {
  std::string out;
  tmpl::AppendJson(out, v);
  return out;
}

std::string ToJson(const Record& o) {
  std::string out;
  AppendJson(out, o);
  return out;
}

void AppendJson(std::string& out, const Value& v) { tmpl::AppendJson(out, v); }

void AppendJson(std::string& out, const Record& o) {
  out.push_back('{');
  bool first = true;
  for (const auto& kv : o) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    tmpl::AppendJsonEscaped(out, kv.key());
    out += "\":";
    tmpl::AppendJson(out, kv.value());
  }
  out.push_back('}');
}

}  // namespace keyonce
