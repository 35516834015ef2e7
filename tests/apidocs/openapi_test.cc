// docs/openapi.yaml and docs/api.md against the real `keyonce serve`.
//
// The OpenAPI file is parsed (yaml-cpp) and checked on its own: version,
// every $ref resolves, every operation has an id and responses, every path
// parameter is declared. Then the service is started on a temp recipes
// folder with an admin token, a run is started that quarantines two records,
// and every operation of the file is called with real ids (the documented
// request body examples as bodies): each answer must be a status the file
// documents for that operation, never 404 for the admin, and a JSON body must
// match the documented schema (no missing required field, no undocumented
// field, right types). The same operations without a token must answer 401
// exactly where the file says a token is needed. docs/api.md must mention
// every path and every metric the service exports.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/service.h"

namespace keyonce::testing_util {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using std::chrono::seconds;

const std::string kAdmin = "ko_" + std::string(40, 'a');
const char* kRecipe = "sick-leave-to-payroll";

fs::path SourceDir() { return fs::path(KEYONCE_SOURCE_DIR); }

std::string Binary() {
  const char* b = std::getenv("KEYONCE_BINARY");
  return b && *b ? b : KEYONCE_BINARY;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* const kMethods[] = {"get",     "put",  "post",  "delete",
                                "options", "head", "patch", "trace"};

// A YAML node as JSON: quoted scalars are strings, plain ones are typed
// (null, booleans, integers, decimals, else strings).
json::value YamlToJson(const YAML::Node& n) {
  if (n.IsMap()) {
    json::object o;
    for (const auto& kv : n) o[kv.first.Scalar()] = YamlToJson(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    json::array a;
    for (const auto& v : n) a.push_back(YamlToJson(v));
    return a;
  }
  if (!n.IsScalar()) return nullptr;
  const std::string& s = n.Scalar();
  if (n.Tag() != "?") return json::value(s);  // quoted
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  if (s == "true") return true;
  if (s == "false") return false;
  static const std::regex int_re("^-?[0-9]+$"), num_re("^-?[0-9]+\\.[0-9]+$");
  if (std::regex_match(s, int_re)) return static_cast<int64_t>(std::stoll(s));
  if (std::regex_match(s, num_re)) return std::stod(s);
  return json::value(s);
}

// v[key], or null when v is not an object or has no such key.
const json::value& At(const json::value& v, std::string_view key) {
  static const json::value kNull;
  if (!v.is_object()) return kNull;
  const json::value* f = v.as_object().if_contains(key);
  return f ? *f : kNull;
}
bool Has(const json::value& v, std::string_view key) {
  return v.is_object() && v.as_object().contains(key);
}
// A scalar as text (strings as they are, numbers and booleans serialized).
std::string Text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "";
  return json::serialize(v);
}
const json::array& Items(const json::value& v) {
  static const json::array kEmpty;
  return v.is_array() ? v.as_array() : kEmpty;
}

struct Operation {
  std::string path;    // as in the file: /api/v1/runs/{id}
  std::string method;  // lower case, as in the file
  const json::value* node = nullptr;
  const json::value* path_item = nullptr;
  std::set<std::string> codes;  // documented response codes
  const json::value& op() const { return *node; }
  std::string Name() const {
    std::string m = method;
    std::transform(m.begin(), m.end(), m.begin(), ::toupper);
    return m + " " + path;
  }
};

// The OpenAPI document (as JSON), loaded once.
class Spec {
 public:
  static const Spec& Get() {
    static Spec spec;
    return spec;
  }
  const json::value& root() const { return root_; }
  const std::vector<Operation>& operations() const { return ops_; }
  const std::string& error() const { return error_; }

  // "#/components/schemas/Run" -> the value, or null when it does not resolve.
  const json::value* Resolve(const std::string& ref) const {
    if (ref.rfind("#/", 0) != 0) return nullptr;
    const json::value* n = &root_;
    std::string rest = ref.substr(2);
    while (!rest.empty()) {
      size_t slash = rest.find('/');
      std::string key = rest.substr(0, slash);
      if (!Has(*n, key)) return nullptr;
      n = &At(*n, key);
      rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
    }
    return n;
  }
  // Follows $ref chains; null when one does not resolve.
  const json::value& Deref(const json::value& v) const {
    static const json::value kNull;
    const json::value* n = &v;
    for (int i = 0; i < 10 && Has(*n, "$ref"); ++i) {
      n = Resolve(Text(At(*n, "$ref")));
      if (!n) return kNull;
    }
    return *n;
  }
  // The path and operation parameters, dereferenced.
  std::vector<const json::value*> Parameters(const Operation& op) const {
    std::vector<const json::value*> out;
    for (const json::value* list : {&At(*op.path_item, "parameters"), &At(op.op(), "parameters")}) {
      for (const auto& p : Items(*list)) out.push_back(&Deref(p));
    }
    return out;
  }
  // The operation's effective security: its own, else the document's.
  const json::value& Security(const Operation& op) const {
    return Has(op.op(), "security") ? At(op.op(), "security") : At(root_, "security");
  }
  bool NeedsToken(const Operation& op) const { return !Items(Security(op)).empty(); }

 private:
  Spec() {
    fs::path file = SourceDir() / "docs" / "openapi.yaml";
    try {
      root_ = YamlToJson(YAML::LoadFile(file.string()));
    } catch (const YAML::Exception& e) {
      error_ = file.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
               std::to_string(e.mark.column + 1) + ": " + e.msg;
      return;
    }
    if (!At(root_, "paths").is_object()) {
      error_ = file.string() + ": no `paths:` mapping";
      return;
    }
    for (const auto& [path, item] : At(root_, "paths").as_object()) {
      for (const char* m : kMethods) {
        if (!Has(item, m)) continue;
        Operation op{std::string(path), m, &At(item, m), &item, {}};
        if (At(op.op(), "responses").is_object()) {
          for (const auto& [code, r] : At(op.op(), "responses").as_object()) {
            op.codes.insert(std::string(code));
          }
        }
        ops_.push_back(std::move(op));
      }
    }
  }
  json::value root_;
  std::vector<Operation> ops_;
  std::string error_;
};

// Checks a JSON value against an OpenAPI 3.0 schema (the subset the file
// uses): $ref, allOf, oneOf, type, nullable, enum, required, properties,
// additionalProperties, items, maxItems. An object schema with `properties`
// and no `additionalProperties` is closed: undocumented fields are problems.
class SchemaCheck {
 public:
  explicit SchemaCheck(const Spec& spec) : spec_(spec) {}

  std::vector<std::string> Check(const json::value& schema, const json::value& v) {
    problems_.clear();
    Value(schema, v, "$", true);
    return problems_;
  }

 private:
  void Problem(const std::string& where, const std::string& what) {
    if (problems_.size() < 20) problems_.push_back(where + ": " + what);
  }

  // Every property name an object schema declares, through $ref and allOf;
  // *open when it allows others.
  void Properties(const json::value& schema, std::set<std::string>* names, bool* open) {
    const json::value& s = spec_.Deref(schema);
    if (!s.is_object()) return;
    if (At(s, "properties").is_object()) {
      for (const auto& [k, p] : At(s, "properties").as_object()) names->insert(std::string(k));
    }
    const json::value& extra = At(s, "additionalProperties");
    if (!extra.is_null() && !(extra.is_bool() && !extra.as_bool())) *open = true;
    if (!Has(s, "properties") && !Has(s, "allOf")) *open = true;
    for (const auto& part : Items(At(s, "allOf"))) Properties(part, names, open);
  }

  static bool TypeMatches(const std::string& type, const json::value& v) {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "integer") return v.is_int64() || v.is_uint64();
    if (type == "number") return v.is_number();
    if (type == "boolean") return v.is_bool();
    return true;
  }

  void Value(const json::value& s, const json::value& v, const std::string& where, bool closed) {
    if (Has(s, "$ref")) {
      const json::value* target = spec_.Resolve(Text(At(s, "$ref")));
      if (!target) return Problem(where, "unresolved $ref " + Text(At(s, "$ref")));
      return Value(*target, v, where, closed);
    }
    if (!s.is_object()) return;
    if (v.is_null()) {
      if (At(s, "nullable").is_bool() && At(s, "nullable").as_bool()) return;
      if (Has(s, "allOf") || Has(s, "oneOf") || Has(s, "type")) {
        Problem(where, "is null, but the schema is not nullable");
      }
      return;
    }
    if (Has(s, "allOf")) {
      for (const auto& part : Items(At(s, "allOf"))) Value(part, v, where, false);
      if (closed && v.is_object()) Unknown(s, v, where);
      return;
    }
    if (Has(s, "oneOf")) {
      auto saved = problems_;
      for (const auto& alt : Items(At(s, "oneOf"))) {
        problems_.clear();
        Value(alt, v, where, closed);
        if (problems_.empty()) {
          problems_ = saved;
          return;
        }
      }
      problems_ = saved;
      return Problem(where, "matches none of the oneOf alternatives: " + json::serialize(v));
    }
    std::string type = Text(At(s, "type"));
    if (!type.empty() && !TypeMatches(type, v)) {
      return Problem(where, "is " + Kind(v) + ", the file says " + type);
    }
    if (Has(s, "enum") && v.is_string()) {
      bool found = false;
      for (const auto& e : Items(At(s, "enum"))) found |= Text(e) == v.as_string();
      if (!found) {
        Problem(where, "'" + std::string(v.as_string()) + "' is not in the documented enum");
      }
    }
    if (v.is_object()) {
      const auto& o = v.as_object();
      for (const auto& r : Items(At(s, "required"))) {
        if (!o.contains(Text(r))) Problem(where, "required field '" + Text(r) + "' is missing");
      }
      for (const auto& [k, fv] : o) {
        const json::value& props = At(s, "properties");
        if (Has(props, k)) {
          Value(At(props, k), fv, where + "." + std::string(k), true);
        } else if (At(s, "additionalProperties").is_object()) {
          Value(At(s, "additionalProperties"), fv, where + "." + std::string(k), true);
        }
      }
      if (closed) Unknown(s, v, where);
    }
    if (v.is_array() && Has(s, "items")) {
      const auto& a = v.as_array();
      if (At(s, "maxItems").is_int64() &&
          static_cast<int64_t>(a.size()) > At(s, "maxItems").as_int64()) {
        Problem(where, "has more items than the documented maximum");
      }
      for (size_t i = 0; i < a.size(); ++i) {
        Value(At(s, "items"), a[i], where + "[" + std::to_string(i) + "]", true);
      }
    }
  }

  void Unknown(const json::value& s, const json::value& v, const std::string& where) {
    std::set<std::string> names;
    bool open = false;
    Properties(s, &names, &open);
    if (open) return;
    for (const auto& [k, fv] : v.as_object()) {
      if (!names.count(std::string(k))) {
        Problem(where, "field '" + std::string(k) + "' is returned but not documented");
      }
    }
  }

  static std::string Kind(const json::value& v) {
    if (v.is_object()) return "an object";
    if (v.is_array()) return "an array";
    if (v.is_string()) return "a string";
    if (v.is_bool()) return "a boolean";
    if (v.is_number()) return "a number";
    return "null";
  }

  const Spec& spec_;
  std::vector<std::string> problems_;
};

std::string Show(const HttpReply& r) {
  std::string body = r.body.size() > 400 ? r.body.substr(0, 400) + "..." : r.body;
  return "HTTP " + std::to_string(r.status) + (r.error.empty() ? "" : " (" + r.error + ")") + ": " +
         body;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

// ---------------------------------------------------------------------------
// The file on its own.

TEST(OpenApiFile, IsWellFormed) {
  const Spec& spec = Spec::Get();
  ASSERT_TRUE(spec.error().empty()) << spec.error();
  const json::value& root = spec.root();
  EXPECT_EQ(Text(At(root, "openapi")), "3.0.3");
  ASSERT_FALSE(spec.operations().empty());

  // Every $ref anywhere resolves.
  std::function<void(const json::value&, const std::string&)> walk = [&](const json::value& n,
                                                                         const std::string& where) {
    if (n.is_object()) {
      for (const auto& [k, v] : n.as_object()) {
        if (k == "$ref") {
          EXPECT_NE(spec.Resolve(Text(v)), nullptr)
              << where << ": $ref " << Text(v) << " does not resolve";
        } else if (k != "example") {
          walk(v, where + "/" + std::string(k));
        }
      }
    } else if (n.is_array()) {
      for (size_t i = 0; i < n.as_array().size(); ++i) {
        walk(n.as_array()[i], where + "/" + std::to_string(i));
      }
    }
  };
  walk(root, "#");

  // The schemas and security schemes the API guide refers to.
  const json::value& components = At(root, "components");
  for (const char* s :
       {"Run", "Recipe", "Param", "QuarantineItem", "Error", "Session", "ScheduleEntry"}) {
    EXPECT_TRUE(Has(At(components, "schemas"), s)) << "schema " << s << " is missing";
  }
  const json::value& schemes = At(components, "securitySchemes");
  EXPECT_EQ(Text(At(At(schemes, "bearerAuth"), "scheme")), "bearer");
  EXPECT_EQ(Text(At(At(schemes, "cookieSession"), "in")), "cookie");
  EXPECT_EQ(Text(At(At(schemes, "cookieSession"), "name")), "keyonce_session");
  EXPECT_EQ(Text(At(At(schemes, "csrfToken"), "in")), "header");
  EXPECT_EQ(Text(At(At(schemes, "csrfToken"), "name")), "X-CSRF-Token");

  std::set<std::string> ids;
  static const std::regex param_re(R"(\{([a-z_]+)\})");
  for (const auto& op : spec.operations()) {
    std::string id = Text(At(op.op(), "operationId"));
    EXPECT_FALSE(id.empty()) << op.Name() << ": no operationId";
    EXPECT_TRUE(id.empty() || ids.insert(id).second) << op.Name() << ": operationId repeats";
    EXPECT_FALSE(op.codes.empty()) << op.Name() << ": no responses";
    for (const auto& c : op.codes) {
      EXPECT_TRUE(std::regex_match(c, std::regex("^[1-5][0-9][0-9]$"))) << op.Name() << ": " << c;
    }
    if (spec.NeedsToken(op)) {
      EXPECT_TRUE(op.codes.count("401")) << op.Name() << " needs a token but documents no 401";
    }
    // Mutating operations accept the cookie only together with the CSRF header.
    if (op.method != "get" && spec.NeedsToken(op)) {
      bool cookie_with_csrf = false, cookie_alone = false;
      for (const auto& alt : Items(spec.Security(op))) {
        if (Has(alt, "cookieSession"))
          (Has(alt, "csrfToken") ? cookie_with_csrf : cookie_alone) = true;
      }
      EXPECT_TRUE(cookie_with_csrf && !cookie_alone)
          << op.Name() << ": a cookie session needs csrfToken on mutating operations";
    }
    // Every {param} of the path is declared as a path parameter.
    for (std::sregex_iterator it(op.path.begin(), op.path.end(), param_re), end; it != end; ++it) {
      std::string name = (*it)[1];
      bool declared = false;
      for (const json::value* p : spec.Parameters(op)) {
        declared |= Text(At(*p, "in")) == "path" && Text(At(*p, "name")) == name;
      }
      EXPECT_TRUE(declared) << op.Name() << ": path parameter {" << name << "} is not declared";
    }
  }
}

TEST(OpenApiFile, ApiGuideMentionsEveryPath) {
  const Spec& spec = Spec::Get();
  ASSERT_TRUE(spec.error().empty()) << spec.error();
  std::string guide = Slurp(SourceDir() / "docs" / "api.md");
  ASSERT_FALSE(guide.empty()) << "docs/api.md is missing";
  EXPECT_NE(guide.find("openapi.yaml"), std::string::npos) << "docs/api.md does not link the file";
  std::set<std::string> seen;
  for (const auto& op : spec.operations()) {
    if (!seen.insert(op.path).second) continue;
    // In code as `PATH`, `METHOD PATH` or `PATH?query`.
    bool mentioned = guide.find("`" + op.path + "`") != std::string::npos ||
                     guide.find(" " + op.path + "`") != std::string::npos ||
                     guide.find("`" + op.path + "?") != std::string::npos;
    EXPECT_TRUE(mentioned) << "docs/api.md does not mention " << op.path;
  }
}

// ---------------------------------------------------------------------------
// The file against the service.

const char* kRecipeYaml = R"(recipe: sick-leave-to-payroll
label: Sygefravær til løn
description: Sick leave from the rota export into payroll
params:
  month: {type: date, label: Måned, help: Den måned der skal overføres., default: "2026-11-01"}
  letter: {type: enum, label: Brevtype, values: [standard, short], default: standard}
schedule:
  cron: "30 2 * * *"
  timezone: Europe/Copenhagen
  missed: skip
overlap: queue
source:
  type: csv
  path: data/sygefravaer.csv
  delimiter: ";"
steps:
  - validate:
      Timer: {required: true, type: number, min: 0, max: 24, message: "must be hours between 0 and 24"}
  - set:
      hours: "{{ record.Timer | number(',') }}"
key: "{{ record.Medarbejder }}/{{ record.Fra }}"
targets:
  - name: payroll
    type: jsonl
    path: out/payroll.jsonl
    body: {employee: "{{ record.Medarbejder }}", from: "{{ record.Fra }}", hours: "{{ record.hours }}"}
)";

// Two rows with hours out of range: two quarantined records.
const char* kData =
    "Medarbejder;Navn;Fra;Timer\n"
    "m1001;Anna Jensen;02-11-2026;7,5\n"
    "m1002;Bent Hansen;03-11-2026;30\n"
    "m1003;Carla Nielsen;04-11-2026;8\n"
    "m1004;Dorte Larsen;05-11-2026;25\n";

bool Final(const std::string& s) {
  return s == "completed" || s == "completed_with_errors" || s == "failed" || s == "cancelled";
}

class OpenApiService : public ::testing::Test {
 protected:
  OpenApiService() : svc_(Binary()) {}

