// Nothing lost, nothing twice, over a network that misbehaves: keyonce runs a
// recipe (CSV -> http target POST /cases, `exists: GET /cases/{{ id }}`)
// through keyonce_fault_proxy in front of a real json-server, with every
// fault at a high rate - among them the ambiguous ones where json-server
// applied the POST but keyonce cannot know (reset, timeout, 502 or a
// truncated reply after forwarding). Then the same with kill -9 mid-run.
//
// What must hold: json-server holds every id exactly once, every id reached
// json-server in exactly one POST (post_log.js sees each POST it applied or
// refused, so a resent duplicate would show even though json-server rejects
// duplicate ids), keyonce's summary counts agree, and a rerun writes nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/cli_util.h"
#include "tests/fault_proxy/proxy_fixture.h"

namespace keyonce::fault_proxy_test {
namespace {

namespace fs = std::filesystem;
using testing_util::Keyonce;
using testing_util::Output;

constexpr int kRecords = 300;

std::string Id(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "case-%04d", i);
  return buf;
}

void WriteText(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string Input() {
  std::ostringstream s;
  s << "id;name;amount\n";
  for (int i = 1; i <= kRecords; ++i) s << Id(i) << ";Borger " << i << ";" << i * 7 << ",25\n";
  return s.str();
}

std::string Recipe(int proxy_port, int in_flight) {
  std::string base = "http://127.0.0.1:" + std::to_string(proxy_port);
  return "recipe: exactly-once-http\n"
         "source: {type: csv, path: in.csv, delimiter: \";\"}\n"
         "key: \"{{ record.id }}\"\n"
         "batch_records: 50\n"
         "on_error:\n"
         "  retry_attempts: 30\n"
         "  backoff_seconds: 0.05\n"
         "  backoff_max_seconds: 0.5\n"
         "targets:\n"
         "  - name: cases\n"
         "    type: http\n"
         "    method: POST\n"
         "    url: \"" +
         base +
         "/cases\"\n"
         "    exists: \"" +
         base +
         "/cases/{{ record.id }}\"\n"
         "    body: {id: \"{{ record.id }}\", name: \"{{ record.name }}\", "
         "amount: \"{{ record.amount }}\"}\n"
         "    in_flight: " +
         std::to_string(in_flight) +
         "\n"
         "    timeout_seconds: 1.5\n"
         "    in_doubt: check\n"
         "    capture: {case_id: \"{{ reply.body.id }}\"}\n";
}

class ExactlyOnce : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(upstream_.Start(dir_.path(), &why, post_log_)) << why;
    WriteText(dir_.path() / "in.csv", Input());
  }

  void StartProxy(const std::string& seed, const std::string& rate) {
    std::string why;
    // slow_ms stays below the client's 1.5 s timeout: a request still queued
    // when the client gives up is a hazard no `exists` check can see.
    ASSERT_TRUE(proxy_.Start(
        dir_.path(), upstream_.port(),
        {"--seed", seed, "--fault-rate", rate, "--slow-ms", "300", "--hang-ms", "6000"}, &why))
        << why;
    WriteText(dir_.path() / "recipe.yaml", Recipe(proxy_.port(), 8));
  }

  Output Run() {
    return Keyonce({"run", "recipe.yaml", "--state", "state.db", "--no-progress"}, dir_.path());
  }

  // What json-server holds now, asked directly: id -> copies.
  std::map<std::string, int> Stored() {
    Client direct;
    auto r = direct.Call("GET", upstream_.url() + "/cases");
    EXPECT_EQ(r.status, 200) << r.body;
    std::map<std::string, int> out;
    boost::system::error_code ec;
    auto v = boost::json::parse(r.body, ec);
    if (ec || !v.is_array()) {
      ADD_FAILURE() << "json-server's /cases is not a JSON list";
      return out;
    }
    for (const auto& c : v.as_array()) {
      const auto* id = c.is_object() ? c.as_object().if_contains("id") : nullptr;
      if (id && id->is_string()) ++out[std::string(id->as_string())];
    }
    return out;
  }

  // Every POST that reached json-server: id -> (status -> count).
  std::map<std::string, std::map<int, int>> Posted() {
    std::map<std::string, std::map<int, int>> out;
    std::ifstream in(post_log_);
    for (std::string line; std::getline(in, line);) {
      boost::system::error_code ec;
      auto v = boost::json::parse(line, ec);
      if (ec || !v.is_object()) continue;
      const auto& o = v.as_object();
      std::string id = o.if_contains("id") && o.at("id").is_string()
                           ? std::string(o.at("id").as_string())
                           : "(none)";
      ++out[id][static_cast<int>(o.at("status").to_number<int64_t>())];
    }
    return out;
  }

