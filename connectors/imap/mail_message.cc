#include "connectors/imap/mail_message.h"

#include <cctype>
#include <cstdio>
#include <mutex>
#include <vmime/platforms/posix/posixHandler.hpp>
#include <vmime/vmime.hpp>

namespace keyonce::connectors::imap {
namespace {

void InitVmime() {
  static std::once_flag once;
  std::call_once(once,
                 [] { vmime::platform::setHandler<vmime::platforms::posix::posixHandler>(); });
}

std::string Extract(const vmime::contentHandler& content) {
  std::string out;
  vmime::utility::outputStreamStringAdapter os(out);
  content.extract(os);
  return out;
}

// Bytes in `from` as UTF-8; invalid sequences become U+FFFD.
std::string ToUtf8(const std::string& bytes, const vmime::charset& from) {
  if (from == vmime::charset(vmime::charsets::UTF_8) ||
      from == vmime::charset(vmime::charsets::US_ASCII)) {
    return bytes;
  }
  std::string out;
  vmime::charsetConverterOptions opts;
  opts.silentlyReplaceInvalidSequences = true;
  try {
    vmime::charset::convert(bytes, out, from, vmime::charset(vmime::charsets::UTF_8), opts);
  } catch (const vmime::exception&) {
    return bytes;  // an unknown charset: the bytes as they are
  }
  return out;
}

std::string Utf8(const vmime::text& t) { return t.getConvertedText(vmime::charsets::UTF_8); }

void AddAddresses(const vmime::addressList& list, std::vector<std::string>* out) {
  for (size_t i = 0; i < list.getAddressCount(); ++i) {
    auto a = list.getAddressAt(i);
    if (a->isGroup()) {
      auto g = vmime::dynamicCast<const vmime::mailboxGroup>(a);
      for (size_t k = 0; g && k < g->getMailboxCount(); ++k) {
        out->push_back(g->getMailboxAt(k)->getEmail().toString());
      }
    } else if (auto m = vmime::dynamicCast<const vmime::mailbox>(a)) {
      std::string e = m->getEmail().toString();
      if (!e.empty()) out->push_back(e);
    }
  }
}

std::string IsoDate(const vmime::datetime& d) {
  const int zone = d.getZone();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", d.getYear(),
                d.getMonth(), d.getDay(), d.getHour(), d.getMinute(), d.getSecond(),
                zone < 0 ? '-' : '+', std::abs(zone) / 60, std::abs(zone) % 60);
  return buf;
}

template <typename T>
vmime::shared_ptr<const T> FieldValue(const vmime::header& h, const char* name) {
  auto f = h.findField(name);
  return f ? f->getValue<T>() : nullptr;
}

// ------------------------------------------------------------ HTML to text

bool StartsWithNoCase(std::string_view s, size_t at, std::string_view prefix) {
  if (s.size() - at < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[at + i])) != prefix[i]) return false;
  }
  return true;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The named references a Danish mail is likely to hold; others stay as written.
uint32_t NamedReference(std::string_view name) {
  static const std::pair<std::string_view, uint32_t> kNames[] = {
      {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},     {"apos", '\''},
      {"nbsp", 0xA0},    {"aelig", 0xE6},   {"AElig", 0xC6},    {"oslash", 0xF8},  {"Oslash", 0xD8},
      {"aring", 0xE5},   {"Aring", 0xC5},   {"auml", 0xE4},     {"Auml", 0xC4},    {"ouml", 0xF6},
      {"Ouml", 0xD6},    {"uuml", 0xFC},    {"Uuml", 0xDC},     {"eacute", 0xE9},  {"Eacute", 0xC9},
      {"egrave", 0xE8},  {"szlig", 0xDF},   {"copy", 0xA9},     {"reg", 0xAE},     {"euro", 0x20AC},
      {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026}, {"laquo", 0xAB},   {"raquo", 0xBB},
      {"rsquo", 0x2019}, {"lsquo", 0x2018}, {"rdquo", 0x201D},  {"ldquo", 0x201C}, {"bull", 0x2022},
  };
  for (const auto& [n, cp] : kNames) {
    if (n == name) return cp;
  }
  return 0;
}

}  // namespace

