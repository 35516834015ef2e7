// Every filter: results, null handling and errors (which must never contain
// the value being processed).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <map>

#include "keyonce/template.h"
#include "cpr.h"  // same directory: the test target has no private include path

namespace keyonce {
namespace {

Value J(std::string_view json) { return boost::json::parse(json); }

class Warnings : public WarningSink {
 public:
  void Warn(const std::string& message) override { messages.push_back(message); }
  std::vector<std::string> messages;
};

class FakeTables : public TableResolver {
 public:
  Result<std::optional<Record>> Find(std::string_view table, const Value& key) override {
    ++calls;
    if (table != "departments") return Status::NotFound("unknown table '" + std::string(table) + "'");
    std::string k = ToText(key);
    if (k == "10") return std::optional<Record>(Record{{"name", "Finance"}, {"head", "Bo"}});
    if (k == "20") return std::optional<Record>(Record{{"name", "IT"}, {"head", nullptr}});
    return std::optional<Record>();
  }
  int calls = 0;
};

// Applies `expr` with `record.v` bound to `input`.
Result<Value> Apply(std::string_view expr, const Value& input, WarningSink* warnings = nullptr,
                    TableResolver* tables = nullptr) {
  Value rec = boost::json::object{{"v", input}};
  Scope s;
  s.record = &rec;
  s.warnings = warnings;
  s.tables = tables;
  TemplateError err;
  auto t = Template::Compile("{{ record.v | " + std::string(expr) + " }}", TemplateContext::kValue, &err);
  if (!t) return Status::Invalid("compile: " + err.message);
  return t->Evaluate(s);
}

Value Ok(std::string_view expr, const Value& input) {
  auto r = Apply(expr, input);
  EXPECT_TRUE(r.ok()) << expr << ": " << r.status().message();
  return r.ok() ? r.value() : Value("<error>");
}

// Expects an error that names the filter and does not contain the input.
std::string Err(std::string_view expr, const Value& input) {
  auto r = Apply(expr, input);
  EXPECT_FALSE(r.ok()) << expr << " gave " << (r.ok() ? ToJson(r.value()) : "");
  if (r.ok()) return "";
  const std::string& msg = r.status().message();
  EXPECT_EQ(r.status().code(), Status::Code::kInvalid) << msg;
  std::string filter(expr.substr(0, expr.find('(')));
  EXPECT_NE(msg.find("filter '" + filter + "'"), std::string::npos) << msg;
  std::string text = ToText(input);
  if (text.size() >= 3) {
    EXPECT_EQ(msg.find(text), std::string::npos) << "message leaks the value: " << msg;
  }
  return msg;
}

bool Has(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// ------------------------------------------------------------ text

TEST(Filters, TrimRemovesAsciiAndNoBreakSpace) {
  EXPECT_EQ(Ok("trim", Value("  a b \t\n")), Value("a b"));
  EXPECT_EQ(Ok("trim", Value("\xC2\xA0x\xC2\xA0")), Value("x"));
  EXPECT_EQ(Ok("trim", Value("\xEF\xBB\xBFid")), Value("id"));
  EXPECT_EQ(Ok("trim", Value("   ")), Value(""));
  EXPECT_EQ(Ok("trim", Value(5)), Value("5"));
  EXPECT_TRUE(Ok("trim", Value()).is_null());
  Err("trim", J("[1]"));
}

TEST(Filters, UpperAndLowerHandleDanishLetters) {
  EXPECT_EQ(Ok("upper", Value("blåbærgrød æøå")), Value("BLÅBÆRGRØD ÆØÅ"));
  EXPECT_EQ(Ok("lower", Value("ÆBLE ØL Å")), Value("æble øl å"));
  EXPECT_EQ(Ok("upper", Value("éüñ ß ÿ")), Value("ÉÜÑ ß Ÿ"));
  EXPECT_EQ(Ok("lower", Value("ŁÓDŹ ДОМ")), Value("łódź дом"));
  EXPECT_EQ(Ok("upper", Value("×÷")), Value("×÷"));
  EXPECT_EQ(Ok("upper", Value("a\xFF" "b")), Value("A\xFF" "B"));  // invalid UTF-8 kept
  EXPECT_TRUE(Ok("upper", Value()).is_null());
}

TEST(Filters, DefaultReplacesNullAndEmpty) {
  EXPECT_EQ(Ok("default('x')", Value()), Value("x"));
  EXPECT_EQ(Ok("default('x')", Value("")), Value("x"));
  EXPECT_EQ(Ok("default('x')", Value(" ")), Value(" "));
  EXPECT_EQ(Ok("default(0)", Value(false)), Value(false));
  EXPECT_EQ(Ok("default(12)", Value()), Value(12));
}

TEST(Filters, ReplaceReplacesEveryOccurrence) {
  EXPECT_EQ(Ok("replace('-', '')", Value("01-02-03")), Value("010203"));
  EXPECT_EQ(Ok("replace('ab', 'x')", Value("abab a")), Value("xx a"));
  EXPECT_TRUE(Ok("replace('a', 'b')", Value()).is_null());
}

TEST(Filters, UrlencodeEscapesAllButUnreservedCharacters) {
  EXPECT_EQ(Ok("urlencode", Value("Søren Ø")), Value("S%C3%B8ren%20%C3%98"));
  EXPECT_EQ(Ok("urlencode", Value("a&b=c/d?e#f")), Value("a%26b%3Dc%2Fd%3Fe%23f"));
  EXPECT_EQ(Ok("urlencode", Value("010185-1233_x.y~")), Value("010185-1233_x.y~"));
  EXPECT_EQ(Ok("urlencode", Value(42)), Value("42"));
}

TEST(Filters, DigitsKeepsOnlyDigits) {
  EXPECT_EQ(Ok("digits", Value("+45 12-34 56.78")), Value("4512345678"));
  EXPECT_EQ(Ok("digits", Value("abc")), Value(""));
  EXPECT_EQ(Ok("digits", Value(123)), Value("123"));
}

TEST(Filters, SplitJoinLengthFirstLast) {
  EXPECT_EQ(Ok("split(',')", Value("a,b,,c")), J(R"(["a","b","","c"])"));
  EXPECT_EQ(Ok("split(', ')", Value("a, b")), J(R"(["a","b"])"));
  EXPECT_EQ(Ok("split(',')", Value("")), J("[]"));
  EXPECT_EQ(Ok("join('; ')", J(R"(["a", 1, null, true])")), Value("a; 1; ; true"));
  EXPECT_EQ(Ok("split(',') | join('+')", Value("x,y")), Value("x+y"));
  Err("join(',')", Value("abcdef"));
  EXPECT_EQ(Ok("length", Value("æøå")), Value(3));
  EXPECT_EQ(Ok("length", J("[1,2]")), Value(2));
  EXPECT_EQ(Ok("length", J(R"({"a":1})")), Value(1));
  EXPECT_EQ(Ok("length", Value()), Value(0));
  EXPECT_EQ(Ok("length", Value(1234)), Value(4));
  EXPECT_EQ(Ok("first", J("[3,4]")), Value(3));
  EXPECT_EQ(Ok("last", J("[3,4]")), Value(4));
  EXPECT_TRUE(Ok("first", J("[]")).is_null());
  EXPECT_EQ(Ok("first", Value("Åse")), Value("Å"));
  EXPECT_EQ(Ok("last", Value("blå")), Value("å"));
  EXPECT_EQ(Ok("last", Value("")), Value(""));
  EXPECT_EQ(Ok("split(' ') | last", Value("Ada Lovelace")), Value("Lovelace"));
  Err("first", J(R"({"a":1})"));
}

TEST(Filters, StringAndJson) {
  EXPECT_EQ(Ok("string", Value(12)), Value("12"));
  EXPECT_EQ(Ok("string", Value(1.5)), Value("1.5"));
  EXPECT_EQ(Ok("string", Value()), Value(""));
  EXPECT_EQ(Ok("string", Value(true)), Value("true"));
  EXPECT_EQ(Ok("json", J(R"({"a":[1,"x"]})")), Value(R"({"a":[1,"x"]})"));
  EXPECT_EQ(Ok("json", Value("q\"")), Value(R"("q\"")"));
  EXPECT_EQ(Ok("json", Value()), Value("null"));
}

// ------------------------------------------------------------ regex

TEST(Filters, RegexMatchSearchesAnywhere) {
  EXPECT_EQ(Ok("regex_match('^[0-9]{4}$')", Value("1234")), Value(true));
  EXPECT_EQ(Ok("regex_match('^[0-9]{4}$')", Value("12345")), Value(false));
  EXPECT_EQ(Ok("regex_match('b+')", Value("abbc")), Value(true));
  EXPECT_EQ(Ok("regex_match('x')", Value()), Value(false));
}

TEST(Filters, RegexExtractReturnsAGroupOrNull) {
  EXPECT_EQ(Ok("regex_extract('id=(\\\\d+)')", Value("a id=42 b")), Value("42"));
  EXPECT_EQ(Ok("regex_extract('(\\\\w+)@(\\\\w+)', 2)", Value("ada@example")), Value("example"));
  EXPECT_EQ(Ok("regex_extract('\\\\d+')", Value("ab12cd")), Value("12"));  // no group: whole match
  EXPECT_EQ(Ok("regex_extract('(a)|(b)', 2)", Value("a")), Value());       // group did not take part
  EXPECT_TRUE(Ok("regex_extract('(\\\\d+)')", Value("none")).is_null());
  EXPECT_TRUE(Ok("regex_extract('(\\\\d+)')", Value()).is_null());
}

TEST(Filters, RegexReplaceUsesDollarGroups) {
  EXPECT_EQ(Ok("regex_replace('(\\\\d{2})-(\\\\d{2})', '$2/$1')", Value("01-02 and 03-04")),
            Value("02/01 and 04/03"));
  EXPECT_EQ(Ok("regex_replace('\\\\s+', ' ')", Value("a   b\t\tc")), Value("a b c"));
}

TEST(Filters, RegexPatternsMayBeComputed) {
  Value rec = J(R"({"v": "abc123", "p": "[0-9]+", "bad": "(x"})");
  Scope s;
  s.record = &rec;
  auto t = Template::Compile("{{ record.v | regex_extract(record.p) }}", TemplateContext::kValue, nullptr);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Evaluate(s).value(), Value("123"));
  EXPECT_EQ(t->Evaluate(s).value(), Value("123"));  // cached
  auto bad = Template::Compile("{{ record.v | regex_match(record.bad) }}", TemplateContext::kValue, nullptr);
  ASSERT_TRUE(bad);
  auto r = bad->Evaluate(s);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.status().message(), "invalid regular expression"));
  EXPECT_FALSE(Has(r.status().message(), "(x"));  // a computed pattern may be data
}

TEST(Filters, RegexLimitsBoundTheWork) {
  // A literal pattern longer than 1000 bytes: a compile error naming the filter and the limit.
  const std::string long_pattern(1001, 'a');
  TemplateError err;
  EXPECT_FALSE(Template::Compile("{{ record.v | regex_match('" + long_pattern + "') }}",
                                 TemplateContext::kValue, &err));
  EXPECT_TRUE(Has(err.message, "regex_match")) << err.message;
  EXPECT_TRUE(Has(err.message, "longer than 1000 bytes")) << err.message;
  // A computed one: an error when evaluated, which does not quote the pattern.
  Value rec = boost::json::object{{"v", "abc"}, {"p", long_pattern}};
  Scope s;
  s.record = &rec;
  auto t = Template::Compile("{{ record.v | regex_extract(record.p) }}", TemplateContext::kValue,
                             nullptr);
  ASSERT_TRUE(t);
  auto r = t->Evaluate(s);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.status().message(), "filter 'regex_extract'")) << r.status().message();
  EXPECT_TRUE(Has(r.status().message(), "longer than 1000 bytes")) << r.status().message();
  EXPECT_FALSE(Has(r.status().message(), "aaaa")) << r.status().message();
  // A value longer than 10000 bytes, in each regex filter.
  const Value long_value(std::string(10001, 'x'));
  EXPECT_TRUE(Has(Err("regex_match('x')", long_value), "longer than 10000 bytes"));
  EXPECT_TRUE(Has(Err("regex_extract('(x)')", long_value), "longer than 10000 bytes"));
  EXPECT_TRUE(Has(Err("regex_replace('x', 'y')", long_value), "longer than 10000 bytes"));
  // A long pattern on a long value: pattern length² × value length over 10^7.
  const std::string pattern200(200, 'a');
  EXPECT_TRUE(Has(Err("regex_match('" + pattern200 + "')", Value(std::string(260, 'b'))),
                  "pattern (200 bytes) is too long for a value of 260 bytes"));
  // At the limits: fine.
  EXPECT_EQ(Ok("regex_match('" + pattern200 + "')", Value(std::string(250, 'b'))), Value(false));
  EXPECT_EQ(Ok("regex_match('" + std::string(1000, 'a') + "')", Value(std::string(10, 'a'))),
            Value(false));
  EXPECT_EQ(Ok("regex_match('x$')", Value(std::string(10000, 'x'))), Value(true));
}

