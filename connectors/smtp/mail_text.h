// The text of a mail's headers: address lists, RFC 2047 encoded words for
// non-ASCII text (Danish æøå in subjects and names), the Date header, and the
// checks that keep a rendered value from adding headers of its own.
//
// Pure functions, no I/O. Error messages name the setting and the position
// of the address in its list, never the value.
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "keyonce/status.h"

namespace keyonce::connectors::smtp {

struct MailAddress {
  std::string name;     // display name ("" = none), UTF-8
  std::string address;  // local@domain, ASCII
};

// True when `text` holds a character that must never reach a header: CR, LF
// or another control character (tab is allowed).
bool HasControlCharacter(std::string_view text);

// Parses "a@x.dk", "Name <a@x.dk>", "\"Last, First\" <a@x.dk>" and
// comma-separated lists of them ("" gives an empty list). `setting` names the
// setting in messages. kPermanent (the record's own fault) for a line break
// (header injection), an empty entry or an address that is not local@domain
// in printable ASCII.
Result<std::vector<MailAddress>> ParseAddressList(std::string_view text,
                                                  const std::string& setting);

// "Name <a@x.dk>" with the name quoted or RFC 2047 encoded as needed; just
// the address when there is no name.
std::string FormatAddress(const MailAddress& a);

// `text` as a header value: printable ASCII as it is; anything else as
// RFC 2047 "=?UTF-8?B?...?=" words of at most 75 characters, never splitting
// a UTF-8 character, folded onto continuation lines ("\r\n ").
std::string EncodeHeaderText(std::string_view text);

// The Content-Disposition header of an attachment named `file_name`:
// plain ASCII names quoted; others as RFC 2231 (filename*=UTF-8''...) with an
// RFC 2047 filename= beside it for older mail programs.
std::string AttachmentDisposition(std::string_view file_name);

// RFC 5322 date in UTC: "Fri, 27 Nov 2026 14:05:09 +0000".
std::string MailDate(std::time_t t);

// Line breaks as CRLF (what SMTP requires of a body).
std::string ToCrlf(std::string_view text);

// A content type for an attachment from its file name's extension
// (csv, txt, pdf, json, xml, html, png, jpg, xlsx, docx, zip, ...);
// application/octet-stream when unknown.
std::string GuessContentType(std::string_view file_name);

}  // namespace keyonce::connectors::smtp
