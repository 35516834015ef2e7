// The template language: compiling, errors, evaluation and context-aware
// rendering. Filters have their own tests in filters_test.cc.
#include "keyonce/template.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <thread>

namespace keyonce {
namespace {

Value J(std::string_view json) { return boost::json::parse(json); }

struct Fixture {
  Value record = J(R"({"name": "Ada", "Fra dato": "01-02-2024", "n": 7, "items": ["a", "b", "c"],
                      "nested": {"deep": {"x": 42}}, "empty": "", "nul": null,
                      "quote": "It's <b>\"bold\"</b> & more", "num_text": "10"})");
  Value params = J(R"({"month": "2024-02", "key": "name", "i": 1})");
  Value secrets = J(R"({"api_token": "s3cr3t"})");
  Value run = J(R"({"id": "r1", "started_at": "2024-02-01T10:00:00+00:00"})");
  Scope scope;
  Fixture() {
    scope.record = &record;
    scope.params = &params;
    scope.secrets = &secrets;
    scope.run = &run;
  }
};

Template MustCompile(std::string_view text, TemplateContext ctx = TemplateContext::kValue) {
  TemplateError err;
  auto t = Template::Compile(text, ctx, &err);
  EXPECT_TRUE(t.has_value()) << text << ": " << err.message << " at " << err.offset;
  return t ? *t : Template();
}

Value Eval(std::string_view text, const Scope& scope) {
  auto r = MustCompile(text).Evaluate(scope);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? r.value() : Value();
}

std::string RenderIn(std::string_view text, TemplateContext ctx, const Scope& scope,
                     std::vector<Value>* binds = nullptr) {
  auto r = MustCompile(text, ctx).Render(scope, binds);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? r.value() : std::string();
}

TemplateError CompileError(std::string_view text) {
  TemplateError err;
  auto t = Template::Compile(text, TemplateContext::kText, &err);
  EXPECT_FALSE(t.has_value()) << text;
  return err;
}

// ------------------------------------------------------------ compile errors

TEST(Template, UnknownFilterPointsAtItsNameWithHint) {
  std::string text = "Hello {{ record.name | uper }}";
  auto err = CompileError(text);
  EXPECT_EQ(err.offset, text.find("uper"));
  EXPECT_NE(err.message.find("unknown filter 'uper'"), std::string::npos) << err.message;
  EXPECT_NE(err.message.find("did you mean 'upper'?"), std::string::npos) << err.message;
}

TEST(Template, UnknownRootPointsAtItsNameWithHint) {
  std::string text = "x {{ recrd.name }}";
  auto err = CompileError(text);
  EXPECT_EQ(err.offset, text.find("recrd"));
  EXPECT_NE(err.message.find("did you mean 'record'?"), std::string::npos) << err.message;
}

TEST(Template, UnknownNameFarFromAnyRootListsTheRoots) {
  auto err = CompileError("{{ zzzzzzzz }}");
  EXPECT_EQ(err.offset, 3u);
  EXPECT_NE(err.message.find("record, params"), std::string::npos) << err.message;
}

TEST(Template, UnterminatedOpenPointsAtTheBraces) {
  std::string text = "abc {{ record.name ";
  auto err = CompileError(text);
  EXPECT_EQ(err.offset, 4u);
  EXPECT_NE(err.message.find("unterminated"), std::string::npos);
  std::string text2 = "a {{ record.x  b {{ record.y }}";
  EXPECT_EQ(CompileError(text2).offset, 2u);
}

TEST(Template, WrongArgumentCountPointsAtTheFilter) {
  std::string text = "{{ record.name | replace('a') }}";
  auto err = CompileError(text);
  EXPECT_EQ(err.offset, text.find("replace"));
  EXPECT_NE(err.message.find("takes 2 arguments, got 1"), std::string::npos) << err.message;
  std::string text2 = "{{ record.name | trim(1) }}";
  EXPECT_EQ(CompileError(text2).offset, text2.find("trim"));
  std::string text3 = "{{ record.name | default }}";
  EXPECT_NE(CompileError(text3).message.find("takes 1 argument, got 0"), std::string::npos);
}

TEST(Template, SyntaxErrorsHaveOffsets) {
  struct Case {
    std::string text;
    std::string at;  // the offset is where this substring starts
    std::string says;
  } cases[] = {
      {"{{ record.a record.b }}", "record.b", "expected '}}'"},
      {"{{ record. }}", "}}", "field name"},
      {"{{ record.a = 'x' }}", "= 'x'", "'=='"},
      {"{{ 'abc }}", "'abc", "unterminated string"},
      {"{{ }}", "}}", "empty expression"},
      {"{{ (record.a }}", "}}", "expected ')'"},
      {"{{ record[0 }}", "}}", "expected ']'"},
      {"{{ record.a | }}", "}}", "filter name"},
      {"{{ record.a && record.b }}", "&&", "'and'"},
      {"{{ record.a < 1 < 2 }}", "< 2", "chained"},
      {"{{ 'a\\q' }}", "\\q", "unknown escape"},
      {"{{ record.a + 1 }}", "+", "'~'"},
      {"{{ record.a # }}", "#", "unexpected character"},
      {"{{ record.items.0 }}", "0", "[0]"},
      {"{{ record.a | replace('a' 'b') }}", "'b'", "expected ',' or ')'"},
      {"{{ and }}", "and", "expected a value"},
      {"{{ record.navn_\xC3\xA6 }}", "\xC3", "brackets"},
  };
  for (const auto& c : cases) {
    auto err = CompileError(c.text);
    // The substring searched after "{{" so that "}}" finds the closing braces.
    size_t at = c.text.find(c.at, c.at == "}}" ? 2 : 0);
    EXPECT_EQ(err.offset, at) << c.text << " -> " << err.message;
    EXPECT_NE(err.message.find(c.says), std::string::npos) << c.text << " -> " << err.message;
  }
}

TEST(Template, BadLiteralFilterArgumentsPointAtTheArgument) {
  std::string t1 = "{{ record.a | regex_match('(unclosed') }}";
  auto e1 = CompileError(t1);
  EXPECT_EQ(e1.offset, t1.find("'(unclosed'"));
  EXPECT_NE(e1.message.find("invalid regular expression"), std::string::npos) << e1.message;

  std::string t2 = "{{ record.a | datetime('iso', 'Europe/Kopenhagen') }}";
  auto e2 = CompileError(t2);
  EXPECT_EQ(e2.offset, t2.find("'Europe/Kopenhagen'"));
  EXPECT_NE(e2.message.find("unknown time zone"), std::string::npos);

  std::string t3 = "{{ record.a | date('%d-%q-%Y') }}";
  EXPECT_EQ(CompileError(t3).offset, t3.find("'%d-%q"));

  std::string t4 = "{{ record.a | number(';') }}";
  EXPECT_EQ(CompileError(t4).offset, t4.find("';'"));

  std::string t5 = "{{ record.a | format_number(-1) }}";
  EXPECT_EQ(CompileError(t5).offset, t5.find("-1"));

  std::string t6 = "{{ record.a | regex_extract('(a)', 2) }}";
  EXPECT_EQ(CompileError(t6).offset, t6.find("2)"));

  std::string t7 = "{{ record.a | split('') }}";
  EXPECT_EQ(CompileError(t7).offset, t7.find("''"));
}

TEST(Template, DeepNestingIsACompileError) {
  std::string text = "{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}";
  EXPECT_NE(CompileError(text).message.find("nested too deeply"), std::string::npos);
  std::string nots = "{{ ";
  for (int i = 0; i < 500; ++i) nots += "not ";
  nots += "true }}";
  EXPECT_NE(CompileError(nots).message.find("nested too deeply"), std::string::npos);
  MustCompile("{{ ((((record.a)))) }}");
}

TEST(Template, CompileWithoutErrorPointerDoesNotCrash) {
  EXPECT_FALSE(Template::Compile("{{", TemplateContext::kText, nullptr).has_value());
}

// ------------------------------------------------------------ evaluation

TEST(Template, TextWithoutBracesIsConstant) {
  Fixture f;
  auto t = MustCompile("plain } { text }}", TemplateContext::kText);
  EXPECT_TRUE(t.IsConstant());
  EXPECT_EQ(t.Evaluate(f.scope).value(), Value("plain } { text }}"));
  EXPECT_EQ(t.Render(f.scope).value(), "plain } { text }}");
  EXPECT_FALSE(MustCompile("{{ 1 }}").IsConstant());
}

TEST(Template, LoneExpressionKeepsItsTypeInValueContext) {
  Fixture f;
  EXPECT_EQ(Eval("{{ record.n }}", f.scope), Value(7));
  EXPECT_EQ(Eval("  {{ record.n }}\n", f.scope), Value(7));
  EXPECT_EQ(Eval("{{ record.items }}", f.scope), J(R"(["a","b","c"])"));
  EXPECT_EQ(Eval("{{ record.nested.deep }}", f.scope), J(R"({"x":42})"));
  EXPECT_EQ(Eval("{{ 3.5 }}", f.scope), Value(3.5));
  EXPECT_EQ(Eval("{{ -12 }}", f.scope), Value(-12));
  EXPECT_EQ(Eval("{{ true }}", f.scope), Value(true));
  EXPECT_TRUE(Eval("{{ null }}", f.scope).is_null());
  EXPECT_EQ(Eval("{{ 'it\\'s' }}", f.scope), Value("it's"));
  EXPECT_EQ(Eval("{{ \"a\\\"b\\n\\u00e6\" }}", f.scope), Value("a\"b\n\xC3\xA6"));
}

TEST(Template, MixedTextIsAString) {
  Fixture f;
  EXPECT_EQ(Eval("n={{ record.n }}", f.scope), Value("n=7"));
  EXPECT_EQ(Eval("{{ record.n }}{{ record.n }}", f.scope), Value("77"));
  EXPECT_EQ(Eval("[{{ record.nul }}]", f.scope), Value("[]"));
  auto text = MustCompile("{{ record.n }}", TemplateContext::kText).Evaluate(f.scope);
  EXPECT_EQ(text.value(), Value("7"));
}

TEST(Template, PathsReadFieldsBracketsAndIndexes) {
  Fixture f;
  EXPECT_EQ(Eval("{{ record.name }}", f.scope), Value("Ada"));
  EXPECT_EQ(Eval("{{ record[\"Fra dato\"] }}", f.scope), Value("01-02-2024"));
  EXPECT_EQ(Eval("{{ record['Fra dato'] }}", f.scope), Value("01-02-2024"));
  EXPECT_EQ(Eval("{{ record.items[0] }}", f.scope), Value("a"));
  EXPECT_EQ(Eval("{{ record.items[-1] }}", f.scope), Value("c"));
  EXPECT_EQ(Eval("{{ record.nested.deep.x }}", f.scope), Value(42));
  EXPECT_EQ(Eval("{{ record[params.key] }}", f.scope), Value("Ada"));
  EXPECT_EQ(Eval("{{ record.items[params.i] }}", f.scope), Value("b"));
  EXPECT_EQ(Eval("{{ secrets.api_token }}", f.scope), Value("s3cr3t"));
  EXPECT_EQ(Eval("{{ run.started_at }}", f.scope), Value("2024-02-01T10:00:00+00:00"));
  EXPECT_EQ(Eval("{{ (record.items | join('-')) }}", f.scope), Value("a-b-c"));
  EXPECT_EQ(Eval("{{ ('a,b' | split(','))[1] }}", f.scope), Value("b"));
}

TEST(Template, MissingFieldsAndAbsentRootsAreNull) {
  Fixture f;
  EXPECT_TRUE(Eval("{{ record.missing }}", f.scope).is_null());
  EXPECT_TRUE(Eval("{{ record.missing.deeper[3] }}", f.scope).is_null());
  EXPECT_TRUE(Eval("{{ record.items[9] }}", f.scope).is_null());
  EXPECT_TRUE(Eval("{{ record.name.x }}", f.scope).is_null());
  EXPECT_TRUE(Eval("{{ record.items.x }}", f.scope).is_null());
  EXPECT_TRUE(Eval("{{ state.watermark }}", f.scope).is_null());
  EXPECT_TRUE(Eval("{{ captures.crm.id }}", f.scope).is_null());
  EXPECT_TRUE(Eval("{{ reply.status }}", f.scope).is_null());
  EXPECT_TRUE(Eval("{{ lookup.name }}", f.scope).is_null());
  EXPECT_EQ(Eval("{{ state.watermark | default('1970-01-01') }}", f.scope), Value("1970-01-01"));
  Scope empty;
  EXPECT_TRUE(Eval("{{ record.name }}", empty).is_null());
}

TEST(Template, AllRootsAreReadable) {
  Value v = J(R"({"k": "v"})");
  Scope s;
  s.record = s.params = s.secrets = s.captures = s.run = s.state = s.reply = s.lookup = &v;
  for (const char* root : {"record", "params", "secrets", "captures", "run", "state", "reply", "lookup"}) {
    EXPECT_EQ(Eval(std::string("{{ ") + root + ".k }}", s), Value("v")) << root;
  }
}

TEST(Template, ComparisonsAreNumericForNumbersAndNumericText) {
  Fixture f;
  EXPECT_EQ(Eval("{{ record.n == 7 }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ record.n == '7' }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ record.num_text > 9 }}", f.scope), Value(true));     // 10 > 9
  EXPECT_EQ(Eval("{{ record.num_text > '9' }}", f.scope), Value(true));   // both numeric text
  EXPECT_EQ(Eval("{{ 'abc' < 'abd' }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ '10a' > '9' }}", f.scope), Value(false));            // as strings
  EXPECT_EQ(Eval("{{ 2.5 >= 2 }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ 1.0 == 1 }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ record.name != 'Ada' }}", f.scope), Value(false));
  EXPECT_EQ(Eval("{{ record.n <= 6 }}", f.scope), Value(false));
  EXPECT_EQ(Eval("{{ record.missing == null }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ record.empty == '' }}", f.scope), Value(true));
  // Numeric text of any length compares exactly.
  EXPECT_EQ(Eval("{{ '12345678901234567890123' == '12345678901234567890124' }}", f.scope), Value(false));
  EXPECT_EQ(Eval("{{ '12345678901234567890123' < '12345678901234567890124' }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ '007' == 7 }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ '-1.50' == -1.5 }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ '-2' < '-10' }}", f.scope), Value(false));
  EXPECT_EQ(Eval("{{ '0.1' < 0.25 }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ '-0' == 0 }}", f.scope), Value(true));
}

TEST(Template, LogicShortCircuitsAndReturnsBooleans) {
  Fixture f;
  EXPECT_EQ(Eval("{{ record.n == 7 and record.name == 'Ada' }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ record.n == 8 or record.name == 'Ada' }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ not record.empty }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ not (record.n == 7 and false) }}", f.scope), Value(true));
  EXPECT_EQ(Eval("{{ record.name and record.n }}", f.scope), Value(true));
  // `or` precedence below `and`.
  EXPECT_EQ(Eval("{{ true or false and false }}", f.scope), Value(true));
  // The right side is not evaluated (it would fail: 'x' is not a date).
  EXPECT_EQ(Eval("{{ false and ('x' | date('iso')) }}", f.scope), Value(false));
  EXPECT_EQ(Eval("{{ true or ('x' | date('iso')) }}", f.scope), Value(true));
}

TEST(Template, TildeConcatenatesText) {
  Fixture f;
  EXPECT_EQ(Eval("{{ record.name ~ '-' ~ record.n }}", f.scope), Value("Ada-7"));
  EXPECT_EQ(Eval("{{ record.nul ~ 'x' }}", f.scope), Value("x"));
  // Filters bind tighter than ~.
  EXPECT_EQ(Eval("{{ 'a' ~ 'b' | upper }}", f.scope), Value("aB"));
  EXPECT_EQ(Eval("{{ ('a' ~ 'b') | upper }}", f.scope), Value("AB"));
  EXPECT_EQ(Eval("{{ record.name | lower == 'ada' }}", f.scope), Value(true));
}

TEST(Template, FilterChainsAndArgumentsAreExpressions) {
  Fixture f;
  EXPECT_EQ(Eval("{{ '  Hi  ' | trim | upper }}", f.scope), Value("HI"));
  EXPECT_EQ(Eval("{{ record.missing | default(record.name ~ '!') | lower }}", f.scope), Value("ada!"));
  EXPECT_EQ(Eval("{{ record.empty | default('x') }}", f.scope), Value("x"));
  EXPECT_EQ(Eval("{{ record.n | default('x') }}", f.scope), Value(7));
}

TEST(Template, EvaluateAndRenderDoNotChangeTheScope) {
  Fixture f;
  Value before = f.record;
  auto t = MustCompile("{{ record.items | first }}{{ record.name | upper }}");
  ASSERT_TRUE(t.Evaluate(f.scope).ok());
  EXPECT_EQ(f.record, before);
}

TEST(Template, RuntimeErrorsNameTheFilterButNotTheValue) {
  Value rec = J(R"({"d": "31-13-1999-SECRETVALUE"})");
  Scope s;
  s.record = &rec;
  auto r = MustCompile("{{ record.d | date('dk') }}").Evaluate(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalid);
  EXPECT_NE(r.status().message().find("filter 'date'"), std::string::npos);
  EXPECT_EQ(r.status().message().find("SECRETVALUE"), std::string::npos);
}

TEST(Template, CopiesShareTheCompiledTemplate) {
  Fixture f;
  Template a = MustCompile("x{{ record.n }}", TemplateContext::kText);
  Template b = a;
  Template c = std::move(a);
  EXPECT_EQ(b.Render(f.scope).value(), "x7");
  EXPECT_EQ(c.Render(f.scope).value(), "x7");
  EXPECT_EQ(c.source(), "x{{ record.n }}");
  EXPECT_EQ(c.context(), TemplateContext::kText);
  Template d;
  EXPECT_TRUE(d.IsConstant());
  EXPECT_EQ(d.source(), "");
  EXPECT_EQ(d.Render(f.scope).value(), "");
}

TEST(Template, ConcurrentEvaluationIsSafe) {
  auto t = MustCompile("{{ record.v | regex_replace(params.p, 'x') | upper }}-{{ record.v | digits }}",
                       TemplateContext::kText);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      Value rec = boost::json::object{{"v", "ab" + std::to_string(k)}};
      Value params = boost::json::object{{"p", "b"}};
      Scope s;
      s.record = &rec;
      s.params = &params;
      for (int i = 0; i < 500; ++i) {
        auto r = t.Render(s);
        if (!r.ok() || *r != "AX" + std::to_string(k) + "-" + std::to_string(k)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

// ------------------------------------------------------------ contexts

TEST(Template, TextContextInsertsTextForms) {
  Fixture f;
  EXPECT_EQ(RenderIn("{{ record.name }} has {{ record.n }} {{ record.items }} {{ record.nul }}.",
                     TemplateContext::kText, f.scope),
            "Ada has 7 [\"a\",\"b\",\"c\"] .");
  EXPECT_EQ(RenderIn("v={{ record.n }}", TemplateContext::kValue, f.scope), "v=7");
}

TEST(Template, JsonContextEncodesValues) {
  Fixture f;
  EXPECT_EQ(RenderIn(R"({"name": {{ record.name }}, "n": {{ record.n }}, "x": {{ record.nul }}, "l": {{ record.items }}, "b": {{ true }}})",
                     TemplateContext::kJson, f.scope),
            R"({"name": "Ada", "n": 7, "x": null, "l": ["a","b","c"], "b": true})");
  Value rec = J(R"({"s": "a\"b\\c\nd\te\u0001f/</script>"})");
  Scope s;
  s.record = &rec;
  std::string out = RenderIn("{\"v\": {{ record.s }}}", TemplateContext::kJson, s);
  EXPECT_EQ(out, R"({"v": "a\"b\\c\nd\te\u0001f/</script>"})");
  // The output is valid JSON that round-trips the value.
  EXPECT_EQ(J(out).at("v"), rec.at("s"));
}

TEST(Template, JsonEscapingCoversEveryControlByteAndLeavesTheRestAlone) {
  // Every byte below 0x20, DEL, '"' and '\\' escaped; UTF-8 and '/' kept;
  // escapes at both ends and side by side.
  std::string text;
  for (int c = 0; c < 0x20; ++c) text.push_back(static_cast<char>(c));
  text += "\x7f\"\\/\xC3\xA6 plain text\"";
  Value rec = boost::json::object{{"s", text}};
  Scope s;
  s.record = &rec;
  std::string out = RenderIn("{{ record.s }}", TemplateContext::kJson, s);
  EXPECT_EQ(out,
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
            "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
            "\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\u007f\\\"\\\\/\xC3\xA6 plain "
            "text\\\"\"");
  EXPECT_EQ(J(out), rec.at("s"));
}

TEST(Template, JsonContextWritesNumbersInShortestForm) {
  Value rec = J(R"({"a": 1234.5, "b": 0.1, "c": -3, "d": 1e300, "o": {"x": [2.5, "q\"", null]}})");
  Scope s;
  s.record = &rec;
  EXPECT_EQ(RenderIn("[{{ record.a }},{{ record.b }},{{ record.c }},{{ record.d }},{{ record.o }}]",
                     TemplateContext::kJson, s),
            R"([1234.5,0.1,-3,1e+300,{"x":[2.5,"q\"",null]}])");
}

