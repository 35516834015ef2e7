// `keyonce serve` and the command line on one state file (issue 11): a recipe
// runs once at a time across both, in either order; and a quarantine retry
// from the API (as the page's "Save and retry" sends it) runs with the
// parameters of the run that read the record.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/cli_util.h"
#include "tests/support/service.h"

namespace keyonce::testing_util {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using std::chrono::seconds;

const std::string kAdmin = "ko_" + std::string(40, 'a');

json::value Json(const HttpReply& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  return ec ? json::value(nullptr) : v;
}

std::string Str(const json::value& v, const char* key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  if (!f || f->is_null()) return "";
  return f->is_string() ? std::string(f->as_string()) : json::serialize(*f);
}

int64_t Int(const json::value& v, const char* key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return f && f->is_int64() ? f->as_int64() : -1;
}

bool WaitUntil(const std::function<bool()>& done, seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Writes `text` into the FIFO (blocks until a reader has it open).
void Feed(const fs::path& fifo, const std::string& text) {
  int fd = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  for (size_t done = 0; done < text.size();) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  ::close(fd);
}

size_t Lines(const fs::path& file) {
  std::string text = ReadFile(file);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Its source is a FIFO: a run waits in it until the test feeds it.
const char* kHeld = R"(recipe: held
source: {type: csv, path: data/held.csv, delimiter: ";"}
key: "{{ record.id }}"
targets:
  - name: lines
    type: jsonl
    path: out/held.jsonl
    create_dirs: true
    body: {id: "{{ record.id }}"}
)";

class ServiceGuards : public ::testing::Test {
 protected:
  ServiceGuards() : svc_(Binary()) {}
  void SetUp() override {
    svc_.WriteTokens({{"adam", "admin", {}, kAdmin}});
    fs::create_directories(svc_.recipes_dir() / "data");
  }
  void Start() {
    std::string why;
    ASSERT_TRUE(svc_.Start({}, &why)) << why;
  }
  int64_t Trigger(const std::string& recipe, const std::string& params_json = "{}") {
    HttpReply r = svc_.client().SendJson("POST", "/api/v1/recipes/" + recipe + "/runs",
                                         "{\"params\":" + params_json + "}", kAdmin);
    EXPECT_EQ(r.status, 202) << r.body;
    return Int(Json(r), "id");
  }
  json::value Run(int64_t id) {
    return Json(svc_.client().Get("/api/v1/runs/" + std::to_string(id), kAdmin));
  }
  // Waits for the run to end; returns it.
  json::value Await(int64_t id) {
    json::value run;
    EXPECT_TRUE(WaitUntil(
        [&] {
          run = Run(id);
          std::string s = Str(run, "status");
          return !s.empty() && s != "queued" && s != "running";
        },
        seconds(60)))
        << json::serialize(run);
    return run;
  }
  std::vector<std::string> CliRun(const std::string& recipe_file) {
    return {"run", (svc_.recipes_dir() / recipe_file).string(), "--state",
            svc_.state_file().string(), "--no-progress"};
  }

  Service svc_;
};

TEST_F(ServiceGuards, CommandLineRunIsRefusedWhileTheServiceRunsTheRecipe) {
  svc_.WriteRecipe("held.yaml", kHeld);
  fs::path fifo = svc_.recipes_dir() / "data/held.csv";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Start();
  int64_t id = Trigger("held");
  // The service's run holds the recipe once its engine run has started.
  ASSERT_TRUE(svc_.WaitForLog("of held started.", seconds(30))) << svc_.CurrentLog();
  Background second = StartKeyonce(CliRun("held.yaml"), svc_.dir(), "cli");
  bool refused = WaitForText(second.err, "already running", 30);
  Feed(fifo, "id\n1\n2\n3\n");
  Output cli = testing_util::Finish(second);
  json::value run = Await(id);
  EXPECT_TRUE(refused);
  EXPECT_EQ(cli.exit_code, 4) << cli.all();
  EXPECT_NE(cli.err.find("already running"), std::string::npos) << cli.err;
  EXPECT_NE(cli.err.find("started by adam"), std::string::npos) << cli.err;
  EXPECT_EQ(Str(run, "status"), "completed") << json::serialize(run);
  EXPECT_EQ(Lines(svc_.recipes_dir() / "out/held.jsonl"), 3u);
}

TEST_F(ServiceGuards, ServiceRunIsRefusedWhileACommandLineRunHoldsTheRecipe) {
  svc_.WriteRecipe("held.yaml", kHeld);
  fs::path fifo = svc_.recipes_dir() / "data/held.csv";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Start();
  Background cli = StartKeyonce(CliRun("held.yaml"), svc_.dir(), "cli");
  ASSERT_TRUE(WaitForText(cli.err, "started.")) << ReadFile(cli.err);
  int64_t id = Trigger("held");
  json::value run = Await(id);
  EXPECT_EQ(Str(run, "status"), "refused") << json::serialize(run);
  EXPECT_NE(Str(run, "error").find("already running"), std::string::npos) << json::serialize(run);
  EXPECT_NE(Str(run, "outcome").find("did not start"), std::string::npos) << json::serialize(run);
  Feed(fifo, "id\n1\n2\n");
  Output done = testing_util::Finish(cli);
  EXPECT_EQ(done.exit_code, 0) << done.all();
  EXPECT_EQ(Lines(svc_.recipes_dir() / "out/held.jsonl"), 2u);
  // And the service is fine: the next run of the recipe starts.
  std::thread feeder([&] { Feed(fifo, "id\n1\n2\n4\n"); });
  json::value next = Await(Trigger("held"));
  feeder.join();
  EXPECT_EQ(Str(next, "status"), "completed") << json::serialize(next);
  EXPECT_EQ(Lines(svc_.recipes_dir() / "out/held.jsonl"), 3u);
}

const char* kRouted = R"(recipe: routed
params:
  tag: {type: string, default: a}
  dir: {type: string, required: true}
source: {type: csv, path: data/in.csv, delimiter: ";"}
tables:
  departments: {type: csv, path: data/departments.csv, delimiter: ";", key: code}
steps:
  - lookup:
      table: departments
      key: "{{ record.dep }}"
      set: {department: "{{ lookup.name }}"}
      on_missing: quarantine
key: "{{ record.id }}"
targets:
  - name: out
    type: jsonl
    path: "{{ params.dir }}/{{ params.tag }}.jsonl"
    create_dirs: true
    body: {id: "{{ record.id }}", department: "{{ record.department }}"}
)";

TEST_F(ServiceGuards, RetryFromTheInboxRunsWithTheParametersOfItsRun) {
  svc_.WriteRecipe("routed.yaml", kRouted);
  WriteFile(svc_.recipes_dir() / "data/in.csv", "id;dep\n1;D1\n2;D9\n3;D8\n");
  // D9 and D8 are missing: records 2 and 3 wait in the quarantine.
  WriteFile(svc_.recipes_dir() / "data/departments.csv", "code;name\nD1;One\n");
  Start();
  json::value first = Await(Trigger("routed", R"({"tag":"b","dir":"outdir"})"));
  ASSERT_EQ(Str(first, "status"), "completed_with_errors") << json::serialize(first);
  json::value open =
      Json(svc_.client().Get("/api/v1/quarantine?recipe=routed&status=open", kAdmin));
  ASSERT_TRUE(open.is_array() && open.as_array().size() == 2u) << json::serialize(open);
  int64_t q1 = Int(open.as_array()[0], "id"), q2 = Int(open.as_array()[1], "id");

  // As the page's "Save and retry" does: correct a field, then retry (no parameters sent).
  HttpReply patch = svc_.client().SendJson("PATCH", "/api/v1/quarantine/" + std::to_string(q1),
                                           R"({"fields":{"dep":"D1"}})", kAdmin);
  ASSERT_EQ(patch.status, 200) << patch.body;
  HttpReply retry = svc_.client().SendJson(
      "POST", "/api/v1/quarantine/" + std::to_string(q1) + "/retry", "", kAdmin);
  ASSERT_EQ(retry.status, 202) << retry.body;
  json::value r1 = Await(Int(Json(retry), "id"));
  EXPECT_EQ(Str(r1, "status"), "completed") << json::serialize(r1);
  EXPECT_EQ(Str(r1, "error").find("is required"), std::string::npos) << json::serialize(r1);
  EXPECT_EQ(Lines(svc_.recipes_dir() / "outdir/b.jsonl"), 2u);
  EXPECT_FALSE(fs::exists(svc_.recipes_dir() / "outdir/a.jsonl"));

  // An operator may override a parameter on purpose.
  WriteFile(svc_.recipes_dir() / "data/departments.csv", "code;name\nD1;One\nD8;Eight\n");
  HttpReply bad = svc_.client().SendJson(
      "POST", "/api/v1/quarantine/" + std::to_string(q2) + "/retry", R"({"params":[1]})", kAdmin);
  EXPECT_EQ(bad.status, 400) << bad.body;
  HttpReply over =
      svc_.client().SendJson("POST", "/api/v1/quarantine/" + std::to_string(q2) + "/retry",
                             R"({"params":{"tag":"c"}})", kAdmin);
  ASSERT_EQ(over.status, 202) << over.body;
  json::value r2 = Await(Int(Json(over), "id"));
  EXPECT_EQ(Str(r2, "status"), "completed") << json::serialize(r2);
  EXPECT_EQ(Lines(svc_.recipes_dir() / "outdir/c.jsonl"), 1u);
  EXPECT_EQ(Lines(svc_.recipes_dir() / "outdir/b.jsonl"), 2u);
}

}  // namespace
}  // namespace keyonce::testing_util
