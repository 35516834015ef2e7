// The shared network layer of the network connectors (http, soap, smtp,
// file transfer): libcurl transfers, TLS, timeouts, error classification,
// an HTTP client with several transfers in flight, authentication, and the
// settings every network connector declares the same way.
//
//   net::HttpClient client(options);                    // no I/O yet
//   net::HttpRequest req{.method = "POST", .url = url, .body = json};
//   req.headers.push_back({"Content-Type", "application/json"});
//   auth.Apply(&req);                                  // Authorization header
//   Result<net::HttpReply> r = client.Perform(req);    // transport errors only
//   if (r.ok()) st = net::HttpStatus(*r, req.url);     // 2xx OK, else classified
//
// Error model (see docs/reliability.md): kTransient for what may succeed
// later (connection refused/reset, DNS failure, timeouts, HTTP 408/429/5xx),
// kPermanent for what will fail the same way again (TLS verification, login
// denied, other 4xx, a reply that is too big). Messages name the URL without
// credentials or secret query values (SafeUrl) and never hold secrets; reply
// excerpts are at most 200 characters with CPR numbers masked.
//
// Threading: free functions are thread-safe. An HttpClient and an
// Authenticator are used from one thread at a time (like a connector).
//
// JSON paths: connectors/common/net/json_path.h (included below).
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connectors/common/net/json_path.h"
#include "keyonce/connector.h"
#include "keyonce/settings.h"
#include "keyonce/spec.h"
#include "keyonce/status.h"
#include "keyonce/template.h"
#include "keyonce/value.h"

namespace keyonce::connectors::net {

// ------------------------------------------------------------ transfer options

struct TlsOptions {
  bool verify = true;        // verify the server's certificate and host name
  std::string ca_file;       // PEM CA bundle to trust instead of the system's ("" = system)
  std::string client_cert;   // PEM client certificate for mutual TLS ("" = none)
  std::string client_key;    // PEM private key of client_cert ("" = in client_cert)
  std::string key_password;  // passphrase of client_key ("" = none); a secret
};

inline constexpr size_t kDefaultMaxReplyBytes = 16u << 20;  // 16 MiB

struct TransferOptions {
  double timeout_seconds = 30;          // whole transfer, 0 = none
  double connect_timeout_seconds = 10;  // TCP + TLS handshake
  TlsOptions tls;
  size_t max_reply_bytes = kDefaultMaxReplyBytes;  // bigger replies abort (permanent)
  std::string user_agent = "keyonce";
};

// The one place that configures a curl easy handle for keyonce: TLS (verify,
// CA bundle, client certificate and key with passphrase), timeouts, NOSIGNAL,
// TCP keep-alive, the error buffer (`errbuf`, CURL_ERROR_SIZE bytes, must
// outlive the transfer) and the protocols allowed (http, https, ftp, ftps,
// sftp, smb, smbs, smtp, smtps, imap, imaps), for redirects too (so never file://).
// Redirects are not followed (a connector that wants them sets
// CURLOPT_FOLLOWLOCATION itself). The options' strings are copied by curl.
void ConfigureEasy(CURL* easy, const TransferOptions& options, char* errbuf);

// Classifies a failed transfer. Transient: could not resolve, could not
// connect, connection reset / empty reply / send or receive error, timeout,
// a server that hung up during the TLS handshake. Permanent: TLS certificate
// verification, unsupported protocol, malformed URL, login denied, a local
// certificate or key that cannot be used, and everything else. The message
// reads like "connecting to https://host/path: Connection refused" and names
// the URL through SafeUrl. CURLE_OK gives OK.
Status CurlStatus(CURLcode code, const char* errbuf, const std::string& url);

// The URL fit for messages and logs: userinfo removed
// (https://user:pw@host -> https://host), and the values of query parameters
// whose name suggests a secret (token, key, secret, password, pass, pwd,
// auth, signature, sig, code, session, access, credential; case-insensitive,
// as part of the name) replaced by "***". Never fails; a string that is not
// a URL comes back without anything that looks like userinfo.
std::string SafeUrl(const std::string& url);

// True when what `t` renders may appear in messages and logs: it reads only
// params, run and state (configuration), never a record, a lookup, a reply
// or a secret. Connectors show a URL template's own text in place of any
// part that fails this (HttpRequest::display_url).
bool ShownInMessages(const Template& t);

// Percent-encodes everything but RFC 3986 unreserved characters
// (A-Z a-z 0-9 - . _ ~), e.g. for a record value inside a URL path or query.
std::string UrlEncode(std::string_view text);
// The same for a path: each part between slashes encoded, the slashes kept
// ("Behandlet filer/2026" -> "Behandlet%20filer/2026").
std::string UrlEncodePath(std::string_view path);

// `ref` (absolute, or relative like "/cases?page=2" or "?page=2") resolved
// against `base`; nullopt when either is not a URL curl understands.
std::optional<std::string> ResolveUrl(const std::string& base, const std::string& ref);

// `url` with query parameter `name` set to `value` (percent-encoded); an
// existing parameter of that name is replaced.
std::string SetQueryParam(const std::string& url, const std::string& name,
                          const std::string& value);

// The target of the first `rel="next"` link of an HTTP Link header
// (`<https://x/items?page=2>; rel="next", <...>; rel="last"`), or "".
std::string NextLink(std::string_view link_header);

// At most `max_chars` bytes of `text` (cut at a UTF-8 boundary, "..."
// appended when cut), control characters as spaces, CPR numbers masked.
std::string Excerpt(std::string_view text, size_t max_chars = 200);

// ------------------------------------------------------------ HTTP

// Header names as sent; replies' names are lowercased.
using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, PATCH, DELETE, HEAD, ...
  std::string url;
  Headers headers;   // e.g. {"Content-Type", "application/json"}
  std::string body;  // sent when non-empty or method is not GET/HEAD/DELETE
  // The URL as messages show it (through SafeUrl), when `url` holds values
  // that must not reach logs or error messages: the recipe's URL template,
  // e.g. "https://crm/people/{{ record.email }}". Empty: `url` itself.
  std::string display_url;
  const std::string& shown_url() const { return display_url.empty() ? url : display_url; }
};