  void SetUp() override {
    ASSERT_TRUE(Spec::Get().error().empty()) << Spec::Get().error();
    svc_.WriteTokens({{"adam", "admin", {}, kAdmin}});
    svc_.WriteRecipe("sick-leave-to-payroll.yaml", kRecipeYaml);
    svc_.WriteRecipe("data/sygefravaer.csv", kData);
    std::string why;
    ASSERT_TRUE(svc_.Start({"--timezone", "Europe/Copenhagen"}, &why)) << why;
  }
  void TearDown() override {
    if (svc_.Running()) {
      auto code = svc_.Stop(SIGTERM, seconds(120));
      EXPECT_EQ(code, std::optional<int>(0)) << svc_.CurrentLog();
    }
  }

  json::value GetJson(const std::string& path) {
    HttpReply r = svc_.client().Get(path, kAdmin);
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    return ec ? json::value(nullptr) : v;
  }

  // Waits for run `id` to finish; its run object.
  json::value WaitForRun(int64_t id) {
    json::value run;
    auto deadline = std::chrono::steady_clock::now() + seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      run = GetJson("/api/v1/runs/" + std::to_string(id));
      if (run.is_object() && run.as_object().contains("status") &&
          Final(std::string(run.as_object().at("status").as_string()))) {
        return run;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "run " << id << " did not finish in 120 s: " << json::serialize(run) << "\n"
                  << svc_.CurrentLog();
    return run;
  }

  Service svc_;
};

// The order operations are called in: reads first, then edits, then the
// calls that change state (starting runs, cancelling, retrying, dismissing,
// reloading, logging in and out).
int Rank(const Operation& op) {
  if (op.path == "/logout") return 9;
  if (op.path == "/login") return 8;
  if (op.method == "get") return 0;
  if (op.method == "patch") return 1;
  if (op.path == "/api/v1/recipes/{name}/runs") return 2;
  if (op.path == "/api/v1/runs/{id}/cancel") return 3;
  if (op.path == "/api/v1/quarantine/{id}/retry") return 4;
  if (op.path == "/api/v1/quarantine/{id}/dismiss") return 5;
  return 6;
}

TEST_F(OpenApiService, EveryOperationAnswersADocumentedStatus) {
  const Spec& spec = Spec::Get();
  HttpClient& http = svc_.client();

  // A run that quarantines two records: real ids for the paths.
  HttpReply started = http.SendJson("POST", "/api/v1/recipes/sick-leave-to-payroll/runs",
                                    R"({"params":{"month":"2026-11-01"}})", kAdmin);
  ASSERT_EQ(started.status, 202) << Show(started);
  json::value v = json::parse(started.body);
  int64_t run_id = v.at("id").as_int64();
  json::value run = WaitForRun(run_id);
  ASSERT_EQ(run.at("status").as_string(), "completed_with_errors") << json::serialize(run);
  const auto& quarantined = run.at("quarantined").as_array();
  ASSERT_EQ(quarantined.size(), 2u) << json::serialize(run);
  const int64_t q_edit = quarantined[0].at("id").as_int64();     // GET, PATCH, retry
  const int64_t q_dismiss = quarantined[1].at("id").as_int64();  // dismiss
  int64_t newest_run = run_id;

  std::vector<const Operation*> ops;
  for (const auto& op : spec.operations()) ops.push_back(&op);
  std::stable_sort(ops.begin(), ops.end(),
                   [](const Operation* a, const Operation* b) { return Rank(*a) < Rank(*b); });

  SchemaCheck schemas(spec);
  auto fill = [&](const Operation& op) {
    std::string path = op.path;
    auto put = [&](const std::string& name, const std::string& value) {
      size_t pos = path.find("{" + name + "}");
      if (pos != std::string::npos) path.replace(pos, name.size() + 2, value);
    };
    put("name", kRecipe);
    if (op.path.rfind("/api/v1/runs/", 0) == 0) {
      // Cancel the newest run (started just before): 202 while it is queued or running, 409 once
      // it has finished; the others read the first run.
      bool cancel = op.path.find("/cancel") != std::string::npos;
      put("id", std::to_string(cancel ? newest_run : run_id));
    } else if (op.path.rfind("/api/v1/quarantine/", 0) == 0) {
      bool dismiss = op.path.find("/dismiss") != std::string::npos;
      put("id", std::to_string(dismiss ? q_dismiss : q_edit));
    }
    // Any other path parameter: its documented example.
    static const std::regex param_re(R"(\{([a-z_]+)\})");
    std::smatch m;
    while (std::regex_search(path, m, param_re)) {
      std::string example;
      for (const json::value* p : spec.Parameters(op)) {
        if (Text(At(*p, "name")) == m[1].str()) example = Text(At(*p, "example"));
      }
      if (example.empty()) {
        ADD_FAILURE() << op.Name() << ": no example for path parameter " << m[1];
        example = "x";
      }
      path.replace(m.position(0), m.length(0), example);
    }
    // Query parameters with a documented example.
    std::string query;
    for (const json::value* p : spec.Parameters(op)) {
      if (Text(At(*p, "in")) == "query" && Has(*p, "example")) {
        query += (query.empty() ? "?" : "&") + Text(At(*p, "name")) + "=" + Text(At(*p, "example"));
      }
    }
    return path + query;
  };
  auto request = [&](const Operation& op, bool with_token) {
    HttpRequest r;
    r.method = op.method;
    std::transform(r.method.begin(), r.method.end(), r.method.begin(), ::toupper);
    r.path = fill(op);
    if (with_token) r.headers.push_back("Authorization: Bearer " + kAdmin);
    const json::value& content = At(At(op.op(), "requestBody"), "content");
    if (Has(content, "application/json")) {
      // The documented example is the body: the examples work.
      r.headers.push_back("Content-Type: application/json");
      const json::value& example = At(At(content, "application/json"), "example");
      r.body = example.is_null() ? "{}" : json::serialize(example);
    } else if (Has(content, "application/x-www-form-urlencoded")) {
      r.headers.push_back("Content-Type: application/x-www-form-urlencoded");
      r.body = "token=" + kAdmin;
    }
    return r;
  };
  auto check_body = [&](const Operation& op, const std::string& code, const HttpReply& r) {
    const json::value& response = spec.Deref(At(At(op.op(), "responses"), code));
    const json::value& content = At(response, "content");
    if (!content.is_object()) return;
    std::string ctype = Lower(r.Header("content-type"));
    std::string media;
    for (const auto& [type, c] : content.as_object()) {
      if (ctype.rfind(std::string(type), 0) == 0) media = std::string(type);
    }
    EXPECT_FALSE(media.empty()) << op.Name() << " " << code << ": content type '" << ctype
                                << "' is not documented";
    if (media != "application/json") return;
    boost::system::error_code ec;
    json::value body = json::parse(r.body, ec);
    ASSERT_FALSE(ec) << op.Name() << ": not JSON: " << Show(r);
    for (const auto& p : schemas.Check(At(At(content, media), "schema"), body)) {
      ADD_FAILURE() << op.Name() << " " << code << " body " << p << "\n" << Show(r);
    }
    if (op.path == "/api/v1/recipes/{name}/runs" && r.status == 202) {
      newest_run = body.at("id").as_int64();
    }
  };

  for (const Operation* op : ops) {
    SCOPED_TRACE(op->Name());
    // Without a token: 401 exactly where the file says a token is needed (a
    // 401 is answered before anything is done, so no state changes here).
    HttpReply anon = http.Send(request(*op, false));
    if (spec.NeedsToken(*op)) {
      EXPECT_EQ(anon.status, 401) << op->Name() << " without a token: " << Show(anon);
      if (anon.status == 401) {
        EXPECT_NE(anon.Header("www-authenticate").find("Bearer"), std::string::npos);
        check_body(*op, "401", anon);
      }
    } else {
      EXPECT_NE(anon.status, 401) << op->Name() << " is documented as public: " << Show(anon);
    }

    HttpRequest req = request(*op, true);
    HttpReply r = http.Send(req);
    std::string code = std::to_string(r.status);
    EXPECT_TRUE(op->codes.count(code))
        << req.method << " " << req.path << " answered " << Show(r) << ", which the file does not "
        << "document for " << op->Name();
    EXPECT_NE(r.status, 404) << "the admin got 404 from " << req.method << " " << req.path << ": "
                             << Show(r);
    // The admin's request succeeds, except cancelling a run that has finished.
    bool cancel_finished = op->path == "/api/v1/runs/{id}/cancel" && r.status == 409;
    EXPECT_TRUE((r.status >= 200 && r.status < 400) || cancel_finished)
        << req.method << " " << req.path << ": " << Show(r);
    if (op->codes.count(code)) check_body(*op, code, r);
  }

  // The admin does get 404 for what does not exist (the check above means something).
  HttpReply nope = http.Get("/api/v1/no-such-endpoint", kAdmin);
  EXPECT_EQ(nope.status, 404) << Show(nope);

  // The runs started above (a new one, a retry) finish and match the Run schema too.
  const json::value runs = GetJson("/api/v1/runs");
  for (const auto& r : Items(runs)) {
    json::value done = WaitForRun(r.at("id").as_int64());
    const json::value& schema = At(At(At(spec.root(), "components"), "schemas"), "Run");
    for (const auto& p : schemas.Check(schema, done)) ADD_FAILURE() << "run: " << p;
  }
}

// The security schemes as documented: the page logs in with the form, the
// cookie works for reads, and a mutating request with the cookie needs the
// session's X-CSRF-Token (403 without it, which the file documents).
TEST_F(OpenApiService, CookieSessionNeedsCsrfTokenOnMutatingOperations) {
  const Spec& spec = Spec::Get();
  HttpClient& http = svc_.client();
  HttpRequest login;
  login.method = "POST";
  login.path = "/login";
  login.body = "token=" + kAdmin;
  login.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  HttpReply r = http.Send(login);
  ASSERT_EQ(r.status, 303) << Show(r);
  EXPECT_EQ(r.Header("location"), "/");
  std::string set_cookie = r.Header("set-cookie");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(set_cookie, m, std::regex("keyonce_session=([^;]+)")))
      << set_cookie;
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos) << set_cookie;
  const std::string cookie = "Cookie: keyonce_session=" + m[1].str();