// ------------------------------------------------------------ numbers

TEST(Filters, NumberParsesDecimalCommaAndPoint) {
  EXPECT_EQ(Ok("number(',')", Value("1.234,50")), Value(1234.5));
  EXPECT_EQ(Ok("number(',')", Value("1 234,5")), Value(1234.5));
  EXPECT_EQ(Ok("number(',')", Value("-12,25")), Value(-12.25));
  EXPECT_EQ(Ok("number(',')", Value("1.234.567")), Value(1234567));
  EXPECT_EQ(Ok("number(',')", Value(",5")), Value(0.5));
  EXPECT_EQ(Ok("number", Value("1234.5")), Value(1234.5));
  EXPECT_EQ(Ok("number('.')", Value("1,234.5")), Value(1234.5));
  EXPECT_EQ(Ok("number", Value(" 42 ")), Value(42));
  EXPECT_EQ(Ok("number", Value(3.25)), Value(3.25));
  EXPECT_TRUE(Ok("number", Value("")).is_null());
  EXPECT_TRUE(Ok("number", Value()).is_null());
}

TEST(Filters, NumberRejectsInvalidTextWithoutShowingIt) {
  EXPECT_TRUE(Has(Err("number(',')", Value("12,34,56")), "decimal separator ','"));
  Err("number(',')", Value("1.23,4"));   // a group of two
  Err("number", Value("1,5"));           // a comma is not the decimal separator here
  Err("number", Value("12abc"));
  Err("number", Value("1.2.3"));
  Err("number", Value(true));
}

