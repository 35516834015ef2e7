// Transfer options, error classification and URL helpers (transfer.h).

#include "connectors/common/net/transfer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "keyonce/privacy.h"

namespace keyonce::connectors::net {
namespace {

constexpr const char* kProtocols = "http,https,ftp,ftps,sftp,smb,smbs,smtp,smtps,imap,imaps";

long Millis(double seconds) {
  if (!(seconds > 0)) return 0;
  double ms = seconds * 1000.0;
  return ms > 2e9 ? 2000000000L : std::max(1L, static_cast<long>(ms));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool SecretParamName(std::string_view name) {
  static constexpr std::string_view kWords[] = {
      "token",     "key", "secret", "password", "pass",   "pwd",       "auth",
      "signature", "sig", "code",   "session",  "access", "credential"};
  std::string lower = Lower(name);
  for (auto w : kWords) {
    if (lower.find(w) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

void ConfigureEasy(CURL* easy, const TransferOptions& o, char* errbuf) {
  if (errbuf) {
    errbuf[0] = '\0';
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  }
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, kProtocols);
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, kProtocols);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, Millis(o.timeout_seconds));
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, Millis(o.connect_timeout_seconds));
  curl_easy_setopt(easy, CURLOPT_USERAGENT, o.user_agent.c_str());
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, o.tls.verify ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, o.tls.verify ? 2L : 0L);
  if (!o.tls.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, o.tls.ca_file.c_str());
  if (!o.tls.client_cert.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLCERT, o.tls.client_cert.c_str());
    curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLKEY,
                     (o.tls.client_key.empty() ? o.tls.client_cert : o.tls.client_key).c_str());
    curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    if (!o.tls.key_password.empty()) {
      curl_easy_setopt(easy, CURLOPT_KEYPASSWD, o.tls.key_password.c_str());
    }
  }
}

Status CurlStatus(CURLcode code, const char* errbuf, const std::string& url) {
  if (code == CURLE_OK) return Status::OK();
  std::string detail = errbuf && errbuf[0] ? std::string(errbuf) : curl_easy_strerror(code);
  // curl's messages may quote the URL or host; keep them short and safe.
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
  detail = Excerpt(detail, 200);
  const std::string where = SafeUrl(url);
  auto transient = [&](const char* what) {
    return Status::Transient(std::string(what) + " " + where + ": " + detail);
  };
  auto permanent = [&](const char* what) {
    return Status::Permanent(std::string(what) + " " + where + ": " + detail);
  };
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return transient("resolving the host of");
    case CURLE_COULDNT_CONNECT:
      return transient("connecting to");
    case CURLE_OPERATION_TIMEDOUT:
      return transient("timed out talking to");
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_SEND_FAIL_REWIND:  // the connection died after the request went out
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_AGAIN:
      return transient("the connection failed while talking to");
    case CURLE_SSL_CONNECT_ERROR:
      // A handshake cut short is usually the network or an overloaded
      // server; a certificate the server rejects also lands here, but then
      // the server answers with an alert that curl reports in errbuf.
      if (detail.find("alert") != std::string::npos ||
          detail.find("certificate") != std::string::npos) {
        return permanent("TLS handshake rejected by");
      }
      return transient("TLS handshake failed with");
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return permanent("TLS certificate verification failed for");
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
      return permanent("the local TLS certificate, key or settings cannot be used for");
    case CURLE_UNSUPPORTED_PROTOCOL:
      return permanent("unsupported protocol in");
    case CURLE_URL_MALFORMAT:
      return permanent("malformed URL");
    case CURLE_LOGIN_DENIED:
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_AUTH_ERROR:
      return permanent("login denied by");
    case CURLE_TOO_MANY_REDIRECTS:
      return permanent("too many redirects from");
    case CURLE_FILESIZE_EXCEEDED:
      return permanent("the reply is too large from");
    default:
      return permanent("transfer failed with");
  }
}

