// The `http` connector's parts (registered in http.cc): REST/JSON APIs as a
// source (paged GET), a target (POST/PUT/PATCH/DELETE per record) and a
// lookup table (GET by key).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/common/net/transfer.h"
#include "connectors/http/url_template.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::http {

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings);
Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings);
Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings);

// Settings every role has: headers, auth, TLS and timeouts (roots: which
// template roots headers may read).
void AddCommonFields(ComponentSpec& spec, unsigned header_roots);

// What a reply looks like to capture templates: {status, headers (lowercase
// names; repeated headers joined with ", "), body}.
Value ReplyValue(const net::HttpReply& reply, Value body);

// The reply's body as JSON. `require_json`: the content type must say JSON
// (else kPermanent "expected a JSON reply from URL, got text/html").
// Invalid JSON: kPermanent naming line and column. An empty body is null.
Result<Value> ParseJsonBody(const net::HttpReply& reply, const std::string& url, bool require_json);

// Checks the `url` (or other) setting is a URL template and splits it.
Result<UrlTemplate> ReadUrl(const Settings& settings, const std::string& name);

// The HTTP client, authentication and headers of one connector instance.
class Connection {
 public:
  // Reads auth and headers; no I/O (for make_*).
  Status Configure(const Settings& settings);
  // Reads TLS/timeouts against the run's scope, warns when tls_verify is
  // off, prepares auth (no request yet).
  Status Open(const Settings& settings, const RunContext& ctx, int max_in_flight,
              double rate_limit);
  bool opened() const { return client_ != nullptr; }

  // The settings' headers rendered against `scope` into `request`.
  Status AddHeaders(const Scope& scope, net::HttpRequest* request) const;
  // The same as a JSON object (for dry-run renders; auth never included).
  Result<Value> RenderHeaders(const Scope& scope) const;

  // Performs requests with authentication (added to `requests`' headers, not
  // copied); a 401 with OAuth2 refreshes the token and resends that request
  // once. Failures applying auth (token endpoint down) become the request's
  // result.
  std::vector<Result<net::HttpReply>> PerformMany(std::vector<net::HttpRequest>* requests,
                                                  std::vector<net::TransferInfo>* infos = nullptr);
  Result<net::HttpReply> Perform(net::HttpRequest request, net::TransferInfo* info = nullptr);

  // An HTTP error status for `reply`, with secrets scrubbed from the excerpt.
  Status ReplyStatus(const net::HttpReply& reply, const std::string& url) const;

  net::Authenticator& auth() { return auth_; }

 private:
  const std::vector<std::pair<std::string, Template>>* headers_ = nullptr;
  net::AuthConfig auth_config_;
  net::Authenticator auth_;
  std::unique_ptr<net::HttpClient> client_;
};

}  // namespace keyonce::connectors::http