TEST(Filters, IntAcceptsWholeNumbersOnly) {
  EXPECT_EQ(Ok("int", Value("42")), Value(42));
  EXPECT_EQ(Ok("int", Value("-7")), Value(-7));
  EXPECT_EQ(Ok("int", Value(12.0)), Value(12));
  EXPECT_EQ(Ok("int(',')", Value("1.234")), Value(1234));
  EXPECT_TRUE(Ok("int", Value("")).is_null());
  EXPECT_TRUE(Has(Err("int", Value("12.5")), "whole number"));
  Err("int", Value("abc"));
}

TEST(Filters, FormatNumberRoundsHalfAwayFromZero) {
  EXPECT_EQ(Ok("format_number(2)", Value(1234.5)), Value("1234,50"));
  EXPECT_EQ(Ok("format_number(2, ',', '.')", Value(1234567.891)), Value("1.234.567,89"));
  EXPECT_EQ(Ok("format_number(2, '.', ',')", Value(-1234.005)), Value("-1,234.01"));
  EXPECT_EQ(Ok("format_number(2)", Value(2.675)), Value("2,68"));
  EXPECT_EQ(Ok("format_number(0)", Value(2.5)), Value("3"));
  EXPECT_EQ(Ok("format_number(0)", Value(-0.4)), Value("0"));
  EXPECT_EQ(Ok("format_number(1)", Value(9.96)), Value("10,0"));
  EXPECT_EQ(Ok("format_number(3)", Value(7)), Value("7,000"));
  EXPECT_EQ(Ok("format_number(2)", Value("12.5")), Value("12,50"));
  EXPECT_TRUE(Ok("format_number(2)", Value()).is_null());
  Err("format_number(2)", Value("abc"));
}

