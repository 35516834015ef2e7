#include "connectors/imap/imap_session.h"

#include <algorithm>
#include <cctype>

namespace keyonce::connectors::imap {
namespace {

struct Sink {
  std::string* out;
  size_t max;
  bool too_big = false;
};

size_t Collect(char* data, size_t size, size_t n, void* p) {
  auto* sink = static_cast<Sink*>(p);
  const size_t len = size * n;
  if (sink->out->size() + len > sink->max) {
    sink->too_big = true;
    return 0;  // aborts the transfer
  }
  sink->out->append(data, len);
  return len;
}

}  // namespace

std::string ModifiedUtf7(const std::string& utf8) {
  // UTF-8 -> UTF-16 code units.
  std::vector<uint16_t> units;
  for (size_t i = 0; i < utf8.size();) {
    unsigned char c = static_cast<unsigned char>(utf8[i]);
    uint32_t cp = 0xFFFD;
    size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 6 && i + 1 < utf8.size()) {
      cp = ((c & 0x1F) << 6) | (utf8[i + 1] & 0x3F);
      len = 2;
    } else if ((c >> 4) == 14 && i + 2 < utf8.size()) {
      cp = ((c & 0x0F) << 12) | ((utf8[i + 1] & 0x3F) << 6) | (utf8[i + 2] & 0x3F);
      len = 3;
    } else if ((c >> 3) == 30 && i + 3 < utf8.size()) {
      cp = ((c & 0x07) << 18) | ((utf8[i + 1] & 0x3F) << 12) | ((utf8[i + 2] & 0x3F) << 6) |
           (utf8[i + 3] & 0x3F);
      len = 4;
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push_back(static_cast<uint16_t>(0xD800 | (cp >> 10)));
      units.push_back(static_cast<uint16_t>(0xDC00 | (cp & 0x3FF)));
    } else {
      units.push_back(static_cast<uint16_t>(cp));
    }
  }
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
  std::string out;
  for (size_t i = 0; i < units.size();) {
    const uint16_t u = units[i];
    if (u >= 0x20 && u <= 0x7E) {
      out += u == '&' ? std::string("&-") : std::string(1, static_cast<char>(u));
      ++i;
      continue;
    }
    // A run of other characters, base64 of their UTF-16BE bytes.
    std::string bytes;
    while (i < units.size() && !(units[i] >= 0x20 && units[i] <= 0x7E)) {
      bytes += static_cast<char>(units[i] >> 8);
      bytes += static_cast<char>(units[i] & 0xFF);
      ++i;
    }
    out += '&';
    uint32_t bits = 0;
    int nbits = 0;
    for (unsigned char b : bytes) {
      bits = (bits << 8) | b;
      nbits += 8;
      while (nbits >= 6) {
        out += b64[(bits >> (nbits - 6)) & 0x3F];
        nbits -= 6;
      }
    }
    if (nbits > 0) out += b64[(bits << (6 - nbits)) & 0x3F];
    out += '-';
  }
  return out;
}

Result<std::string> Quoted(const std::string& text, const std::string& what) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return Status::Invalid(what + " holds a line break, which IMAP cannot send");
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string UidSet(const std::vector<uint32_t>& uids) {
  std::string out;
  for (size_t i = 0; i < uids.size();) {
    size_t j = i;
    while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(uids[i]);
    if (j > i) out += ":" + std::to_string(uids[j]);
    i = j + 1;
  }
  return out;
}

Session::Session(SessionOptions options) : options_(std::move(options)) {
  display_ = net::SafeUrl(options_.server) + "/" + options_.folder;
}

Session::~Session() {
  if (easy_) curl_easy_cleanup(easy_);
}

std::string Session::FolderUrl(const std::string& folder) const {
  std::string url = options_.server + "/" + net::UrlEncodePath(ModifiedUtf7(folder));
  if (uidvalidity_) url += ";UIDVALIDITY=" + std::to_string(uidvalidity_);
  return url;
}

