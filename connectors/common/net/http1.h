// Http1Client: keyonce's own HTTP/1.1 client for plain keep-alive requests
// (Boost.Beast over Asio, OpenSSL for https), used by HttpClient in front of
// libcurl. Internal to connectors/common/net: connectors use HttpClient.
//
// Why not libcurl for everything: per request, curl sends the header and a
// body handed over by a read callback in two writes, polls twice, and
// reconfigures its handle; measured against nginx on this project's 2-core
// machine, a curl multi loop costs ~21 us of CPU per small POST, this client
// ~10 us (bench/README.md, http_post.sh). The read callback is how curl is kept from
// resending a body on its own; this client never resends anything, so it can
// send header and body in one write.
//
// It carries http:// and https:// URLs with a plain host name or IP address
// and a path of printable ASCII, when no proxy is set in the environment
// (http_proxy, https_proxy, all_proxy and their upper-case forms) and the
// request sets none of the headers curl manages (Accept-Encoding,
// Content-Length, Transfer-Encoding, Connection, Upgrade, Expect). Anything
// else (user info in the URL, international host names, a proxy, FTP) is
// declined and goes through libcurl as before.
//
// Same behaviour as the curl path: TLS verification of the peer and host
// name (or none with tls.verify false), CA file, client certificate and
// (encrypted) key; connect and whole-transfer timeouts; replies bigger than
// max_reply_bytes abort; redirects are not followed; errors classified and
// worded like CurlStatus ("connecting to URL: Connection refused", transient;
// "TLS certificate verification failed for URL: ...", permanent). Connections
// are kept alive per origin, at most max(8, 2 x max_in_flight) idle, for at
// most 118 s idle (as curl), and checked before reuse: one the server has
// closed, or that holds bytes nobody asked for, is not used. request_sent is true once the request's first byte was
// handed to the connection.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "connectors/common/net/transfer.h"

namespace keyonce::connectors::net {

class Http1Client {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Http1Client(const ClientOptions& options);  // no I/O
  ~Http1Client();
  Http1Client(const Http1Client&) = delete;
  Http1Client& operator=(const Http1Client&) = delete;

  // Performs the requests it carries, up to max_in_flight at a time, started
  // no earlier than *next_start and then one per 1/rate_limit seconds
  // (*next_start is advanced). Sets (*results)[i] and, when `infos` is given,
  // (*infos)[i] for each of them; returns the indexes it declined, in order.
  std::vector<size_t> PerformMany(const std::vector<HttpRequest>& requests,
                                  std::vector<Result<HttpReply>>* results,
                                  std::vector<TransferInfo>* infos, Clock::time_point* next_start);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyonce::connectors::net