TEST(Filters, RoundReturnsNumbers) {
  EXPECT_EQ(Ok("round", Value(2.5)), Value(3));
  EXPECT_EQ(Ok("round(0)", Value(-2.5)), Value(-3));
  EXPECT_EQ(Ok("round(2)", Value(1.005)), Value(1.01));
  EXPECT_EQ(Ok("round(1)", Value("3.14159")), Value(3.1));
  EXPECT_EQ(Ok("round(2)", Value(7)), Value(7));
  EXPECT_EQ(Ok("number(',') | round(1)", Value("2,45")), Value(2.5));
}

// ------------------------------------------------------------ dates

TEST(Filters, DateParsesDanishAndOtherFormatsToIso) {
  EXPECT_EQ(Ok("date('dk')", Value("31-01-2024")), Value("2024-01-31"));
  EXPECT_EQ(Ok("date('%d-%m-%Y')", Value("1-2-2024")), Value("2024-02-01"));
  EXPECT_EQ(Ok("date('%d.%m.%Y')", Value("29.02.2024")), Value("2024-02-29"));
  EXPECT_EQ(Ok("date('%d/%m/%Y')", Value("05/06/1999")), Value("1999-06-05"));
  EXPECT_EQ(Ok("date('iso')", Value(" 2024-12-24 ")), Value("2024-12-24"));
  EXPECT_EQ(Ok("date('%Y-%m-%d')", Value("2024-12-24")), Value("2024-12-24"));
  EXPECT_EQ(Ok("date('%d-%m-%Y %H:%M')", Value("24-12-2024 18:30")), Value("2024-12-24"));
  EXPECT_TRUE(Ok("date('dk')", Value("")).is_null());
  EXPECT_TRUE(Ok("date('dk')", Value()).is_null());
}

TEST(Filters, DateRejectsImpossibleDatesAndMismatches) {
  EXPECT_TRUE(Has(Err("date('dk')", Value("31-02-2024")), "not a valid calendar date"));
  Err("date('dk')", Value("29-02-2023"));
  EXPECT_EQ(Err("date('%d-%m-%Y')", Value("2024-02-01")),
            "filter 'date': value does not match format '%d-%m-%Y'");
  Err("date('dk')", Value("01-02-2024x"));
  Err("date('dk')", Value(20240101));
}