std::string HtmlToText(std::string_view html) {
  std::string out;
  bool space = false;  // whitespace seen since the last character written
  auto newline = [&](int n) {
    while (!out.empty() && out.back() == ' ') out.pop_back();
    int have = 0;
    for (size_t i = out.size(); i > 0 && out[i - 1] == '\n'; --i) ++have;
    if (out.empty()) return;
    for (; have < n; ++have) out += '\n';
    space = false;
  };
  auto put = [&](std::string_view s) {
    if (space && !out.empty() && out.back() != '\n') out += ' ';
    space = false;
    out += s;
  };
  for (size_t i = 0; i < html.size();) {
    const char c = html[i];
    if (c == '<') {
      if (html.compare(i, 4, "<!--") == 0) {
        size_t end = html.find("-->", i + 4);
        i = end == std::string_view::npos ? html.size() : end + 3;
        continue;
      }
      size_t end = html.find('>', i);
      if (end == std::string_view::npos) break;
      size_t n = i + 1;
      const bool closing = n < end && html[n] == '/';
      if (closing) ++n;
      std::string tag;
      while (n < end && std::isalnum(static_cast<unsigned char>(html[n]))) {
        tag += static_cast<char>(std::tolower(static_cast<unsigned char>(html[n++])));
      }
      i = end + 1;
      if (!closing && (tag == "script" || tag == "style" || tag == "head" || tag == "title")) {
        // Skip to the matching end tag.
        const std::string close = "</" + tag;
        size_t at = i;
        while (at < html.size() && !StartsWithNoCase(html, at, close)) ++at;
        size_t gt = html.find('>', at);
        i = gt == std::string_view::npos ? html.size() : gt + 1;
        continue;
      }
      if (tag == "br") {
        newline(1);
      } else if (tag == "p" || tag == "div" || tag == "table" || tag == "h1" || tag == "h2" ||
                 tag == "h3" || tag == "h4" || tag == "ul" || tag == "ol" || tag == "blockquote") {
        newline(tag == "p" || tag[0] == 'h' ? 2 : 1);
      } else if (tag == "tr" || tag == "li") {
        newline(1);
        if (tag == "li" && !closing) put("- ");
      } else if (tag == "td" || tag == "th") {
        if (!closing) space = true;
      }
      continue;
    }
    if (c == '&') {
      size_t semi = html.find(';', i);
      if (semi != std::string_view::npos && semi - i <= 10) {
        std::string_view ref = html.substr(i + 1, semi - i - 1);
        uint32_t cp = 0;
        if (!ref.empty() && ref[0] == '#') {
          const bool hex = ref.size() > 1 && (ref[1] == 'x' || ref[1] == 'X');
          try {
            cp = static_cast<uint32_t>(
                std::stoul(std::string(ref.substr(hex ? 2 : 1)), nullptr, hex ? 16 : 10));
          } catch (...) {
            cp = 0;
          }
        } else {
          cp = NamedReference(ref);
        }
        if (cp) {
          std::string s;
          AppendUtf8(cp == 0xA0 ? ' ' : cp, &s);
          put(s);
          i = semi + 1;
          continue;
        }
      }
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = true;
      ++i;
      continue;
    }
    put(std::string_view(&html[i], 1));
    ++i;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Result<Mail> ParseMail(std::string_view raw) {
  InitVmime();
  Mail m;
  try {
    auto msg = vmime::make_shared<vmime::message>();
    msg->parse(std::string(raw));
    const vmime::header& h = *msg->getHeader();
    if (auto id = FieldValue<vmime::messageId>(h, vmime::fields::MESSAGE_ID)) {
      m.message_id = id->getId();
    }
    if (auto date = FieldValue<vmime::datetime>(h, vmime::fields::DATE)) m.date = IsoDate(*date);
    if (auto reply = FieldValue<vmime::addressList>(h, vmime::fields::REPLY_TO)) {
      AddAddresses(*reply, &m.reply_to);
    } else if (auto one = FieldValue<vmime::mailbox>(h, vmime::fields::REPLY_TO)) {
      m.reply_to.push_back(one->getEmail().toString());
    }
    vmime::messageParser mp(msg);
    m.from = mp.getExpeditor().getEmail().toString();
    m.from_name = Utf8(mp.getExpeditor().getName());
    AddAddresses(mp.getRecipients(), &m.to);
    AddAddresses(mp.getCopyRecipients(), &m.cc);
    m.subject = Utf8(mp.getSubject());
    std::string plain;
    for (const auto& part : mp.getTextPartList()) {
      const vmime::mediaType type = part->getType();
      if (type.getSubType() == vmime::mediaTypes::TEXT_HTML) {
        if (!m.html.empty()) continue;
        m.html = ToUtf8(Extract(*part->getText()), part->getCharset());
        auto html_part = vmime::dynamicCast<const vmime::htmlTextPart>(part);
        if (html_part && plain.empty() && html_part->getPlainText() &&
            !html_part->getPlainText()->isEmpty()) {
          plain = ToUtf8(Extract(*html_part->getPlainText()), part->getCharset());
        }
      } else if (plain.empty()) {
        plain = ToUtf8(Extract(*part->getText()), part->getCharset());
      }
    }
    m.text = !plain.empty() ? plain : HtmlToText(m.html);
    // Mail text ends lines with CRLF; a record's text with LF.
    std::string text;
    text.reserve(m.text.size());
    for (size_t i = 0; i < m.text.size(); ++i) {
      if (m.text[i] == '\r' && i + 1 < m.text.size() && m.text[i + 1] == '\n') continue;
      text += m.text[i];
    }
    m.text = std::move(text);
    for (const auto& att : mp.getAttachmentList()) {
      MailAttachment a;
      a.name = att->getName().getConvertedText(vmime::charsets::UTF_8);
      a.content_type = att->getType().generate();
      a.data = Extract(*att->getData());
      m.attachments.push_back(std::move(a));
    }
  } catch (const vmime::exception& e) {
    // The kind of failure only: vmime's own text may quote the mail.
    return Status::Invalid(std::string("the mail cannot be read as MIME (") + e.name() + ")");
  } catch (const std::exception&) {
    return Status::Invalid("the mail cannot be read as MIME");
  }
  return m;
}

}  // namespace keyonce::connectors::imap
