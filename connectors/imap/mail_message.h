// One mail as a record's parts: headers decoded (RFC 2047 words, any
// charset, to UTF-8), the text body (text/plain, else the HTML made into
// text), and the attachments. The MIME work (multipart structures,
// transfer encodings, charsets, RFC 2231 file names) is vmime's
// (Debian libvmime-dev), a kept library; what is ours is the choice of
// parts and the HTML-to-text fallback.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keyonce/status.h"

namespace keyonce::connectors::imap {

struct MailAttachment {
  std::string name;          // the file name the sender gave (UTF-8), may be ""
  std::string content_type;  // e.g. application/vnd.openxmlformats-officedocument...
  std::string data;          // decoded bytes
};

struct Mail {
  std::string message_id;  // without angle brackets; "" when the mail has none
  std::string from, from_name;
  std::vector<std::string> to, cc, reply_to;
  std::string subject;
  std::string date;  // ISO 8601 with the sender's offset, "" when the mail has no date
  std::string text;  // the body as text (UTF-8)
  std::string html;  // the HTML body when there is one (UTF-8)
  std::vector<MailAttachment> attachments;
};

// Parses an RFC 5322 message. Lenient like a mail program (a broken header
// is left empty); kInvalid only when nothing of it can be read.
Result<Mail> ParseMail(std::string_view raw);

// The text of an HTML body: tags removed, block elements and <br> as line
// breaks, character references decoded, scripts and styles left out,
// whitespace collapsed as a browser would.
std::string HtmlToText(std::string_view html);

}  // namespace keyonce::connectors::imap