TEST(Filters, DatetimeInterpretsLocalTimeInAZone) {
  EXPECT_EQ(Ok("datetime('%d-%m-%Y %H:%M')", Value("15-01-2026 08:05")), Value("2026-01-15T08:05:00+00:00"));
  EXPECT_EQ(Ok("datetime('%d-%m-%Y %H:%M', 'Europe/Copenhagen')", Value("15-01-2026 08:05")),
            Value("2026-01-15T08:05:00+01:00"));
  EXPECT_EQ(Ok("datetime('%Y-%m-%d %H:%M:%S', 'Europe/Copenhagen')", Value("2026-07-01 12:00:00")),
            Value("2026-07-01T12:00:00+02:00"));
  EXPECT_EQ(Ok("datetime('dk', 'Europe/Copenhagen')", Value("01-07-2026 12:00")),
            Value("2026-07-01T12:00:00+02:00"));
  EXPECT_EQ(Ok("datetime('dk', 'Europe/Copenhagen')", Value("01-07-2026 12:00:07")),
            Value("2026-07-01T12:00:07+02:00"));
  EXPECT_EQ(Ok("datetime('%Y-%m-%d')", Value("2026-07-01")), Value("2026-07-01T00:00:00+00:00"));
}

TEST(Filters, DatetimeAcrossDaylightSavingTransitions) {
  // Spring forward: 02:30 does not exist; it moves to the end of the gap.
  EXPECT_EQ(Ok("datetime('%Y-%m-%d %H:%M', 'Europe/Copenhagen')", Value("2026-03-29 02:30")),
            Value("2026-03-29T03:00:00+02:00"));
  EXPECT_EQ(Ok("datetime('%Y-%m-%d %H:%M', 'Europe/Copenhagen')", Value("2026-03-29 01:59")),
            Value("2026-03-29T01:59:00+01:00"));
  // Fall back: 02:30 happens twice; the earliest (summer time) is taken.
  EXPECT_EQ(Ok("datetime('%Y-%m-%d %H:%M', 'Europe/Copenhagen')", Value("2026-10-25 02:30")),
            Value("2026-10-25T02:30:00+02:00"));
  EXPECT_EQ(Ok("datetime('%Y-%m-%d %H:%M', 'Europe/Copenhagen')", Value("2026-10-25 03:30")),
            Value("2026-10-25T03:30:00+01:00"));
}

TEST(Filters, DatetimeWithAnOffsetIsShownInTheZone) {
  EXPECT_EQ(Ok("datetime('iso')", Value("2026-03-29T03:00:00+02:00")), Value("2026-03-29T01:00:00+00:00"));
  EXPECT_EQ(Ok("datetime('iso', 'Europe/Copenhagen')", Value("2026-06-01T10:00:00Z")),
            Value("2026-06-01T12:00:00+02:00"));
  EXPECT_EQ(Ok("datetime('iso', 'Europe/Copenhagen')", Value("2026-06-01T10:00")),
            Value("2026-06-01T10:00:00+02:00"));
  EXPECT_EQ(Ok("datetime('iso')", Value("2026-06-01T10:00:00.250+0100")),
            Value("2026-06-01T09:00:00.250+00:00"));
  EXPECT_EQ(Ok("datetime('%d-%m-%Y %H:%M %z', 'Europe/Copenhagen')", Value("01-06-2026 10:00 -0500")),
            Value("2026-06-01T17:00:00+02:00"));
  Err("datetime('iso')", Value("2026-06-01X10:00"));
  Err("datetime('dk')", Value("01-06-2026 25:00"));
}

TEST(Filters, DatetimeZoneMayBeComputed) {
  Value rec = J(R"({"v": "2026-01-15 08:00", "tz": "Europe/Copenhagen", "bad": "Mars/Olympus"})");
  Scope s;
  s.record = &rec;
  auto t = Template::Compile("{{ record.v | datetime('%Y-%m-%d %H:%M', record.tz) }}", TemplateContext::kValue,
                             nullptr);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Evaluate(s).value(), Value("2026-01-15T08:00:00+01:00"));
  auto bad = Template::Compile("{{ record.v | datetime('%Y-%m-%d %H:%M', record.bad) }}",
                               TemplateContext::kValue, nullptr);
  ASSERT_TRUE(bad);
  auto r = bad->Evaluate(s);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.status().message(), "unknown time zone"));
}

