// keyonce_fault_proxy: an HTTP/1.1 proxy for tests that injects the faults a
// remote system and the network between produce, so the exactly-once promise
// can be tested against a real server:
//
//   client (keyonce) --> keyonce_fault_proxy --> upstream (json-server, nginx)
//
// Each request is decided on by a seeded hash of (method, target, body, how
// often that same request came before), so a run is reproducible with --seed
// whatever the interleaving of concurrent connections, and a retried request
// gets a fresh decision. The faults:
//
//   not forwarded (the upstream never sees the request):
//     500, 503       answer that status
//     429            answer 429 with Retry-After: 1
//     reset_before   reset the connection (RST) instead of answering
//     timeout_before hang without answering (past the client's timeout)
//   forwarded (the upstream applied the request; the client cannot know):
//     reset_after    reset the connection instead of passing the reply on
//     timeout_after  hang without passing the reply on
//     502            answer 502 instead of the reply
//     truncate       send the reply's header and half its body, then close
//   forwarded, reply passed on:
//     slow           wait --slow-ms first
//
// Every decision is written as one JSON line to --log (never bodies). One
// io_context, one thread; each client connection is a coroutine with its own
// keep-alive upstream connection. Listens on 127.0.0.1 only.
#include <signal.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace keyonce::fault_proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

const std::vector<std::string> kAllFaults = {
    "500",         "503",           "429", "reset_before", "timeout_before",
    "reset_after", "timeout_after", "502", "truncate",     "slow"};

struct Options {
  int listen_port = -1;
  std::string upstream_host;
  int upstream_port = -1;
  uint64_t seed = 1;
  double fault_rate = 0;
  std::vector<std::pair<std::string, double>> faults;  // name, weight
  int slow_ms = 500;
  int hang_ms = 30000;
  int max_faults_per_request = 0;    // 0: no limit
  std::vector<std::string> methods;  // empty: all
  std::string path_prefix;
  std::string log_path;
};

const char* kUsage = R"(Usage: keyonce_fault_proxy --listen PORT --upstream HOST:PORT [options]

  --listen PORT               port on 127.0.0.1 to accept clients on (0: any; printed)
  --upstream HOST:PORT        the real server, e.g. 127.0.0.1:3000
  --seed N                    seed of the decisions (default 1)
  --fault-rate F              share of matching requests that get a fault, 0..1 (default 0)
  --faults LIST               comma-separated faults to choose from, equally likely
                              (default all): 500,503,429,reset_before,timeout_before,
                              reset_after,timeout_after,502,truncate,slow
  --slow-ms N                 delay of `slow` (default 500)
  --hang-ms N                 how long timeout_* hang before closing (default 30000)
  --max-faults-per-request N  after N faults for the same request, always forward (0: no limit)
  --methods LIST              only these methods get faults (default all), e.g. POST,PUT
  --path-prefix P             only targets starting with P get faults (default all)
  --plan FILE                 a JSON object with the same settings (snake_case keys:
                              seed, fault_rate, faults (a list, or an object of name: weight),
                              slow_ms, hang_ms, max_faults_per_request, methods, path_prefix);
                              options given on the command line win
  --log FILE                  one JSON line per request and decision
)";

[[noreturn]] void Fail(const std::string& msg) {
  std::cerr << "keyonce_fault_proxy: " << msg << "\n";
  std::exit(2);
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

long long ParseInt(const std::string& what, const std::string& s, long long lo, long long hi) {
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {
  }
  Fail(what + ": expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
       ", got '" + s + "'");
}

double ParseRate(const std::string& what, const std::string& s) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size() && v >= 0 && v <= 1) return v;
  } catch (const std::exception&) {
  }
  Fail(what + ": expected a number from 0 to 1, got '" + s + "'");
}

void CheckFault(const std::string& where, const std::string& name) {
  for (const auto& f : kAllFaults) {
    if (f == name) return;
  }
  std::string all;
  for (const auto& f : kAllFaults) all += (all.empty() ? "" : ", ") + f;
  Fail(where + ": unknown fault '" + name + "' (known: " + all + ")");
}

std::vector<std::pair<std::string, double>> EqualWeights(const std::vector<std::string>& names,
                                                         const std::string& where) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& n : names) {
    CheckFault(where, n);
    out.emplace_back(n, 1.0);
  }
  if (out.empty()) Fail(where + ": the list of faults is empty");
  return out;
}

