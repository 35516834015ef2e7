// The fault proxy itself, against a real json-server: it forwards and keeps
// connections alive, each fault does what it promises (above all: whether
// the upstream saw the request), and decisions are reproducible per seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/fault_proxy/proxy_fixture.h"

namespace keyonce::fault_proxy_test {
namespace {

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(upstream_.Start(dir_.path(), &why)) << why;
  }

  // Starts a proxy in front of json-server; fails the test if it cannot.
  void StartProxy(FaultProxy& proxy, const std::vector<std::string>& args) {
    std::string why;
    ASSERT_TRUE(proxy.Start(dir_.path(), upstream_.port(), args, &why)) << why;
  }

  // Whether json-server holds case `id` (asked directly, not via the proxy).
  bool UpstreamHas(const std::string& id) {
    Client direct;
    auto r = direct.Call("GET", upstream_.url() + "/cases/" + id);
    EXPECT_EQ(r.code, CURLE_OK) << curl_easy_strerror(r.code);
    EXPECT_TRUE(r.status == 200 || r.status == 404) << r.status;
    return r.status == 200;
  }

  static std::string Case(const std::string& id) { return "{\"id\":\"" + id + "\"}"; }

  // One POST through a proxy that applies `fault` to every request.
  Reply PostWithFault(const std::string& fault, const std::string& id, long timeout_ms = 20000,
                      std::vector<std::string> extra = {}) {
    FaultProxy proxy;
    std::vector<std::string> args = {"--fault-rate", "1", "--faults", fault};
    args.insert(args.end(), extra.begin(), extra.end());
    StartProxy(proxy, args);
    Client c;
    Reply r = c.Call("POST", proxy.url() + "/cases", Case(id), timeout_ms);
    auto d = ReadDecisions(proxy.decisions());
    EXPECT_EQ(d.size(), 1u);
    if (!d.empty()) {
      EXPECT_EQ(d[0]["fault"], fault);
    }
    return r;
  }

  TempDir dir_{"keyonce_fault_proxy_test"};
  JsonServer upstream_;
};

TEST_F(FaultProxyTest, ForwardsRequestsAndKeepsBothSidesAlive) {
  FaultProxy proxy;
  StartProxy(proxy, {});
  Client c;
  auto created = c.Call("POST", proxy.url() + "/cases", Case("fwd-1"));
  ASSERT_EQ(created.code, CURLE_OK) << curl_easy_strerror(created.code);
  EXPECT_EQ(created.status, 201);
  EXPECT_NE(created.body.find("fwd-1"), std::string::npos) << created.body;
  EXPECT_TRUE(UpstreamHas("fwd-1"));

  auto got = c.Call("GET", proxy.url() + "/cases/fwd-1");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.new_connections, 0) << "the client connection was not kept alive";
  auto missing = c.Call("GET", proxy.url() + "/cases/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.new_connections, 0);

  auto d = ReadDecisions(proxy.decisions());
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0]["method"], "POST");
  EXPECT_EQ(d[0]["target"], "/cases");
  EXPECT_EQ(d[0]["fault"], "none");
  EXPECT_EQ(d[0]["upstream_status"], "201");
  EXPECT_EQ(d[1]["upstream_status"], "200");
  EXPECT_EQ(d[2]["status"], "404");
  EXPECT_EQ(d[0]["conn"], d[2]["conn"]);
}

TEST_F(FaultProxyTest, AnswersErrorStatusesWithoutForwarding) {
  for (std::string status : {"500", "503", "429"}) {
    SCOPED_TRACE(status);
    FaultProxy proxy;
    StartProxy(proxy, {"--fault-rate", "1", "--faults", status});
    Client c;
    auto r = c.Call("POST", proxy.url() + "/cases", Case("status-" + status));
    ASSERT_EQ(r.code, CURLE_OK) << curl_easy_strerror(r.code);
    EXPECT_EQ(std::to_string(r.status), status);
    EXPECT_EQ(r.headers["content-type"], "application/json");
    if (status == "429") {
      EXPECT_EQ(r.headers["retry-after"], "1");
    }
    EXPECT_FALSE(UpstreamHas("status-" + status));
    // The connection stays usable after an injected answer.
    auto again = c.Call("GET", proxy.url() + "/cases");
    EXPECT_EQ(again.code, CURLE_OK);
    EXPECT_EQ(again.new_connections, 0);
  }
}