  size_t PostCount() {
    size_t n = 0;
    for (const auto& [id, by_status] : Posted()) {
      for (const auto& [status, count] : by_status) n += static_cast<size_t>(count);
    }
    return n;
  }

  // The promise, checked on json-server.
  void ExpectEachRecordOnce() {
    auto stored = Stored();
    EXPECT_EQ(stored.size(), static_cast<size_t>(kRecords)) << "records missing in json-server";
    int dups = 0;
    for (const auto& [id, n] : stored) {
      if (n != 1) {
        ++dups;
        ADD_FAILURE() << id << " stored " << n << " times";
      }
    }
    EXPECT_EQ(dups, 0);
    auto posted = Posted();
    EXPECT_EQ(posted.size(), static_cast<size_t>(kRecords));
    for (const auto& [id, by_status] : posted) {
      int total = 0;
      for (const auto& [status, count] : by_status) total += count;
      if (total != 1 || !by_status.count(201)) {
        std::string statuses;
        for (const auto& [status, count] : by_status) {
          statuses += " " + std::to_string(count) + "x HTTP " + std::to_string(status);
        }
        ADD_FAILURE() << id << " reached json-server " << total << " times:" << statuses;
      }
    }
  }

  // How often the proxy applied each fault.
  std::map<std::string, int> FaultCounts() {
    std::map<std::string, int> out;
    for (auto& d : ReadDecisions(proxy_.decisions())) ++out[d["fault"]];
    return out;
  }

  static std::string Describe(const std::map<std::string, int>& counts) {
    std::string s;
    for (const auto& [k, n] : counts) s += " " + k + "=" + std::to_string(n);
    return s;
  }

  TempDir dir_{"keyonce_exactly_once"};
  fs::path post_log_ = dir_.path() / "posts.jsonl";
  JsonServer upstream_;
  FaultProxy proxy_;
};

TEST_F(ExactlyOnce, HttpTargetThroughEveryFaultWritesEachRecordOnce) {
  StartProxy("20261126", "0.35");
  auto run = Run();
  auto faults = FaultCounts();
  SCOPED_TRACE("proxy faults:" + Describe(faults));
  EXPECT_EQ(run.exit_code, 0) << run.all();
  EXPECT_NE(run.out.find("  cases: " + std::to_string(kRecords) + " written, 0 unchanged"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("quarantined 0, in doubt 0"), std::string::npos) << run.out;
  ExpectEachRecordOnce();
  // The run really went through the dangerous cases.
  for (const char* f : {"500", "503", "429", "reset_before", "timeout_before", "reset_after",
                        "timeout_after", "502", "truncate", "slow"}) {
    EXPECT_GT(faults[f], 0) << "the proxy never applied " << f;
  }

  // A rerun (through the same faults) finds everything in the journal.
  size_t posts = PostCount();
  auto again = Run();
  EXPECT_EQ(again.exit_code, 0) << again.all();
  EXPECT_NE(again.out.find("  cases: 0 written, " + std::to_string(kRecords) + " unchanged"),
            std::string::npos)
      << again.out;
  EXPECT_EQ(PostCount(), posts) << "the rerun posted again";
  ExpectEachRecordOnce();
}

TEST_F(ExactlyOnce, KillNineMidRunThroughFaultsThenRerunWritesEachRecordOnce) {
  StartProxy("4711", "0.25");
  std::mt19937 rng(20261126);
  int killed = 0;
  for (int round = 0; round < 4; ++round) {
    size_t before = PostCount();
    // Kill once 5-40 more records have reached json-server: mid-run, with
    // requests in flight and faults pending.
    size_t more = std::uniform_int_distribution<size_t>(5, 40)(rng);
    pid_t pid = testing_util::Spawn({"run", "recipe.yaml", "--state", "state.db", "--no-progress"},
                                    dir_.path());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline && PostCount() < before + more) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (exited) break;  // it finished before the kill: nothing left to interrupt
    if (kill(pid, SIGKILL) == 0) ++killed;
    int status = 0;
    waitpid(pid, &status, 0);
  }
  EXPECT_GE(killed, 3);

  auto last = Run();
  auto faults = FaultCounts();
  SCOPED_TRACE("proxy faults:" + Describe(faults));
  EXPECT_EQ(last.exit_code, 0) << last.all();
  EXPECT_NE(last.out.find("quarantined 0, in doubt 0"), std::string::npos) << last.out;
  ExpectEachRecordOnce();

  size_t posts = PostCount();
  auto again = Run();
  EXPECT_EQ(again.exit_code, 0) << again.all();
  EXPECT_NE(again.out.find("  cases: 0 written, " + std::to_string(kRecords) + " unchanged"),
            std::string::npos)
      << again.out;
  EXPECT_EQ(PostCount(), posts) << "the rerun posted again";
  ExpectEachRecordOnce();
}

}  // namespace
}  // namespace keyonce::fault_proxy_test