  HttpRequest session;
  session.path = "/api/v1/session";
  session.headers.push_back(cookie);
  r = http.Send(session);
  ASSERT_EQ(r.status, 200) << Show(r);
  json::value who = json::parse(r.body);
  ASSERT_TRUE(At(who, "csrf").is_string()) << r.body;
  const std::string csrf(At(who, "csrf").as_string());

  const Operation* reload = nullptr;
  for (const auto& op : spec.operations()) {
    if (op.path == "/api/v1/reload" && op.method == "post") reload = &op;
  }
  ASSERT_NE(reload, nullptr) << "POST /api/v1/reload is not in the file";
  HttpRequest post;
  post.method = "POST";
  post.path = "/api/v1/reload";
  post.headers.push_back(cookie);
  r = http.Send(post);
  EXPECT_EQ(r.status, 403) << "a cookie request without X-CSRF-Token: " << Show(r);
  EXPECT_TRUE(reload->codes.count("403"));
  post.headers.push_back("X-CSRF-Token: " + csrf);
  r = http.Send(post);
  EXPECT_EQ(r.status, 200) << "with X-CSRF-Token: " << Show(r);

  HttpRequest wrong;
  wrong.method = "POST";
  wrong.path = "/login";
  wrong.body = "token=ko_" + std::string(40, '0');
  wrong.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  r = http.Send(wrong);
  EXPECT_EQ(r.status, 303) << Show(r);
  EXPECT_EQ(r.Header("location"), "/?login=failed");
  EXPECT_EQ(r.Header("set-cookie"), "");
}