// Reads a --plan file. Unknown keys are errors (a typo must not silently
// turn a fault off).
void LoadPlan(const std::string& path, Options* o) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("--plan: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  json::stream_parser p;
  boost::system::error_code ec;
  size_t used = p.write(text.data(), text.size(), ec);
  if (!ec) p.finish(ec);
  if (ec) {
    int line = 1, col = 1;
    for (size_t i = 0; i < used && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    Fail(path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": invalid JSON (" +
         ec.message() + ")");
  }
  json::value v = p.release();
  if (!v.is_object()) Fail(path + ": the plan must be a JSON object");
  auto where = [&](const std::string& key) { return path + ": " + key; };
  auto number = [&](const std::string& key, const json::value& x) -> double {
    if (x.is_int64()) return static_cast<double>(x.as_int64());
    if (x.is_uint64()) return static_cast<double>(x.as_uint64());
    if (x.is_double()) return x.as_double();
    Fail(where(key) + ": expected a number");
  };
  auto integer = [&](const std::string& key, const json::value& x, long long lo, long long hi) {
    double d = number(key, x);
    if (d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
      Fail(where(key) + ": expected an integer from " + std::to_string(lo) + " to " +
           std::to_string(hi));
    }
    return static_cast<long long>(d);
  };
  auto strings = [&](const std::string& key, const json::value& x) {
    std::vector<std::string> out;
    if (!x.is_array()) Fail(where(key) + ": expected a list of strings");
    for (const auto& e : x.as_array()) {
      if (!e.is_string()) Fail(where(key) + ": expected a list of strings");
      out.emplace_back(e.as_string());
    }
    return out;
  };
  for (const auto& [k, x] : v.as_object()) {
    std::string key(k);
    if (key == "seed") {
      o->seed = static_cast<uint64_t>(integer(key, x, 0, INT64_MAX));
    } else if (key == "fault_rate") {
      double r = number(key, x);
      if (r < 0 || r > 1) Fail(where(key) + ": expected a number from 0 to 1");
      o->fault_rate = r;
    } else if (key == "faults") {
      if (x.is_object()) {
        o->faults.clear();
        for (const auto& [name, w] : x.as_object()) {
          CheckFault(where(key), std::string(name));
          double weight = number(key + "." + std::string(name), w);
          if (weight < 0) Fail(where(key) + "." + std::string(name) + ": weights must be >= 0");
          if (weight > 0) o->faults.emplace_back(std::string(name), weight);
        }
        if (o->faults.empty()) Fail(where(key) + ": no fault has a weight above 0");
      } else {
        o->faults = EqualWeights(strings(key, x), where(key));
      }
    } else if (key == "slow_ms") {
      o->slow_ms = static_cast<int>(integer(key, x, 0, 3600000));
    } else if (key == "hang_ms") {
      o->hang_ms = static_cast<int>(integer(key, x, 0, 3600000));
    } else if (key == "max_faults_per_request") {
      o->max_faults_per_request = static_cast<int>(integer(key, x, 0, 1000000));
    } else if (key == "methods") {
      o->methods = strings(key, x);
    } else if (key == "path_prefix") {
      if (!x.is_string()) Fail(where(key) + ": expected a string");
      o->path_prefix = std::string(x.as_string());
    } else {
      Fail(where(key) +
           ": unknown key (known: seed, fault_rate, faults, slow_ms, hang_ms, "
           "max_faults_per_request, methods, path_prefix)");
    }
  }
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  o.faults = EqualWeights(kAllFaults, "--faults");
  std::map<std::string, std::string> given;
  std::string plan;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) Fail("bad argument '" + a + "'\n" + kUsage);
    std::string val = argv[++i];
    if (a == "--plan") {
      plan = val;
    } else {
      given[a] = val;
    }
  }
  if (!plan.empty()) LoadPlan(plan, &o);
  for (const auto& [a, val] : given) {
    if (a == "--listen") {
      o.listen_port = static_cast<int>(ParseInt(a, val, 0, 65535));
    } else if (a == "--upstream") {
      auto colon = val.rfind(':');
      if (colon == std::string::npos || colon == 0) Fail("--upstream: expected HOST:PORT");
      o.upstream_host = val.substr(0, colon);
      o.upstream_port = static_cast<int>(ParseInt(a, val.substr(colon + 1), 1, 65535));
    } else if (a == "--seed") {
      o.seed = static_cast<uint64_t>(ParseInt(a, val, 0, INT64_MAX));
    } else if (a == "--fault-rate") {
      o.fault_rate = ParseRate(a, val);
    } else if (a == "--faults") {
      o.faults = EqualWeights(SplitList(val), a);
    } else if (a == "--slow-ms") {
      o.slow_ms = static_cast<int>(ParseInt(a, val, 0, 3600000));
    } else if (a == "--hang-ms") {
      o.hang_ms = static_cast<int>(ParseInt(a, val, 0, 3600000));
    } else if (a == "--max-faults-per-request") {
      o.max_faults_per_request = static_cast<int>(ParseInt(a, val, 0, 1000000));
    } else if (a == "--methods") {
      o.methods = SplitList(val);
    } else if (a == "--path-prefix") {
      o.path_prefix = val;
    } else if (a == "--log") {
      o.log_path = val;
    } else {
      Fail("unknown option '" + a + "'\n" + kUsage);
    }
  }
  if (o.listen_port < 0) Fail("--listen PORT is required");
  if (o.upstream_port < 0) Fail("--upstream HOST:PORT is required");
  return o;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

double Unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

struct Decision {
  uint64_t seq = 0;
  int occurrence = 0;  // 1 for the first time this request is seen
  std::string fault;   // empty: none
};

class Proxy {
 public:
  Proxy(asio::io_context& ioc, Options o) : ioc_(ioc), o_(std::move(o)) {
    if (!o_.log_path.empty()) {
      log_.open(o_.log_path, std::ios::app);
      if (!log_) Fail("--log: cannot write " + o_.log_path);
    }
    start_ = std::chrono::steady_clock::now();
  }

  const Options& options() const { return o_; }
  asio::io_context& ioc() { return ioc_; }

  Decision Decide(const http::request<http::string_body>& req) {
    Decision d;
    d.seq = ++seq_;
    std::string method(req.method_string());
    std::string target(req.target());
    uint64_t key = Fnv1a(req.body(), Fnv1a(method + " " + target + "\n"));
    d.occurrence = ++seen_[key];
    if (!Matches(method, target)) return d;
    uint64_t h = Mix(o_.seed ^ Mix(key + static_cast<uint64_t>(d.occurrence)));
    if (Unit(h) >= o_.fault_rate) return d;
    int& faulted = faulted_[key];
    if (o_.max_faults_per_request > 0 && faulted >= o_.max_faults_per_request) return d;
    double total = 0;
    for (const auto& f : o_.faults) total += f.second;
    double x = Unit(Mix(h)) * total;
    d.fault = o_.faults.back().first;
    for (const auto& f : o_.faults) {
      if (x < f.second) {
        d.fault = f.first;
        break;
      }
      x -= f.second;
    }
    ++faulted;
    return d;
  }

  // One JSON line: what was decided and what happened. Never a body.
  void Log(uint64_t conn, const http::request<http::string_body>& req, const Decision& d,
           const std::string& action, int upstream_status, int status) {
    ++counts_[d.fault.empty() ? "none" : d.fault];
    if (!log_) return;
    json::object line;
    line["seq"] = d.seq;
    line["ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start_)
                     .count();
    line["conn"] = conn;
    line["method"] = std::string(req.method_string());
    line["target"] = std::string(req.target());
    line["occurrence"] = d.occurrence;
    line["fault"] = d.fault.empty() ? "none" : d.fault;
    line["action"] = action;
    if (upstream_status > 0) line["upstream_status"] = upstream_status;
    if (status > 0) line["status"] = status;
    log_ << json::serialize(line) << "\n";
    log_.flush();
  }

  void PrintCounts() {
    std::cerr << "keyonce_fault_proxy: " << seq_ << " requests;";
    for (const auto& [k, n] : counts_) std::cerr << " " << k << "=" << n;
    std::cerr << "\n";
  }

  uint64_t NextConn() { return ++conns_; }

 private:
  bool Matches(const std::string& method, const std::string& target) const {
    if (!o_.path_prefix.empty() && target.rfind(o_.path_prefix, 0) != 0) return false;
    if (o_.methods.empty()) return true;
    for (const auto& m : o_.methods) {
      if (beast::iequals(m, method)) return true;
    }
    return false;
  }

  asio::io_context& ioc_;
  Options o_;
  std::ofstream log_;
  std::chrono::steady_clock::time_point start_;
  uint64_t seq_ = 0, conns_ = 0;
  std::map<uint64_t, int> seen_, faulted_;
  std::map<std::string, uint64_t> counts_;
};

// Closes with RST instead of FIN: the client sees "connection reset".
void Reset(beast::tcp_stream& s) {
  boost::system::error_code ec;
  s.socket().set_option(asio::socket_base::linger(true, 0), ec);
  s.socket().close(ec);
}

void Close(beast::tcp_stream& s) {
  boost::system::error_code ec;
  s.socket().shutdown(tcp::socket::shutdown_send, ec);
  s.socket().close(ec);
}

http::response<http::string_body> Canned(const http::request<http::string_body>& req,
                                         http::status status, const std::string& why) {
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::server, "keyonce_fault_proxy");
  res.set(http::field::content_type, "application/json");
  res.body() = json::serialize(json::object{{"error", why}});
  if (status == http::status::too_many_requests) res.set(http::field::retry_after, "1");
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  return res;
}