TEST(Filters, FormatDateFormatsDatesAndInstants) {
  EXPECT_EQ(Ok("format_date('dk')", Value("2024-02-29")), Value("29-02-2024"));
  EXPECT_EQ(Ok("format_date('%d.%m.%y')", Value("2024-02-09")), Value("09.02.24"));
  EXPECT_EQ(Ok("format_date('%d-%m-%Y %H:%M', 'Europe/Copenhagen')", Value("2026-03-29T01:30:00Z")),
            Value("29-03-2026 03:30"));
  EXPECT_EQ(Ok("format_date('%Y-%m-%dT%H:%M:%S%z')", Value("2026-03-29T03:00:00+02:00")),
            Value("2026-03-29T01:00:00+0000"));
  EXPECT_EQ(Ok("format_date('%FT%T%:z', 'Europe/Copenhagen')", Value("2026-10-25T00:30:00Z")),
            Value("2026-10-25T02:30:00+02:00"));
  EXPECT_EQ(Ok("format_date('%FT%T%:z', 'Europe/Copenhagen')", Value("2026-10-25T01:30:00Z")),
            Value("2026-10-25T02:30:00+01:00"));
  // A calendar date is not moved between zones.
  EXPECT_EQ(Ok("format_date('dk', 'America/New_York')", Value("2024-01-01")), Value("01-01-2024"));
  EXPECT_EQ(Ok("format_date('100%% %Y')", Value("2024-01-01")), Value("100% 2024"));
  EXPECT_TRUE(Ok("format_date('dk')", Value()).is_null());
  Err("format_date('dk')", Value("29-02-2024"));
  Err("format_date('dk')", Value("2023-02-29"));
}

TEST(Filters, RunStartedAtCanBeFormatted) {
  Value run = J(R"({"started_at": "2026-06-01T08:00:00+00:00"})");
  Scope s;
  s.run = &run;
  auto t = Template::Compile("{{ run.started_at | format_date('%d-%m-%Y %H:%M', 'Europe/Copenhagen') }}",
                             TemplateContext::kValue, nullptr);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Evaluate(s).value(), Value("01-06-2026 10:00"));
}

// ------------------------------------------------------------ CPR

TEST(Filters, CprNormalisesWithAndWithoutDash) {
  EXPECT_EQ(Ok("cpr", Value("010203-1237")), Value("0102031237"));
  EXPECT_EQ(Ok("cpr", Value(" 0102031237 ")), Value("0102031237"));
  EXPECT_EQ(Ok("cpr_dashed", Value("0102031237")), Value("010203-1237"));
  EXPECT_EQ(Ok("cpr_dashed", Value("010203-1237")), Value("010203-1237"));
  EXPECT_TRUE(Ok("cpr", Value()).is_null());
  EXPECT_TRUE(Ok("cpr", Value("")).is_null());
}

TEST(Filters, CprRejectsWrongShapesWithoutShowingThem) {
  for (const char* bad : {"01020-31237", "010203123", "01020312377", "0102O31237", "010203 1237", "010203--237"}) {
    EXPECT_EQ(Err("cpr", Value(bad)), "filter 'cpr': not a CPR number") << bad;
  }
  Err("cpr_dashed", Value("12345"));
  Err("cpr", Value(102031237));
  EXPECT_FALSE(cpr::IsCprShape("010203_1237"));
  EXPECT_TRUE(cpr::IsCprShape("010203-1237"));
  EXPECT_TRUE(cpr::IsCprShape("0102031237"));
}

TEST(Filters, CprBirthdateFollowsTheCenturyRule) {
  struct Case {
    const char* cpr;
    const char* date;
  } cases[] = {
      {"010203-0000", "1903-02-01"},  // 7th digit 0 -> 1900s
      {"311299-3999", "1999-12-31"},  // 3 -> 1900s
      {"010136-4000", "2036-01-01"},  // 4, YY <= 36 -> 2000s
      {"010137-4000", "1937-01-01"},  // 4, YY > 36 -> 1900s
      {"010110-9000", "2010-01-01"},  // 9, YY <= 36 -> 2000s
      {"010150-9000", "1950-01-01"},  // 9, YY > 36 -> 1900s
      {"010157-5000", "2057-01-01"},  // 5, YY <= 57 -> 2000s
      {"010158-5000", "1858-01-01"},  // 5, YY > 57 -> 1800s
      {"010100-8000", "2000-01-01"},  // 8, YY <= 57 -> 2000s
      {"311299-8000", "1899-12-31"},  // 8, YY > 57 -> 1800s
      {"290200-4000", "2000-02-29"},  // leap year 2000
      {"010161-6000", "1861-01-01"},  // 6 -> 1800s
      {"010120-7000", "2020-01-01"},  // 7 -> 2000s
  };
  for (const auto& c : cases) EXPECT_EQ(Ok("cpr_birthdate", Value(c.cpr)), Value(c.date)) << c.cpr;
  EXPECT_EQ(Err("cpr_birthdate", Value("290299-1234")), "filter 'cpr_birthdate': CPR number has no valid birth date");
  Err("cpr_birthdate", Value("321299-1234"));
  Err("cpr_birthdate", Value("011399-1234"));
}