TEST(Template, BracesInsideStringLiteralsDoNotCloseTheExpression) {
  Fixture f;
  EXPECT_EQ(Eval("{{ '}}' ~ \"{{\" }}", f.scope), Value("}}{{"));
  EXPECT_EQ(RenderIn("a {{ '{{' }} b }}", TemplateContext::kText, f.scope), "a {{ b }}");
}

TEST(Template, JsonContextInsideAStringEscapesWithoutQuotes) {
  Value rec = J(R"({"s": "say \"hi\"\n", "n": 5})");
  Scope s;
  s.record = &rec;
  std::string out = RenderIn(R"({"msg": "Hello {{ record.s }} #{{ record.n }}", "raw": {{ record.s }}})",
                             TemplateContext::kJson, s);
  EXPECT_EQ(out, R"({"msg": "Hello say \"hi\"\n #5", "raw": "say \"hi\"\n"})");
  EXPECT_EQ(J(out).at("msg"), Value("Hello say \"hi\"\n #5"));
  // An escaped quote inside a JSON string does not end it.
  EXPECT_EQ(RenderIn(R"({"a": "x\"{{ record.n }}"})", TemplateContext::kJson, s), R"({"a": "x\"5"})");
}

TEST(Template, XmlContextEscapesMarkup) {
  Fixture f;
  EXPECT_EQ(RenderIn("<p title='{{ record.quote }}'>{{ record.quote }}</p>", TemplateContext::kXml, f.scope),
            "<p title='It&apos;s &lt;b&gt;&quot;bold&quot;&lt;/b&gt; &amp; more'>"
            "It&apos;s &lt;b&gt;&quot;bold&quot;&lt;/b&gt; &amp; more</p>");
  EXPECT_EQ(RenderIn("<n>{{ record.n }}</n>", TemplateContext::kXml, f.scope), "<n>7</n>");
  Value rec = J(R"({"c": "a\u0001b\tc"})");
  Scope s;
  s.record = &rec;
  EXPECT_EQ(RenderIn("<c>{{ record.c }}</c>", TemplateContext::kXml, s), "<c>a\xEF\xBF\xBD" "b\tc</c>");
}