std::string SafeUrl(const std::string& url) {
  std::string out = url;
  // Userinfo: between "://" (or the start) and the first '@' before the path.
  size_t scheme = out.find("://");
  size_t authority = scheme == std::string::npos ? 0 : scheme + 3;
  size_t path_start = out.find_first_of("/?#", authority);
  size_t auth_end = path_start == std::string::npos ? out.size() : path_start;
  size_t at = out.rfind('@', auth_end == 0 ? 0 : auth_end - 1);
  if (at != std::string::npos && at >= authority && at < auth_end) {
    out.erase(authority, at + 1 - authority);
  }
  // Fragment: dropped (may hold tokens in implicit OAuth flows).
  size_t hash = out.find('#');
  if (hash != std::string::npos) out.erase(hash);
  size_t q = out.find('?');
  if (q == std::string::npos) return out;
  std::string result = out.substr(0, q + 1);
  std::string_view query(out);
  query.remove_prefix(q + 1);
  bool first = true;
  while (true) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    if (!first) result += '&';
    first = false;
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && SecretParamName(part.substr(0, eq))) {
      result.append(part.substr(0, eq + 1));
      result += "***";
    } else {
      result.append(part);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return result;
}

bool ShownInMessages(const Template& t) {
  for (const auto& ref : t.References()) {
    if (ref.root != "params" && ref.root != "run" && ref.root != "state") return false;
  }
  return true;
}

