// Fuzzes the template language: the first byte picks the TemplateContext, the
// rest is the template text. Compiles it, and when it compiles, lists its
// references and evaluates and renders it against a fixed scope (every root
// set, a lookup table and a warning sink), so the parser and every filter
// see arbitrary arguments.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keyonce/template.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using keyonce::Value;

class Tables : public keyonce::TableResolver {
 public:
  keyonce::Result<std::optional<keyonce::Record>> Find(std::string_view table,
                                                       const Value& key) override {
    if (table != "departments") return keyonce::Status::Invalid("unknown table");
    if (key.is_string() && key.as_string() == "IT") {
      keyonce::Record row;
      row["name"] = "IT";
      row["id"] = 7;
      return std::optional<keyonce::Record>(std::move(row));
    }
    return std::optional<keyonce::Record>();
  }
};

class Warnings : public keyonce::WarningSink {
 public:
  void Warn(const std::string& message) override { count += message.size() > 0; }
  int count = 0;
};

struct Fixture {
  Value record = boost::json::parse(R"({
    "name": "Anna Hansen", "cpr": "010190-1234", "cpr2": "0101901234", "amount": "1.234,50",
    "n": 42, "x": -3.75, "big": 9223372036854775807, "flag": true, "none": null,
    "date": "2026-03-29", "ts": "2026-10-25T02:30:00+02:00", "Fra dato": "29.03.2026",
    "dept": "IT", "items": [1, "two", 3.5, null, {"k": "v"}], "nested": {"a": {"b": "c"}},
    "empty": "", "spaces": "  a  b  ", "unicode": "Æbleø Ål"})");
  Value params = boost::json::parse(R"({"from": "2026-01-01", "limit": 10, "who": "Bo"})");
  Value secrets = boost::json::parse(R"({"api_token": "s3cret-token"})");
  Value captures = boost::json::parse(R"({"cases": {"id": 17, "ref": "K-1"}})");
  Value run =
      boost::json::parse(R"({"id": "r1", "started_at": "2026-03-29T01:00:00Z", "recipe": "fuzz"})");
  Value state = boost::json::parse(R"({"watermark": "2026-03-28T00:00:00Z"})");
  Value reply = boost::json::parse(R"({"id": 5, "data": {"items": [{"id": 1}]}})");
  Value lookup = boost::json::parse(R"({"name": "IT", "id": 7})");
  Value key = Value("IT");
  Tables tables;
  Warnings warnings;
  keyonce::Scope scope;
  Fixture() {
    scope.record = &record;
    scope.params = &params;
    scope.secrets = &secrets;
    scope.captures = &captures;
    scope.run = &run;
    scope.state = &state;
    scope.reply = &reply;
    scope.lookup = &lookup;
    scope.key = &key;
    scope.tables = &tables;
    scope.warnings = &warnings;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return -1;
  static Fixture* fx = new Fixture();
  auto ctx = static_cast<keyonce::TemplateContext>(data[0] % 5);
  std::string_view text = keyonce::fuzz::AsText(data + 1, size - 1);
  keyonce::TemplateError error;
  auto t = keyonce::Template::Compile(text, ctx, &error);
  if (!t) {
    if (error.offset > text.size() || error.message.empty()) __builtin_trap();
    return 0;
  }
  for (const auto& ref : t->References()) {
    if (ref.offset > text.size()) __builtin_trap();
  }
  keyonce::Template copy = *t;  // copies share the compiled form
  (void)copy.Evaluate(fx->scope);
  std::vector<Value> binds;
  (void)copy.Render(fx->scope, &binds);
  // Every root absent: reading fields of null roots must work too.
  (void)t->Render(keyonce::Scope{}, &binds);
  return 0;
}