TEST(Template, SqlContextBindsValuesInOrder) {
  Fixture f;
  std::vector<Value> binds;
  std::string sql = RenderIn(
      "SELECT * FROM t WHERE name = {{ record.name }} AND n > {{ record.n }} AND x = {{ secrets.api_token }}",
      TemplateContext::kSql, f.scope, &binds);
  EXPECT_EQ(sql, "SELECT * FROM t WHERE name = ? AND n > ? AND x = ?");
  ASSERT_EQ(binds.size(), 3u);
  EXPECT_EQ(binds[0], Value("Ada"));
  EXPECT_EQ(binds[1], Value(7));  // typed
  EXPECT_EQ(binds[2], Value("s3cr3t"));
  EXPECT_EQ(sql.find("Ada"), std::string::npos);
  EXPECT_EQ(sql.find("s3cr3t"), std::string::npos);
}

TEST(Template, SqlInjectionAttemptStaysInTheBind) {
  Value rec = J(R"({"name": "x'); DROP TABLE t; --"})");
  Scope s;
  s.record = &rec;
  std::vector<Value> binds;
  std::string sql = RenderIn("INSERT INTO t VALUES ({{ record.name }})", TemplateContext::kSql, s, &binds);
  EXPECT_EQ(sql, "INSERT INTO t VALUES (?)");
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0], rec.at("name"));
}