std::string UrlEncodePath(std::string_view path) {
  std::string out;
  for (size_t at = 0;;) {
    const size_t slash = path.find('/', at);
    out += UrlEncode(path.substr(at, slash == std::string_view::npos ? slash : slash - at));
    if (slash == std::string_view::npos) return out;
    out += '/';
    at = slash + 1;
  }
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::optional<std::string> ResolveUrl(const std::string& base, const std::string& ref) {
  CURLU* h = curl_url();
  if (!h) return std::nullopt;
  std::optional<std::string> out;
  if (curl_url_set(h, CURLUPART_URL, base.c_str(), 0) == CURLUE_OK &&
      curl_url_set(h, CURLUPART_URL, ref.c_str(), 0) == CURLUE_OK) {
    char* s = nullptr;
    if (curl_url_get(h, CURLUPART_URL, &s, 0) == CURLUE_OK && s) {
      out = std::string(s);
      curl_free(s);
    }
  }
  curl_url_cleanup(h);
  return out;
}

std::string SetQueryParam(const std::string& url, const std::string& name,
                          const std::string& value) {
  size_t hash = url.find('#');
  std::string fragment = hash == std::string::npos ? "" : url.substr(hash);
  std::string head = url.substr(0, hash);
  size_t q = head.find('?');
  std::string base = head.substr(0, q);
  std::string query;
  if (q != std::string::npos) {
    std::string_view rest(head);
    rest.remove_prefix(q + 1);
    const std::string enc = UrlEncode(name);
    while (!rest.empty()) {
      size_t amp = rest.find('&');
      std::string_view part = rest.substr(0, amp);
      std::string_view pname = part.substr(0, part.find('='));
      if (!part.empty() && pname != name && pname != enc) {
        if (!query.empty()) query += '&';
        query.append(part);
      }
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  if (!query.empty()) query += '&';
  query += UrlEncode(name) + "=" + UrlEncode(value);
  return base + "?" + query + fragment;
}

std::string NextLink(std::string_view h) {
  size_t pos = 0;
  while (true) {
    size_t lt = h.find('<', pos);
    if (lt == std::string_view::npos) return "";
    size_t gt = h.find('>', lt);
    if (gt == std::string_view::npos) return "";
    std::string_view target = h.substr(lt + 1, gt - lt - 1);
    size_t next_lt = h.find('<', gt);
    std::string params = Lower(h.substr(
        gt + 1, next_lt == std::string_view::npos ? std::string_view::npos : next_lt - gt - 1));
    size_t rel = params.find("rel=");
    if (rel != std::string::npos) {
      size_t b = rel + 4;
      std::string value;
      if (b < params.size() && params[b] == '"') {
        size_t e = params.find('"', b + 1);
        value = params.substr(b + 1, e == std::string::npos ? std::string::npos : e - b - 1);
      } else {
        size_t e = params.find_first_of(";, ", b);
        value = params.substr(b, e == std::string::npos ? std::string::npos : e - b);
      }
      // rel may list several relation types: rel="next last".
      size_t start = 0;
      while (start <= value.size()) {
        size_t sp = value.find(' ', start);
        if (value.substr(start, sp == std::string::npos ? std::string::npos : sp - start) ==
            "next") {
          return std::string(target);
        }
        if (sp == std::string::npos) break;
        start = sp + 1;
      }
    }
    if (next_lt == std::string_view::npos) return "";
    pos = next_lt;
  }
}

bool SendsBody(std::string_view method, const std::string& body) {
  return !body.empty() || (method != "GET" && method != "HEAD" && method != "DELETE");
}

void AddReplyHeader(HttpReply* reply, std::string_view name, std::string_view value) {
  if (reply->headers.size() >= 1000) return;
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  reply->headers.emplace_back(Lower(name), value);
}

Status ReplyTooLarge(const std::string& url, size_t max_reply_bytes) {
  return Status::Permanent("reply from " + SafeUrl(url) + " is larger than max_reply_bytes (" +
                           std::to_string(max_reply_bytes) +
                           " bytes), which defaults to the recipe's limits.reply_bytes");
}

std::string Excerpt(std::string_view text, size_t max_chars) {
  std::string out(text.substr(0, max_chars + 64));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  // Masked after the flattening (a line break turned into a space makes a
  // spelling) and before the cut (half a number no longer looks like one, and
  // its birth date would show). Masking keeps the length; the longest
  // spelling is under the 64 bytes of slack.
  out = MaskCpr(out);
  bool cut = false;
  if (text.size() > max_chars) {
    size_t n = max_chars;
    // Do not split a UTF-8 sequence: back up over continuation bytes.
    while (n > 0 && (static_cast<unsigned char>(out[n]) & 0xC0) == 0x80) --n;
    out.resize(n);
    cut = true;
  }
  // Trim surrounding blanks so "HTTP 400 from x: " reads cleanly.
  size_t b = out.find_first_not_of(' ');
  size_t e = out.find_last_not_of(' ');
  out = b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
  if (cut) out += "...";
  return out;
}

// ------------------------------------------------------------ replies

const std::string* HttpReply::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string HttpReply::MediaType() const {
  const std::string* ct = Header("content-type");
  if (!ct) return "";
  std::string mt = Lower(ct->substr(0, ct->find(';')));
  size_t b = mt.find_first_not_of(" \t");
  size_t e = mt.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : mt.substr(b, e - b + 1);
}

bool HttpReply::IsJson() const {
  std::string mt = MediaType();
  return mt == "application/json" || (mt.size() > 5 && mt.ends_with("+json"));
}

std::optional<double> RetryAfterSeconds(const HttpReply& reply) {
  const std::string* h = reply.Header("retry-after");
  if (!h) return std::nullopt;
  std::string v = *h;
  size_t b = v.find_first_not_of(" \t");
  if (b == std::string::npos) return std::nullopt;
  v = v.substr(b, v.find_last_not_of(" \t") - b + 1);
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (v.size() > 9) return 1e9;
    return static_cast<double>(std::stol(v));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (curl_getdate also reads
  // the obsolete RFC 850 and asctime forms).
  time_t t = curl_getdate(v.c_str(), nullptr);
  if (t == -1) return std::nullopt;
  double d = std::difftime(t, std::time(nullptr));
  return d < 0 ? 0.0 : d;
}

Status HttpStatus(long status, const Headers& headers, std::string_view body,
                  const std::string& url) {
  if (status < 400) return Status::OK();
  std::string msg = "HTTP " + std::to_string(status) + " from " + SafeUrl(url);
  std::string ex = Excerpt(body, 200);
  if (!ex.empty()) msg += ": " + ex;
  HttpReply tmp;
  tmp.headers = headers;
  if (status == 408 || status == 429 || status >= 500) {
    if (auto ra = RetryAfterSeconds(tmp)) {
      msg += " (retry after " + std::to_string(static_cast<long long>(std::ceil(*ra))) + " s)";
    }
    return Status::Transient(msg);
  }
  return Status::Permanent(msg);
}

Status HttpStatus(const HttpReply& reply, const std::string& url) {
  return HttpStatus(reply.status, reply.headers, reply.body, url);
}

}  // namespace keyonce::connectors::net