struct HttpReply {
  long status = 0;  // HTTP status code
  Headers headers;  // lowercase names, in order received (final response only)
  std::string body;
  // The first header named `name` (lowercase), or nullptr.
  const std::string* Header(std::string_view name) const;
  // Content-Type without parameters, lowercase ("application/json").
  std::string MediaType() const;
  // True for application/json and any +json type.
  bool IsJson() const;
};

// How a transfer went, beyond its result.
struct TransferInfo {
  // The request (or a part of it) was sent before the transfer failed or
  // answered: a failure after sending is AMBIGUOUS (the server may have
  // acted). False when the connection never got that far.
  bool request_sent = false;
  double seconds = 0;  // wall time of the transfer
};

// Retry-After as seconds from now: "120" or an HTTP date ("Wed, 21 Oct
// 2015 07:28:00 GMT"); nullopt when absent or unparsable. Dates in the past
// give 0.
std::optional<double> RetryAfterSeconds(const HttpReply& reply);

// Classifies an HTTP reply: 2xx (and 1xx/3xx) OK; 408, 429 and 5xx
// transient; other 4xx permanent. Message: "HTTP 422 from
// https://host/path: <excerpt of the body>" (SafeUrl, Excerpt, at most 200
// characters of body), with " (retry after 30 s)" when Retry-After is given.
Status HttpStatus(const HttpReply& reply, const std::string& url);
// The same from parts (for callers that do not hold an HttpReply).
Status HttpStatus(long status, const Headers& headers, std::string_view body,
                  const std::string& url);

// For HttpClient's transports (curl and http1.cc), so both behave alike:
// whether a request with this (upper-case) method sends a body (always when
// it has one; POST, PUT, PATCH and others also when it is empty);
bool SendsBody(std::string_view method, const std::string& body);
// a reply header added as HttpReply keeps them (name lowercased, value
// without surrounding blanks, at most 1000 headers);
void AddReplyHeader(HttpReply* reply, std::string_view name, std::string_view value);
// the permanent error for a reply over max_reply_bytes.
Status ReplyTooLarge(const std::string& url, size_t max_reply_bytes);

struct ClientOptions {
  TransferOptions transfer;
  int max_in_flight = 4;  // transfers kept in flight by PerformMany (>= 1)
  double rate_limit = 0;  // requests started per second, 0 = unlimited
};