// The upstream side of one client connection, kept alive between requests.
class Upstream {
 public:
  explicit Upstream(Proxy& p) : p_(p), stream_(p.ioc()) {}

  // Sends the request and reads the whole reply. An error leaves the
  // connection closed (the next request reconnects).
  asio::awaitable<std::optional<http::response<http::string_body>>> RoundTrip(
      http::request<http::string_body> req, std::string* error) {
    auto now = std::chrono::steady_clock::now();
    // Node's and nginx's keep-alive timeouts are 5 s or more: reconnecting
    // after 2 s idle avoids sending on a connection the server is closing.
    if (open_ && now - last_used_ > 2s) Disconnect();
    if (!open_) {
      tcp::resolver resolver(p_.ioc());
      auto [rec, results] = co_await resolver.async_resolve(
          p_.options().upstream_host, std::to_string(p_.options().upstream_port), kNoThrow);
      if (rec) {
        *error = "resolving upstream: " + rec.message();
        co_return std::nullopt;
      }
      stream_.expires_after(30s);
      auto [cec, ep] = co_await stream_.async_connect(results, kNoThrow);
      if (cec) {
        *error = "connecting to upstream: " + cec.message();
        Disconnect();
        co_return std::nullopt;
      }
      open_ = true;
    }
    bool head = req.method() == http::verb::head;
    req.keep_alive(true);
    req.prepare_payload();
    stream_.expires_after(60s);
    auto [wec, wn] = co_await http::async_write(stream_, req, kNoThrow);
    if (wec) {
      *error = "sending to upstream: " + wec.message();
      Disconnect();
      co_return std::nullopt;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    if (head) parser.skip(true);
    auto [rec, rn] = co_await http::async_read(stream_, buffer_, parser, kNoThrow);
    if (rec) {
      *error = "reading from upstream: " + rec.message();
      Disconnect();
      co_return std::nullopt;
    }
    stream_.expires_never();
    auto res = parser.release();
    if (!res.keep_alive()) Disconnect();
    last_used_ = std::chrono::steady_clock::now();
    co_return res;
  }

  void Disconnect() {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    buffer_.clear();
    open_ = false;
  }

 private:
  Proxy& p_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool open_ = false;
  std::chrono::steady_clock::time_point last_used_;
};

// Waits `ms` or until the client goes away, whichever is first.
asio::awaitable<void> Hang(beast::tcp_stream& client, int ms) {
  asio::steady_timer timer(client.get_executor());
  timer.expires_after(std::chrono::milliseconds(ms));
  char byte;
  co_await (timer.async_wait(kNoThrow) ||
            client.socket().async_read_some(asio::buffer(&byte, 1), kNoThrow));
}

// Waits `ms`; false when the client closed its connection meanwhile (then
// the delayed request is dropped, as a server drops the request of a client
// that went away, so that no write arrives after a killed client's rerun
// has asked whether it arrived).
asio::awaitable<bool> Delay(beast::tcp_stream& client, int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  asio::steady_timer timer(client.get_executor());
  while (std::chrono::steady_clock::now() < until) {
    timer.expires_at(until);
    auto r = co_await (timer.async_wait(kNoThrow) ||
                       client.socket().async_wait(tcp::socket::wait_read, kNoThrow));
    if (r.index() == 0) break;
    char byte;
    ssize_t n = ::recv(client.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) co_return false;
    if (n > 0) {  // a pipelined request: the client is there; wait out the rest
      timer.expires_at(until);
      co_await timer.async_wait(kNoThrow);
      break;
    }
  }
  co_return true;
}

// Writes the reply's header and half its body (half the header when there
// is no body), then closes: the client sees a truncated reply.
asio::awaitable<void> SendTruncated(beast::tcp_stream& client,
                                    http::response<http::string_body> res) {
  res.keep_alive(false);
  res.prepare_payload();
  std::ostringstream os;
  os << res;
  std::string all = os.str();
  size_t header_end = all.find("\r\n\r\n");
  size_t keep = all.size() / 2;
  if (header_end != std::string::npos) {
    size_t body = all.size() - (header_end + 4);
    keep = body > 0 ? header_end + 4 + body / 2 : header_end / 2;
  }
  co_await asio::async_write(client, asio::buffer(all.data(), keep), kNoThrow);
  Close(client);
}

asio::awaitable<void> Session(Proxy& p, tcp::socket socket) {
  uint64_t conn = p.NextConn();
  beast::tcp_stream client(std::move(socket));
  beast::flat_buffer buffer;
  Upstream upstream(p);
  const Options& o = p.options();
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    auto [ec, n] = co_await http::async_read(client, buffer, parser, kNoThrow);
    if (ec) break;  // the client closed (or sent garbage): nothing to answer
    auto req = parser.release();
    Decision d = p.Decide(req);
    const std::string& f = d.fault;

    if (f == "500" || f == "503" || f == "429") {
      auto status = static_cast<http::status>(std::stoi(f));
      auto res = Canned(req, status, "injected by keyonce_fault_proxy");
      p.Log(conn, req, d, "answered", 0, std::stoi(f));
      auto [wec, wn] = co_await http::async_write(client, res, kNoThrow);
      if (wec || !req.keep_alive()) break;
      continue;
    }
    if (f == "reset_before") {
      p.Log(conn, req, d, "reset", 0, 0);
      Reset(client);
      co_return;
    }
    if (f == "timeout_before") {
      p.Log(conn, req, d, "hung", 0, 0);
      co_await Hang(client, o.hang_ms);
      Close(client);
      co_return;
    }
    if (f == "slow" && !co_await Delay(client, o.slow_ms)) {
      p.Log(conn, req, d, "client left during the delay, not forwarded", 0, 0);
      break;
    }

    bool keep_alive = req.keep_alive();
    auto version = req.version();
    std::string error;
    auto res = co_await upstream.RoundTrip(req, &error);
    if (!res) {
      // Not injected: the upstream failed. The client gets a 502 and must
      // treat it as ambiguous, as with the injected one.
      Decision u = d;
      u.fault = "upstream_error";
      p.Log(conn, req, u, error, 0, 502);
      auto bad = Canned(req, http::status::bad_gateway, "upstream failed");
      auto [wec, wn] = co_await http::async_write(client, bad, kNoThrow);
      if (wec || !keep_alive) break;
      continue;
    }
    int upstream_status = res->result_int();
    if (f == "reset_after") {
      p.Log(conn, req, d, "forwarded, then reset", upstream_status, 0);
      Reset(client);
      co_return;
    }
    if (f == "timeout_after") {
      p.Log(conn, req, d, "forwarded, then hung", upstream_status, 0);
      co_await Hang(client, o.hang_ms);
      Close(client);
      co_return;
    }
    if (f == "truncate") {
      p.Log(conn, req, d, "forwarded, reply truncated", upstream_status, upstream_status);
      co_await SendTruncated(client, std::move(*res));
      co_return;
    }
    if (f == "502") {
      p.Log(conn, req, d, "forwarded, answered 502", upstream_status, 502);
      auto bad = Canned(req, http::status::bad_gateway, "injected by keyonce_fault_proxy");
      auto [wec, wn] = co_await http::async_write(client, bad, kNoThrow);
      if (wec || !keep_alive) break;
      continue;
    }
    p.Log(conn, req, d, f == "slow" ? "delayed, forwarded" : "forwarded", upstream_status,
          upstream_status);
    res->version(version);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    auto [wec, wn] = co_await http::async_write(client, *res, kNoThrow);
    if (wec || !keep_alive) break;
  }
  Close(client);
}

asio::awaitable<void> Accept(Proxy& p, tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. too many open files: keep serving the others
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(acceptor.get_executor(), Session(p, std::move(socket)), asio::detached);
  }
}

int Main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  asio::io_context ioc(1);
  Proxy proxy(ioc, o);
  tcp::acceptor acceptor(ioc);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(o.listen_port));
  boost::system::error_code ec;
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) Fail("cannot listen on 127.0.0.1:" + std::to_string(o.listen_port) + ": " + ec.message());
  std::cout << "keyonce_fault_proxy listening on 127.0.0.1:" << acceptor.local_endpoint().port()
            << ", upstream " << o.upstream_host << ":" << o.upstream_port << ", seed " << o.seed
            << ", fault rate " << o.fault_rate << std::endl;

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    proxy.PrintCounts();
    ioc.stop();
  });
  asio::co_spawn(ioc, Accept(proxy, acceptor), asio::detached);
  ioc.run();
  return 0;
}

}  // namespace
}  // namespace keyonce::fault_proxy

int main(int argc, char** argv) { return keyonce::fault_proxy::Main(argc, argv); }