TEST(Filters, CprSexFromTheLastDigit) {
  EXPECT_EQ(Ok("cpr_sex", Value("070761-4285")), Value("male"));
  EXPECT_EQ(Ok("cpr_sex", Value("0102031234")), Value("female"));
  Err("cpr_sex", Value("abc"));
}

TEST(Filters, CprMod11AndValidity) {
  EXPECT_EQ(Ok("cpr_mod11", Value("070761-4285")), Value(true));
  EXPECT_EQ(Ok("cpr_mod11", Value("010203-1237")), Value(true));
  EXPECT_EQ(Ok("cpr_mod11", Value("010203-1234")), Value(false));
  EXPECT_EQ(Ok("cpr_valid", Value("010203-1234")), Value(true));  // modulus 11 not required
  EXPECT_EQ(Ok("cpr_valid", Value("320203-1234")), Value(false));
  EXPECT_EQ(Ok("cpr_valid", Value("12345")), Value(false));
  EXPECT_EQ(Ok("cpr_valid", Value()), Value(false));
  EXPECT_TRUE(cpr::IsValid("0707614285"));
  EXPECT_FALSE(cpr::IsValid("0713614285"));
}

TEST(Filters, CprFailingMod11WarnsButIsNotRejected) {
  Warnings w;
  auto r = Apply("cpr", Value("010203-1234"), &w);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), Value("0102031234"));
  ASSERT_EQ(w.messages.size(), 1u);
  EXPECT_EQ(w.messages[0], "CPR number fails the modulus-11 check (allowed since 2007)");
  EXPECT_EQ(Apply("cpr_valid", Value("010203-1234"), &w).value(), Value(true));
  EXPECT_EQ(w.messages.size(), 2u);
  // Passing numbers do not warn; no sink is fine too.
  EXPECT_TRUE(Apply("cpr_dashed", Value("0707614285"), &w).ok());
  EXPECT_EQ(w.messages.size(), 2u);
  EXPECT_TRUE(Apply("cpr", Value("010203-1234")).ok());
}

TEST(Filters, MaskHidesCprsAndText) {
  EXPECT_EQ(Ok("mask", Value("010203-1234")), Value("xxxxxx-xxxx"));
  EXPECT_EQ(Ok("mask", Value("0102031234")), Value("xxxxxx-xxxx"));
  EXPECT_EQ(Ok("mask", Value("Bo Ørn, 12")), Value("xx xxx, xx"));
  EXPECT_TRUE(Ok("mask", Value()).is_null());
}

// ------------------------------------------------------------ lookup

TEST(Filters, LookupReadsAColumnOfTheMatchingRow) {
  FakeTables tables;
  EXPECT_EQ(Apply("lookup('departments', 'name')", Value("10"), nullptr, &tables).value(), Value("Finance"));
  EXPECT_EQ(Apply("lookup('departments', 'name')", Value(20), nullptr, &tables).value(), Value("IT"));
  EXPECT_TRUE(Apply("lookup('departments', 'head')", Value("20"), nullptr, &tables).value().is_null());
  EXPECT_TRUE(Apply("lookup('departments', 'name')", Value("99"), nullptr, &tables).value().is_null());
  EXPECT_EQ(Apply("lookup('departments', 'name') | default('?')", Value("99"), nullptr, &tables).value(),
            Value("?"));
  EXPECT_TRUE(Apply("lookup('departments', 'name')", Value(), nullptr, &tables).value().is_null());
  EXPECT_EQ(tables.calls, 5);
}

TEST(Filters, LookupErrors) {
  FakeTables tables;
  auto unknown = Apply("lookup('nope', 'name')", Value("10"), nullptr, &tables);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(Has(unknown.status().message(), "filter 'lookup'"));
  EXPECT_TRUE(Has(unknown.status().message(), "unknown table 'nope'"));
  auto column = Apply("lookup('departments', 'budget')", Value("10"), nullptr, &tables);
  ASSERT_FALSE(column.ok());
  EXPECT_TRUE(Has(column.status().message(), "no column 'budget'"));
  auto no_tables = Apply("lookup('departments', 'name')", Value("10"));
  ASSERT_FALSE(no_tables.ok());
  EXPECT_TRUE(Has(no_tables.status().message(), "no lookup tables"));
  EXPECT_FALSE(Apply("lookup('', 'name')", Value("10"), nullptr, &tables).ok());
}

// ------------------------------------------------------------ limits.template_bytes