TEST(Template, SqlContextNeedsBinds) {
  Fixture f;
  auto t = MustCompile("SELECT {{ record.n }}", TemplateContext::kSql);
  auto r = t.Render(f.scope, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInternal);
  EXPECT_FALSE(t.Evaluate(f.scope).ok());
}

TEST(Template, SqlContextRejectsTemplatesInsideQuotesOrComments) {
  for (std::string text : {"SELECT '{{ record.a }}'", "SELECT \"{{ record.a }}\"",
                           "SELECT 1 -- {{ record.a }}", "SELECT /* {{ record.a }} */ 1"}) {
    TemplateError err;
    EXPECT_FALSE(Template::Compile(text, TemplateContext::kSql, &err).has_value()) << text;
    EXPECT_EQ(err.offset, text.find("{{")) << text;
  }
  // Quotes that are closed, and '' escapes, are fine.
  MustCompile("SELECT 'it''s', \"col\" FROM t /* c */ WHERE a = {{ record.a }} -- done\n AND b = {{ record.b }}",
              TemplateContext::kSql);
}

TEST(Template, SqlBindsAreRolledBackOnError) {
  Value rec = J(R"({"a": 1, "d": "nope"})");
  Scope s;
  s.record = &rec;
  std::vector<Value> binds = {Value("existing")};
  auto r = MustCompile("SELECT {{ record.a }}, {{ record.d | date('iso') }}", TemplateContext::kSql)
               .Render(s, &binds);
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(binds.size(), 1u);
  EXPECT_EQ(binds[0], Value("existing"));
}

