// HttpClient: several HTTP transfers in flight in one thread: plain
// HTTP/1.1 requests through Http1Client (http1.h), the rest with curl multi.

#include <algorithm>
#include <cstring>
#include <cctype>
#include <thread>

#include "connectors/common/net/http1.h"
#include "connectors/common/net/transfer.h"

namespace keyonce::connectors::net {

using Clock = std::chrono::steady_clock;

namespace {

// One transfer in flight.
struct Transfer {
  CURL* easy = nullptr;
  const HttpRequest* request = nullptr;
  size_t index = 0;
  HttpReply reply;
  curl_slist* headers = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {};
  size_t max_bytes = 0;
  bool too_big = false;
  size_t sent = 0;  // request body bytes handed to curl
  Clock::time_point started;
};

// The request body is handed to curl through a read callback with no seek
// callback: when a reused connection dies after the request went out,
// libcurl would otherwise send it again on a fresh connection by itself
// ("Connection died, retrying a fresh connect") - a duplicate POST. Without
// a way to rewind, curl fails with CURLE_SEND_FAIL_REWIND instead, and the
// target decides (an `exists` check before any resend).
size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string& body = t->request->body;
  size_t len = std::min(size * n, body.size() - t->sent);
  std::memcpy(buf, body.data() + t->sent, len);
  t->sent += len;
  return len;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->reply.body.size() + len > t->max_bytes) {
    t->too_big = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  t->reply.body.append(data, len);
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    t->reply.headers.clear();  // a new response (after 100 Continue or a redirect)
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return len;
  AddReplyHeader(&t->reply, line.substr(0, colon), line.substr(colon + 1));
  return len;
}

}  // namespace

struct HttpClient::Impl {
  CURLM* multi = nullptr;
  std::vector<CURL*> idle;  // easy handles kept for reuse
  Clock::time_point next_start = Clock::time_point::min();
  std::unique_ptr<Http1Client> http1;

  ~Impl() {
    for (CURL* e : idle) curl_easy_cleanup(e);
    if (multi) curl_multi_cleanup(multi);
  }
};

HttpClient::HttpClient(ClientOptions options) : options_(std::move(options)), impl_(new Impl) {
  if (options_.max_in_flight < 1) options_.max_in_flight = 1;
}

HttpClient::~HttpClient() = default;

Result<HttpReply> HttpClient::Perform(const HttpRequest& request, TransferInfo* info) {
  std::vector<HttpRequest> one;
  one.push_back(request);
  std::vector<TransferInfo> infos;
  auto results = PerformMany(one, info ? &infos : nullptr);
  if (info) *info = infos[0];
  return std::move(results[0]);
}