Status Session::Perform(const std::string& url, const std::string& command, std::string* out,
                        size_t max_bytes, bool* too_big) {
  if (!easy_) {
    easy_ = curl_easy_init();
    if (!easy_) return Status::Internal("curl_easy_init failed");
    net::ConfigureEasy(easy_, options_.transfer, errbuf_);
    curl_easy_setopt(easy_, CURLOPT_USERNAME, options_.username.c_str());
    if (!options_.bearer.empty()) {
      curl_easy_setopt(easy_, CURLOPT_XOAUTH2_BEARER, options_.bearer.c_str());
      curl_easy_setopt(easy_, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
    } else {
      curl_easy_setopt(easy_, CURLOPT_PASSWORD, options_.password.c_str());
    }
    const std::string& tls = options_.starttls;
    curl_easy_setopt(easy_, CURLOPT_USE_SSL,
                     tls == "off"        ? static_cast<long>(CURLUSESSL_NONE)
                     : tls == "optional" ? static_cast<long>(CURLUSESSL_TRY)
                                         : static_cast<long>(CURLUSESSL_ALL));
  }
  Sink sink{out, max_bytes};
  curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy_, CURLOPT_CUSTOMREQUEST, command.empty() ? nullptr : command.c_str());
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &sink);
  errbuf_[0] = 0;
  const CURLcode rc = curl_easy_perform(easy_);
  if (too_big) *too_big = sink.too_big;
  if (rc == CURLE_OK) return Status::OK();
  if (sink.too_big) {
    return Status::Permanent("the mail is larger than max_message_bytes (" +
                             std::to_string(max_bytes) + " bytes)");
  }
  const std::string where = display_;
  if (rc == CURLE_QUOTE_ERROR) {
    return Status::Permanent("the IMAP server " + where + " refused " +
                             command.substr(0, command.find(' ', 4)) + ": " +
                             net::Excerpt(errbuf_[0] ? errbuf_ : curl_easy_strerror(rc), 200));
  }
  if (rc == CURLE_REMOTE_FILE_NOT_FOUND) {
    return Status::Permanent(where + " does not exist, or its UIDVALIDITY changed during the run");
  }
  return net::CurlStatus(rc, errbuf_, options_.server).Wrap(where);
}

Status Session::Examine(uint64_t* uidvalidity) {
  auto folder = Quoted(ModifiedUtf7(options_.folder), "folder");
  if (!folder.ok()) return folder.status();
  std::string out;
  KEYONCE_RETURN_IF_ERROR(
      Perform(FolderUrl(options_.folder), "EXAMINE " + *folder, &out, 1 << 20, nullptr));
  size_t at = out.find("[UIDVALIDITY ");
  if (at != std::string::npos) {
    uidvalidity_ = std::strtoull(out.c_str() + at + 13, nullptr, 10);
  }
  if (uidvalidity) *uidvalidity = uidvalidity_;
  return Status::OK();
}

Result<std::vector<uint32_t>> Session::Search(const std::string& criteria) {
  std::string out;
  KEYONCE_RETURN_IF_ERROR(
      Perform(FolderUrl(options_.folder), "UID SEARCH " + criteria, &out, 64 << 20, nullptr));
  std::vector<uint32_t> uids;
  size_t at = 0;
  while ((at = out.find("* SEARCH", at)) != std::string::npos) {
    at += 8;
    size_t end = out.find('\n', at);
    for (size_t i = at; i < std::min(end, out.size());) {
      while (i < out.size() && out[i] == ' ') ++i;
      if (i >= out.size() || !std::isdigit(static_cast<unsigned char>(out[i]))) break;
      uint64_t v = 0;
      while (i < out.size() && std::isdigit(static_cast<unsigned char>(out[i]))) {
        v = v * 10 + static_cast<uint64_t>(out[i++] - '0');
      }
      if (v > 0 && v <= UINT32_MAX) uids.push_back(static_cast<uint32_t>(v));
    }
  }
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return uids;
}

Result<std::string> Session::Fetch(uint32_t uid, size_t max_bytes, bool* reconnected,
                                   bool* too_big) {
  std::string mail;
  std::string url = FolderUrl(options_.folder) + ";UID=" + std::to_string(uid);
  Status st = Perform(url, "", &mail, max_bytes, too_big);
  long connects = 0;
  curl_easy_getinfo(easy_, CURLINFO_NUM_CONNECTS, &connects);
  *reconnected = connects > 0;
  if (!st.ok()) return st;
  return mail;
}

Status Session::Store(const std::string& uid_set, bool add, const std::string& flags) {
  std::string out;
  return Perform(FolderUrl(options_.folder),
                 "UID STORE " + uid_set + (add ? " +" : " -") + "FLAGS.SILENT (" + flags + ")",
                 &out, 1 << 20, nullptr);
}

Status Session::Move(const std::string& uid_set, const std::string& to) {
  auto target = Quoted(ModifiedUtf7(to), "move_to");
  if (!target.ok()) return target.status();
  std::string out;
  // Made if missing; "already exists" is no failure.
  (void)Perform(options_.server + "/", "CREATE " + *target, &out, 1 << 20, nullptr);
  const std::string folder = FolderUrl(options_.folder);
  Status moved = Perform(folder, "UID MOVE " + uid_set + " " + *target, &out, 1 << 20, nullptr);
  if (moved.ok()) return moved;
  // A server without MOVE (RFC 6851): copy, mark deleted, expunge those.
  KEYONCE_RETURN_IF_ERROR(
      Perform(folder, "UID COPY " + uid_set + " " + *target, &out, 1 << 20, nullptr));
  KEYONCE_RETURN_IF_ERROR(Store(uid_set, true, "\\Deleted"));
  return Perform(folder, "UID EXPUNGE " + uid_set, &out, 1 << 20, nullptr);
}

}  // namespace keyonce::connectors::imap