// ------------------------------------------------------------ references

TEST(Template, ReferencesListEveryRoot) {
  std::string text = "{{ secrets.api_token }} {{ params[\"Fra dato\"] | default(record.x) }} {{ run }} {{ record[params.k] }}";
  auto refs = MustCompile(text, TemplateContext::kText).References();
  ASSERT_EQ(refs.size(), 6u);
  EXPECT_EQ(refs[0].root, "secrets");
  EXPECT_EQ(refs[0].name, "api_token");
  EXPECT_EQ(refs[0].offset, text.find("secrets"));
  EXPECT_EQ(refs[1].root, "params");
  EXPECT_EQ(refs[1].name, "Fra dato");
  EXPECT_EQ(refs[2].root, "record");
  EXPECT_EQ(refs[2].name, "x");
  EXPECT_EQ(refs[3].root, "run");
  EXPECT_EQ(refs[3].name, "");
  EXPECT_EQ(refs[4].root, "record");
  EXPECT_EQ(refs[4].name, "");  // computed index
  EXPECT_EQ(refs[5].root, "params");
  EXPECT_EQ(refs[5].name, "k");
  EXPECT_EQ(refs[5].offset, text.rfind("params"));
}

TEST(Template, FilterNamesListsTheTable) {
  auto names = FilterNames();
  for (const char* n : {"trim", "upper", "lower", "default", "replace", "regex_match", "regex_extract",
                        "regex_replace", "digits", "split", "join", "length", "first", "last", "string",
                        "int", "number", "format_number", "round", "date", "datetime", "format_date",
                        "cpr", "cpr_dashed", "cpr_birthdate", "cpr_sex", "cpr_mod11", "cpr_valid",
                        "lookup", "mask", "json"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
}

}  // namespace
}  // namespace keyonce