// Evaluates `tmpl` over record {a: 100 'a', x: 500 'x', c: 200 control characters, big: 600
// 'b'} with limits.template_bytes at 1 KiB.
Result<Value> Limited(std::string_view tmpl, TemplateContext context = TemplateContext::kValue) {
  Value rec = boost::json::object{{"a", std::string(100, 'a')},
                                  {"x", std::string(500, 'x')},
                                  {"c", std::string(200, '\x01')},
                                  {"big", std::string(600, 'b')}};
  Scope s;
  s.record = &rec;
  s.max_text_bytes = 1024;
  TemplateError err;
  auto t = Template::Compile(tmpl, context, &err);
  if (!t) return Status::Invalid("compile: " + err.message);
  if (context == TemplateContext::kValue) return t->Evaluate(s);
  auto text = t->Render(s);
  if (!text.ok()) return text.status();
  return Value(boost::json::string(*text));
}

std::string LimitedError(std::string_view tmpl, TemplateContext context = TemplateContext::kValue) {
  auto r = Limited(tmpl, context);
  EXPECT_FALSE(r.ok()) << tmpl;
  return r.ok() ? "" : r.status().message();
}

// Filters that can grow their input say how much they would make before they
// make it: memory never holds more than the limit.
TEST(Filters, GrowingFiltersRefuseBeforeTheyMakeTheText) {
  const std::string hundred(100, 'x');
  EXPECT_EQ(LimitedError("{{ record.a | replace('a', '" + hundred + "') }}"),
            "the filter 'replace' would make a text of 10000 bytes, more than "
            "limits.template_bytes (1 KiB)");
  EXPECT_EQ(LimitedError("{{ record.x | split('x') }}"),
            "the filter 'split' would make a list of 501 items (about 12524 bytes in memory), "
            "more than limits.template_bytes (1 KiB)");
  EXPECT_EQ(LimitedError("{{ record.a | split('aaaaaaaaaa') | join(record.big) }}"),
            "the filter 'join' would make a text of 6000 bytes, more than limits.template_bytes "
            "(1 KiB)");
  EXPECT_EQ(LimitedError("{{ record.a | regex_replace('a', '" + hundred + "') }}"),
            "the filter 'regex_replace' would make a text longer than limits.template_bytes "
            "(1 KiB)");
  EXPECT_EQ(LimitedError("{{ record.c | json }}"),
            "the filter 'json' would make a text of 1202 bytes, more than "
            "limits.template_bytes (1 KiB)");
  EXPECT_EQ(LimitedError("{{ record | string }}"),
            "the filter 'string' would make a text of 2432 bytes, more than "
            "limits.template_bytes (1 KiB)");
  EXPECT_EQ(LimitedError("{{ record.big ~ record.x }}"),
            "the operator '~' would make a text of 1100 bytes, more than "
            "limits.template_bytes (1 KiB)");
  // Under the limit, each works as before.
  EXPECT_EQ(Limited("{{ record.x | replace('x', 'y') | length }}").value(), Value(500));
  EXPECT_EQ(Limited("{{ (record.big ~ '!') | length }}").value(), Value(601));
}

TEST(Filters, TemplateOutputStopsBeforeItPassesTheLimit) {
  EXPECT_EQ(LimitedError("{{ record.big }}{{ record.big }}", TemplateContext::kText),
            "the template would make a text of 1200 bytes, more than limits.template_bytes "
            "(1 KiB)");
  // Escaping counts: 200 control characters are 1200 bytes of JSON.
  EXPECT_EQ(LimitedError("{\"c\": \"{{ record.c }}\"}", TemplateContext::kJson),
            "the template would make a text of 1207 bytes, more than limits.template_bytes "
            "(1 KiB)");
  EXPECT_TRUE(Limited("{{ record.big }}{{ record.x | length }}", TemplateContext::kText).ok());
}

// ------------------------------------------------------------ hints

TEST(Filters, UnknownFilterHintsUseTheTable) {
  TemplateError err;
  EXPECT_FALSE(Template::Compile("{{ record.v | regex_extrct('x') }}", TemplateContext::kText, &err));
  EXPECT_TRUE(Has(err.message, "did you mean 'regex_extract'?")) << err.message;
  EXPECT_FALSE(Template::Compile("{{ record.v | cpr_birthday }}", TemplateContext::kText, &err));
  EXPECT_TRUE(Has(err.message, "did you mean 'cpr_birthdate'?")) << err.message;
  EXPECT_FALSE(Template::Compile("{{ record.v | frobnicate }}", TemplateContext::kText, &err));
  EXPECT_FALSE(Has(err.message, "did you mean")) << err.message;
}

}  // namespace
}  // namespace keyonce