// An HTTP(S) client around one curl multi handle: connections are kept
// alive and reused between calls, several transfers run in flight in one
// thread (no thread per request), and requests are started no faster than
// rate_limit per second (a token bucket of one token: evenly spaced).
// Constructing it does no I/O.
class HttpClient {
 public:
  explicit HttpClient(ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. An HTTP reply of any status is returned as a
  // value (classify it with HttpStatus); a transport failure is an error
  // status (CurlStatus), a reply bigger than max_reply_bytes a permanent
  // error "reply from URL is larger than max_reply_bytes (N bytes)".
  // `info` (optional) says whether the request was sent.
  Result<HttpReply> Perform(const HttpRequest& request, TransferInfo* info = nullptr);

  // Performs all `requests`, up to max_in_flight at a time; results in the
  // order of `requests`. `infos` (optional) receives one TransferInfo each.
  std::vector<Result<HttpReply>> PerformMany(const std::vector<HttpRequest>& requests,
                                             std::vector<TransferInfo>* infos = nullptr);

  const ClientOptions& options() const { return options_; }

 private:
  struct Impl;
  ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

// ------------------------------------------------------------ settings

// Declarations shared by every network connector, so TLS, timeouts and
// authentication read the same everywhere. Templates in them are evaluated
// against RunContext::scope (params, secrets, run, state), never a record.

// tls_verify (bool, default true), ca_file, client_cert, client_key (paths,
// templates over params/run/state, relative to the recipe's folder) and
// client_key_password (template, must come from secrets).
std::vector<FieldSpec> TlsFields();
void AddTlsSettings(ComponentSpec& spec);
// Reads what AddTlsSettings declared; paths are resolved against
// settings.base_dir. kInvalid naming the setting when a template fails.
Result<TlsOptions> ReadTls(const Settings& settings, const Scope& scope);

// timeout_seconds (default 30), connect_timeout_seconds (default 10),
// max_reply_bytes (default 16 MiB).
std::vector<FieldSpec> TimeoutFields();
void AddTimeoutSettings(ComponentSpec& spec);
// Timeouts and max_reply_bytes (when declared; else the recipe's
// limits.reply_bytes from ctx) plus ReadTls (when declared, over ctx.scope).
Result<TransferOptions> ReadTransferOptions(const Settings& settings, const RunContext& ctx);

// Checks the TLS and timeout settings without I/O (for make_*): paths given
// with tls_verify, a client_key without client_cert, negative timeouts.
Status CheckTransferSettings(const Settings& settings);

// ------------------------------------------------------------ authentication

// `auth:` (an object):
//   type: none | basic | bearer | api_key | oauth2_client_credentials | oauth2_password
//   basic:    username, password
//   bearer:   token
//   api_key:  header (default X-API-Key), value
//   oauth2_*: token_url, client_id, client_secret, scope (optional),
//             and for oauth2_password username, password
// Every value is a template over params/secrets/run/state; password, token,
// value and client_secret must come from {{ secrets.* }} (never literal).
FieldSpec AuthField(const std::string& name = "auth");
void AddAuthSettings(ComponentSpec& spec);

enum class AuthType { kNone, kBasic, kBearer, kApiKey, kOAuth2ClientCredentials, kOAuth2Password };

// The compiled `auth` setting (templates not yet evaluated).
struct AuthConfig {
  AuthType type = AuthType::kNone;
  std::optional<Template> username, password, token, header, value, token_url, client_id,
      client_secret, scope;
};

// Reads and checks `auth` (keys known, required keys for the type, secrets
// not literal, no record references) without I/O. kInvalid with a message
// naming the key, e.g. "auth.token_url is required for type
// oauth2_client_credentials".
Result<AuthConfig> ReadAuth(const Settings& settings, const std::string& name = "auth");

// Applies an AuthConfig to requests. Open evaluates the templates against
// the run's scope and registers the secret values with ctx.log->AddSecret.
// For OAuth2 the token is fetched from token_url (form POST, client id and
// secret in the body) on first use, cached until 30 s before expires_in (half
// of a shorter lifetime), and fetched again after Invalidate(); every access
// token is registered with
// AddSecret. Errors fetching a token: transient for transport/5xx, permanent
// for 4xx ("OAuth2 token request to https://idp/token was refused: HTTP 401
// ..."), never with the secret or the token in the message.
class Authenticator {
 public:
  Authenticator() = default;
  explicit Authenticator(AuthConfig config);

  Status Open(const RunContext& ctx, const TransferOptions& transfer);
  // Adds the Authorization / API key header (fetching an OAuth2 token when
  // needed, with its own HttpClient).
  Status Apply(HttpRequest* request);
  // After `rejected` came back 401: forgets the cached OAuth2 token when
  // `rejected` carried it (so the next Apply fetches a new one). True when
  // another attempt may help (OAuth2 only); callers retry a request once.
  bool Invalidate(const HttpRequest& rejected);
  AuthType type() const { return config_.type; }
  // The evaluated username/password, for protocols that log in with them
  // (SMTP, FTP: CURLOPT_USERNAME/PASSWORD); empty when not given.
  const std::string& username() const { return username_; }
  const std::string& password() const { return password_; }
  // The header Apply would add, with the secret replaced by "***" (for
  // dry-run renders and docs); empty name when none.
  std::pair<std::string, std::string> MaskedHeader() const;
  // `text` with every secret this authenticator knows (password, token, key,
  // client secret, access tokens, the basic credentials) replaced by "***":
  // for messages that quote a reply, which may echo them.
  std::string Scrub(std::string text) const;
  // Number of OAuth2 token requests made (for tests and logs).
  int token_requests() const { return token_requests_; }

 private:
  Status FetchToken();

  AuthConfig config_;
  Log* log_ = nullptr;
  TransferOptions transfer_;
  std::string username_, password_, token_, header_, value_, token_url_, client_id_, client_secret_,
      scope_;
  std::string access_token_;
  std::vector<std::string> secrets_;  // for Scrub
  std::chrono::steady_clock::time_point token_expiry_;
  int token_requests_ = 0;
  std::unique_ptr<HttpClient> token_client_;
};

}  // namespace keyonce::connectors::net