std::vector<Result<HttpReply>> HttpClient::PerformMany(const std::vector<HttpRequest>& requests,
                                                       std::vector<TransferInfo>* infos) {
  static const bool kGlobalInit = [] {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  }();
  (void)kGlobalInit;
  std::vector<Result<HttpReply>> results(requests.size(),
                                         Result<HttpReply>(Status::Internal("not performed")));
  if (infos) infos->assign(requests.size(), TransferInfo{});
  if (requests.empty()) return results;
  if (!impl_->http1) impl_->http1 = std::make_unique<Http1Client>(options_);
  // What Http1Client declines (a proxy, user info in the URL, ...) goes
  // through curl.
  const std::vector<size_t> todo =
      impl_->http1->PerformMany(requests, &results, infos, &impl_->next_start);
  const size_t n = todo.size();
  if (n == 0) return results;
  if (!impl_->multi) {
    impl_->multi = curl_multi_init();
    if (!impl_->multi) {
      for (auto& r : results) r = Status::Internal("curl_multi_init failed");
      return results;
    }
    long keep = std::max(8, options_.max_in_flight * 2);
    curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS, keep);
  }
  CURLM* multi = impl_->multi;
  const double rate = options_.rate_limit;
  const auto interval =
      rate > 0
          ? std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate))
          : Clock::duration::zero();

  std::vector<std::unique_ptr<Transfer>> active;
  size_t next = 0;

  auto start = [&](size_t i) -> bool {
    const HttpRequest& req = requests[i];
    CURL* easy = nullptr;
    if (!impl_->idle.empty()) {
      easy = impl_->idle.back();
      impl_->idle.pop_back();
      curl_easy_reset(easy);
    } else {
      easy = curl_easy_init();
    }
    if (!easy) {
      results[i] = Status::Internal("curl_easy_init failed");
      return false;
    }
    auto t = std::make_unique<Transfer>();
    t->easy = easy;
    t->request = &req;
    t->index = i;
    t->max_bytes = options_.transfer.max_reply_bytes;
    t->started = Clock::now();
    ConfigureEasy(easy, options_.transfer, t->errbuf);
    curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
    std::string method = req.method.empty() ? "GET" : req.method;
    for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const bool has_body = SendsBody(method, req.body);
    if (method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
      curl_easy_setopt(easy, CURLOPT_POST, 1L);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, OnRead);
      curl_easy_setopt(easy, CURLOPT_READDATA, t.get());
      if (method != "POST") curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
    } else if (method != "GET") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    for (const auto& [k, v] : req.headers) {
      std::string line = k + (v.empty() ? ";" : ": " + v);
      t->headers = curl_slist_append(t->headers, line.c_str());
    }
    t->headers = curl_slist_append(t->headers, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
      curl_slist_free_all(t->headers);
      curl_easy_cleanup(easy);
      results[i] = Status::Internal("curl_multi_add_handle failed");
      return false;
    }
    active.push_back(std::move(t));
    return true;
  };

  auto finish = [&](Transfer* t, CURLcode code) {
    const size_t i = t->index;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t pretransfer = 0;
    curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    long request_size = 0;
    curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &request_size);
    if (infos) {
      (*infos)[i].request_sent = request_size > 0 || pretransfer > 0 || status > 0;
      (*infos)[i].seconds = std::chrono::duration<double>(Clock::now() - t->started).count();
    }
    if (t->too_big) {
      results[i] = ReplyTooLarge(t->request->shown_url(), t->max_bytes);
    } else if (code != CURLE_OK) {
      results[i] = CurlStatus(code, t->errbuf, t->request->shown_url());
    } else {
      t->reply.status = status;
      results[i] = std::move(t->reply);
    }
    curl_multi_remove_handle(multi, t->easy);
    curl_slist_free_all(t->headers);
    t->headers = nullptr;
    impl_->idle.push_back(t->easy);
    t->easy = nullptr;
  };

  while (next < n || !active.empty()) {
    // Start what the in-flight limit and the rate limit allow.
    auto wait = Clock::duration::zero();
    while (next < n && static_cast<int>(active.size()) < options_.max_in_flight) {
      auto now = Clock::now();
      if (rate > 0 && now < impl_->next_start) {
        wait = impl_->next_start - now;
        if (active.empty()) {
          std::this_thread::sleep_for(wait);
          wait = Clock::duration::zero();
          continue;
        }
        break;
      }
      if (rate > 0) impl_->next_start = std::max(impl_->next_start, now) + interval;
      start(todo[next++]);
    }
    if (active.empty()) continue;
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      finish(t, msg->data.result);
    }
    active.erase(
        std::remove_if(active.begin(), active.end(),
                       [](const std::unique_ptr<Transfer>& t) { return t->easy == nullptr; }),
        active.end());
    if (active.empty()) continue;
    int timeout_ms = 200;
    if (wait > Clock::duration::zero()) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait).count() + 1;
      timeout_ms = static_cast<int>(std::clamp<long long>(ms, 1, 200));
    }
    curl_multi_poll(multi, nullptr, 0, timeout_ms, nullptr);
  }
  return results;
}

}  // namespace keyonce::connectors::net
