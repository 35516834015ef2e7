#include "connectors/smtp/mail_text.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

namespace keyonce::connectors::smtp {
namespace {

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool NeedsEncoding(std::string_view text) {
  for (unsigned char c : text) {
    if (c >= 0x80 || c < 0x20) return true;
  }
  return text.find("=?") != std::string_view::npos;
}

// local@domain in printable ASCII without specials, spaces or brackets.
bool ValidAddress(std::string_view a) {
  size_t at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= a.size()) return false;
  if (a.size() > 254) return false;
  for (unsigned char c : a) {
    if (c <= 0x20 || c >= 0x7F) return false;
    if (std::string_view("<>()[]\\,;:\"").find(static_cast<char>(c)) != std::string_view::npos) {
      return false;
    }
  }
  std::string_view domain = a.substr(at + 1);
  if (domain.find('@') != std::string_view::npos || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos) {
    return false;
  }
  return true;
}

// Splits on commas outside quotes and angle brackets.
std::vector<std::string_view> SplitList(std::string_view text) {
  std::vector<std::string_view> out;
  bool quoted = false, angle = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '\\' && i + 1 < text.size()) {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '<') {
      angle = true;
    } else if (c == '>') {
      angle = false;
    } else if ((c == ',' || c == ';') && !angle) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(text.substr(start));
  return out;
}

std::string Unquote(std::string_view name) {
  name = Trim(name);
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
    std::string out;
    for (size_t i = 1; i + 1 < name.size(); ++i) {
      if (name[i] == '\\' && i + 2 < name.size()) ++i;
      out += name[i];
    }
    return out;
  }
  return std::string(name);
}

}  // namespace

bool HasControlCharacter(std::string_view text) {
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\t') || c == 0x7F) return true;
  }
  return false;
}

Result<std::vector<MailAddress>> ParseAddressList(std::string_view text,
                                                  const std::string& setting) {
  std::vector<MailAddress> out;
  if (HasControlCharacter(text)) {
    return Status::Permanent("`" + setting +
                             "` holds a line break or control character (refused: it could add "
                             "headers to the mail)");
  }
  if (Trim(text).empty()) return out;
  size_t n = 0;
  for (std::string_view entry : SplitList(text)) {
    ++n;
    entry = Trim(entry);
    auto where = [&] { return "`" + setting + "`, address " + std::to_string(n); };
    if (entry.empty()) return Status::Permanent(where() + " is empty");
    MailAddress a;
    size_t lt = entry.rfind('<');
    if (lt != std::string_view::npos) {
      if (entry.back() != '>') return Status::Permanent(where() + ": '<' without a closing '>'");
      a.name = Unquote(entry.substr(0, lt));
      a.address = std::string(Trim(entry.substr(lt + 1, entry.size() - lt - 2)));
    } else {
      a.address = std::string(entry);
    }
    if (!ValidAddress(a.address)) {
      return Status::Permanent(where() + " is not a mail address of the form name@domain");
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::string FormatAddress(const MailAddress& a) {
  if (a.name.empty()) return a.address;
  std::string name;
  if (NeedsEncoding(a.name)) {
    name = EncodeHeaderText(a.name);
  } else if (a.name.find_first_of("()<>[]:;@\\,.\"") != std::string::npos) {
    name = "\"";
    for (char c : a.name) {
      if (c == '"' || c == '\\') name += '\\';
      name += c;
    }
    name += '"';
  } else {
    name = a.name;
  }
  return name + " <" + a.address + ">";
}

std::string EncodeHeaderText(std::string_view text) {
  if (!NeedsEncoding(text)) return std::string(text);
  // 75 characters per word: "=?UTF-8?B?" + 60 base64 characters + "?=",
  // i.e. at most 45 bytes of text, cut before a UTF-8 continuation byte.
  constexpr size_t kMaxBytes = 45;
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t n = std::min(kMaxBytes, text.size() - pos);
    while (n > 0 && pos + n < text.size() &&
           (static_cast<unsigned char>(text[pos + n]) & 0xC0) == 0x80) {
      --n;
    }
    if (n == 0) n = std::min(kMaxBytes, text.size() - pos);  // not UTF-8: cut anyway
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64(text.substr(pos, n)) + "?=";
    pos += n;
  }
  return out;
}

std::string AttachmentDisposition(std::string_view file_name) {
  std::string h = "Content-Disposition: attachment; ";
  if (!NeedsEncoding(file_name)) {
    h += "filename=\"";
    for (char c : file_name) {
      if (c == '"' || c == '\\') h += '\\';
      h += c;
    }
    return h + "\"";
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  h += "filename*=UTF-8''";
  for (unsigned char c : file_name) {
    if (std::isalnum(c) ||
        std::string_view("!#$&+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos) {
      h += static_cast<char>(c);
    } else {
      h += '%';
      h += kHex[c >> 4];
      h += kHex[c & 15];
    }
  }
  std::string words = EncodeHeaderText(file_name);
  for (size_t p = words.find("\r\n "); p != std::string::npos; p = words.find("\r\n ", p)) {
    words.replace(p, 3, " ");
  }
  return h + "; filename=\"" + words + "\"";
}

std::string MailDate(std::time_t t) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string ToCrlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string GuessContentType(std::string_view file_name) {
  size_t dot = file_name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext;
  for (char c : file_name.substr(dot + 1))
    ext += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, const char*> kTypes[] = {
      {"csv", "text/csv"},
      {"txt", "text/plain"},
      {"log", "text/plain"},
      {"jsonl", "application/x-ndjson"},
      {"json", "application/json"},
      {"xml", "application/xml"},
      {"html", "text/html"},
      {"htm", "text/html"},
      {"pdf", "application/pdf"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"zip", "application/zip"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"xls", "application/vnd.ms-excel"},
      {"doc", "application/msword"},
  };
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

}  // namespace keyonce::connectors::smtp
