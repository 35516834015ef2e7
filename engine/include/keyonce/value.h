// Records and values.
//
// A record is an ordered JSON object (field name -> value); values are JSON
// values (null, bool, int64, double, string, array, object). Sources produce
// records with string fields as read; steps and templates convert types.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace keyonce {

using Value = boost::json::value;
using Record = boost::json::object;

// The text form of a value as a person would type it: strings as they are,
// numbers in JSON form (no exponent for integral doubles), true/false, "" for
// null; arrays and objects as compact JSON.
std::string ToText(const Value& v);

// Truthiness used by conditions: null, false, 0, "" and empty containers are
// false; "false"/"0"/"no" strings are false too (CSV fields are text).
bool IsTruthy(const Value& v);

// Compact JSON serialisation (insertion order; doubles in their shortest
// round-trip form, 7.5 not 7.5E0). Use this, not boost::json::serialize.
std::string ToJson(const Value& v);
std::string ToJson(const Record& o);  // without copying it into a Value first
void AppendJson(std::string& out, const Value& v);
void AppendJson(std::string& out, const Record& o);

}  // namespace keyonce