TEST_F(FaultProxyTest, ResetBeforeForwardingNeverReachesUpstream) {
  auto r = PostWithFault("reset_before", "rb");
  EXPECT_EQ(r.code, CURLE_RECV_ERROR) << curl_easy_strerror(r.code);
  EXPECT_FALSE(UpstreamHas("rb"));
}

TEST_F(FaultProxyTest, TimeoutBeforeForwardingNeverReachesUpstream) {
  auto r = PostWithFault("timeout_before", "tb", 1000);
  EXPECT_EQ(r.code, CURLE_OPERATION_TIMEDOUT) << curl_easy_strerror(r.code);
  EXPECT_FALSE(UpstreamHas("tb"));
}

TEST_F(FaultProxyTest, ResetAfterForwardingHidesAnAppliedWrite) {
  auto r = PostWithFault("reset_after", "ra");
  EXPECT_EQ(r.code, CURLE_RECV_ERROR) << curl_easy_strerror(r.code);
  EXPECT_TRUE(UpstreamHas("ra"));
}

TEST_F(FaultProxyTest, TimeoutAfterForwardingHidesAnAppliedWrite) {
  auto r = PostWithFault("timeout_after", "ta", 1000);
  EXPECT_EQ(r.code, CURLE_OPERATION_TIMEDOUT) << curl_easy_strerror(r.code);
  EXPECT_TRUE(UpstreamHas("ta"));
}

TEST_F(FaultProxyTest, BadGatewayAfterForwardingHidesAnAppliedWrite) {
  auto r = PostWithFault("502", "bg");
  ASSERT_EQ(r.code, CURLE_OK) << curl_easy_strerror(r.code);
  EXPECT_EQ(r.status, 502);
  EXPECT_TRUE(UpstreamHas("bg"));
}

TEST_F(FaultProxyTest, TruncatedReplyAfterForwarding) {
  auto r = PostWithFault("truncate", "tr");
  EXPECT_EQ(r.code, CURLE_PARTIAL_FILE) << curl_easy_strerror(r.code);
  EXPECT_EQ(r.status, 201);
  EXPECT_TRUE(UpstreamHas("tr"));
}

TEST_F(FaultProxyTest, SlowDelaysThenForwards) {
  auto r = PostWithFault("slow", "sl", 20000, {"--slow-ms", "800"});
  ASSERT_EQ(r.code, CURLE_OK) << curl_easy_strerror(r.code);
  EXPECT_EQ(r.status, 201);
  EXPECT_GE(r.seconds, 0.75);
  EXPECT_TRUE(UpstreamHas("sl"));
}

TEST_F(FaultProxyTest, SlowDropsTheRequestOfAClientThatLeft) {
  FaultProxy proxy;
  StartProxy(proxy, {"--fault-rate", "1", "--faults", "slow", "--slow-ms", "1500"});
  Client c;
  auto r = c.Call("POST", proxy.url() + "/cases", Case("gone"), 300);
  EXPECT_EQ(r.code, CURLE_OPERATION_TIMEDOUT) << curl_easy_strerror(r.code);
  // The proxy logs the request once it is done with it: after the upstream's
  // reply had it forwarded it, or when it saw the client leave.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto d = ReadDecisions(proxy.decisions());
  while ((d.empty() || d.back().count("unparsable")) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    d = ReadDecisions(proxy.decisions());
  }
  EXPECT_FALSE(UpstreamHas("gone")) << "a request was forwarded after its client had gone";
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["action"], "client left during the delay, not forwarded");
}