TEST_F(OpenApiService, ApiGuideDocumentsEveryMetric) {
  // A finished run, so that every per-recipe series has a sample.
  HttpReply started =
      svc_.client().SendJson("POST", "/api/v1/recipes/sick-leave-to-payroll/runs", "", kAdmin);
  ASSERT_EQ(started.status, 202) << Show(started);
  WaitForRun(json::parse(started.body).at("id").as_int64());

  HttpReply m = svc_.client().Get("/metrics", kAdmin);
  ASSERT_EQ(m.status, 200) << Show(m);
  std::string guide = Slurp(SourceDir() / "docs" / "api.md");
  static const std::regex type_re(R"(# TYPE (\S+) (\S+))");
  int n = 0;
  for (std::sregex_iterator it(m.body.begin(), m.body.end(), type_re), end; it != end; ++it, ++n) {
    std::string name = (*it)[1], type = (*it)[2];
    // A row of the metrics table: | `name` | type | ...
    std::regex row("\\| `" + name + "` \\| " + type + " \\|");
    EXPECT_TRUE(std::regex_search(guide, row))
        << "docs/api.md has no metrics table row for " << name << " (" << type << ")";
  }
  EXPECT_GT(n, 10) << m.body;
}

}  // namespace
}  // namespace keyonce::testing_util
