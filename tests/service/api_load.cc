// The API load client: sends N GET requests over C kept-alive connections
// (libcurl multi, one thread) and prints the request count, errors,
// requests per second and latency percentiles. Exit code 0 when every
// request got a 2xx reply, 1 otherwise, 2 for bad arguments.
//
//   keyonce_api_load --url http://127.0.0.1:8080/api/v1/runs --token ko_...
//                    [--requests 20000] [--connections 50]
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

struct Slot {
  CURL* easy = nullptr;
  Clock::time_point started;
};

int Usage() {
  std::fprintf(stderr,
               "usage: keyonce_api_load --url URL [--token TOKEN] [--requests N] "
               "[--connections C]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, token;
  long requests = 20000, connections = 50;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage();
    std::string v = argv[++i];
    if (a == "--url") {
      url = v;
    } else if (a == "--token") {
      token = v;
    } else if (a == "--requests") {
      requests = std::strtol(v.c_str(), nullptr, 10);
    } else if (a == "--connections") {
      connections = std::strtol(v.c_str(), nullptr, 10);
    } else {
      return Usage();
    }
  }
  if (url.empty() || requests < 1 || connections < 1) return Usage();
  connections = std::min(connections, requests);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, connections);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, connections);
  curl_slist* headers = nullptr;
  if (!token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());

  std::vector<Slot> slots(static_cast<size_t>(connections));
  std::map<CURL*, Slot*> by_handle;
  long started = 0, done = 0, errors = 0;
  std::map<std::string, long> error_kinds;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(static_cast<size_t>(requests));

  auto start = [&](Slot& s) {
    s.started = Clock::now();
    curl_multi_add_handle(multi, s.easy);
    ++started;
  };
  for (auto& s : slots) {
    s.easy = curl_easy_init();
    curl_easy_setopt(s.easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, Discard);
    curl_easy_setopt(s.easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s.easy, CURLOPT_PROXY, "");
    curl_easy_setopt(s.easy, CURLOPT_TIMEOUT, 60L);
    by_handle[s.easy] = &s;
  }
  auto t0 = Clock::now();
  for (auto& s : slots) start(s);

  int running = 0;
  while (done < requests) {
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      Slot* s = by_handle[easy];
      latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - s->started).count());
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result != CURLE_OK) {
        ++errors;
        ++error_kinds[curl_easy_strerror(msg->data.result)];
      } else if (status < 200 || status > 299) {
        ++errors;
        ++error_kinds["HTTP " + std::to_string(status)];
      }
      ++done;
      curl_multi_remove_handle(multi, easy);
      if (started < requests) start(*s);
    }
    if (done < requests) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();

  for (auto& s : slots) curl_easy_cleanup(s.easy);
  curl_slist_free_all(headers);
  curl_multi_cleanup(multi);
  curl_global_cleanup();

  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(p * static_cast<double>(latencies_ms.size() - 1) + 0.5);
    return latencies_ms[std::min(i, latencies_ms.size() - 1)];
  };
  std::printf("requests: %ld\nconnections: %ld\nerrors: %ld\n", done, connections, errors);
  for (const auto& [kind, n] : error_kinds) std::printf("  %ld x %s\n", n, kind.c_str());
  std::printf("seconds: %.2f\nrequests/s: %.0f\n", secs, static_cast<double>(done) / secs);
  std::printf("p50: %.2f ms\np90: %.2f ms\np99: %.2f ms\nmax: %.2f ms\n", pct(0.50), pct(0.90),
              pct(0.99), latencies_ms.back());
  return errors == 0 ? 0 : 1;
}