// The status each of 60 distinct requests gets through a proxy with `seed`,
// sent in the given order.
std::vector<long> Statuses(const std::string& url, bool reverse) {
  std::vector<int> order(60);
  for (int i = 0; i < 60; ++i) order[i] = i;
  if (reverse) std::reverse(order.begin(), order.end());
  std::vector<long> out(60);
  Client c;
  for (int i : order) out[i] = c.Call("GET", url + "/cases/det-" + std::to_string(i)).status;
  return out;
}

TEST_F(FaultProxyTest, DecisionsDependOnSeedAndRequestNotOnOrder) {
  std::vector<std::string> args = {"--fault-rate", "0.5", "--faults", "500,503"};
  auto with_seed = [&](const std::string& seed, bool reverse) {
    FaultProxy proxy;
    auto a = args;
    a.insert(a.end(), {"--seed", seed});
    StartProxy(proxy, a);
    return Statuses(proxy.url(), reverse);
  };
  auto first = with_seed("7", false);
  int faults = static_cast<int>(
      std::count_if(first.begin(), first.end(), [](long s) { return s == 500 || s == 503; }));
  EXPECT_GT(faults, 15);
  EXPECT_LT(faults, 45);
  EXPECT_EQ(with_seed("7", true), first) << "same seed, other order: other decisions";
  EXPECT_NE(with_seed("8", false), first) << "another seed gave the same decisions";
}

TEST_F(FaultProxyTest, RetryGetsFreshDecisionAndMaxFaultsPerRequestHolds) {
  FaultProxy proxy;
  StartProxy(proxy, {"--fault-rate", "1", "--faults", "503", "--max-faults-per-request", "2"});
  Client c;
  EXPECT_EQ(c.Call("POST", proxy.url() + "/cases", Case("mx")).status, 503);
  EXPECT_EQ(c.Call("POST", proxy.url() + "/cases", Case("mx")).status, 503);
  EXPECT_FALSE(UpstreamHas("mx"));
  EXPECT_EQ(c.Call("POST", proxy.url() + "/cases", Case("mx")).status, 201);
  EXPECT_TRUE(UpstreamHas("mx"));
  auto d = ReadDecisions(proxy.decisions());
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0]["occurrence"], "1");
  EXPECT_EQ(d[2]["occurrence"], "3");
  EXPECT_EQ(d[2]["fault"], "none");
}

TEST_F(FaultProxyTest, PlanFileWeightsFaultsAndLimitsThemToMethods) {
  std::ofstream(dir_.path() / "plan.json")
      << R"({"fault_rate": 1, "faults": {"429": 1, "503": 0}, "methods": ["POST"]})";
  FaultProxy proxy;
  StartProxy(proxy, {"--plan", (dir_.path() / "plan.json").string()});
  Client c;
  auto posted = c.Call("POST", proxy.url() + "/cases", Case("plan"));
  EXPECT_EQ(posted.status, 429);
  EXPECT_EQ(c.Call("GET", proxy.url() + "/cases").status, 200);
  EXPECT_FALSE(UpstreamHas("plan"));
}

TEST_F(FaultProxyTest, BadOptionsAndPlansAreClearErrors) {
  auto plan = dir_.path() / "bad.json";
  std::ofstream(plan) << "{\n  \"fault_rate\": 0.5,\n  \"faults\": [\"500\",]\n}\n";
  std::string out;
  int rc = testing_util::RunProgram(
      {ProxyBinary(), "--listen", "0", "--upstream", "127.0.0.1:1", "--plan", plan.string()}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find(plan.string() + ":3:"), std::string::npos) << out;

  rc = testing_util::RunProgram(
      {ProxyBinary(), "--listen", "0", "--upstream", "127.0.0.1:1", "--faults", "500,reset"}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("unknown fault 'reset'"), std::string::npos) << out;

  rc = testing_util::RunProgram(
      {ProxyBinary(), "--listen", "0", "--upstream", "127.0.0.1:1", "--fault-rate", "1.5"}, &out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("--fault-rate"), std::string::npos) << out;
}

}  // namespace
}  // namespace keyonce::fault_proxy_test
