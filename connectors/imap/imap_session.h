// One IMAP connection through libcurl, for the imap source: search a
// folder, fetch a mail without marking it read, and mark mails (flags, move).
//
// libcurl fetches a mail with "UID FETCH n BODY[]", which marks it \Seen in
// a folder opened for writing. The reading session therefore opens its
// folder read-only (EXAMINE) right after libcurl's own SELECT, on the same
// connection, and fetches there: a read-only folder keeps its flags (RFC
// 3501 6.3.2). libcurl reuses the connection and sees its folder selected,
// so it does not select again; if the connection was lost and libcurl made
// a new one (it then selects for writing before fetching), Fetch says so
// and the caller takes the \Seen flag back at once. Marking runs on a
// session of its own (the run's writing thread), in a folder opened for
// writing.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "connectors/common/net/transfer.h"

namespace keyonce::connectors::imap {

struct SessionOptions {
  std::string server;    // imaps://host:port or imap://host:port (no path)
  std::string folder;    // UTF-8 folder name ("INBOX", "Ansøgninger", "Indbakke/Skemaer")
  std::string username;  // mailbox to log in to
  std::string password;  // password login; "" with a bearer token
  std::string bearer;    // XOAUTH2 access token; "" for a password
  std::string starttls = "required";  // imap:// only: required, optional, off
  net::TransferOptions transfer;
};

// A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3): "Ansøgninger"
// -> "Ans&APg-gninger".
std::string ModifiedUtf7(const std::string& utf8);
// A string as an IMAP quoted string; kInvalid for line breaks and NUL.
Result<std::string> Quoted(const std::string& text, const std::string& what);

class Session {
 public:
  explicit Session(SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Read-only: logs in, selects the folder, then re-opens it read-only.
  // The folder's UIDVALIDITY in *uidvalidity.
  Status Examine(uint64_t* uidvalidity);
  // The UIDs matching `criteria` (IMAP SEARCH syntax), ascending.
  Result<std::vector<uint32_t>> Search(const std::string& criteria);
  // The whole mail with this UID, at most max_bytes (kPermanent above, with
  // *too_big set). *reconnected: the fetch ran on a new connection, in a
  // folder selected for writing (the server may have set \Seen).
  Result<std::string> Fetch(uint32_t uid, size_t max_bytes, bool* reconnected, bool* too_big);

  // Writing: runs "UID STORE set +FLAGS (flags)" (or -FLAGS).
  Status Store(const std::string& uid_set, bool add, const std::string& flags);
  // Moves the mails to `to` (UID MOVE; UID COPY + \Deleted + UID EXPUNGE on
  // a server without MOVE). The target folder is made if missing.
  Status Move(const std::string& uid_set, const std::string& to);

  // Everything known about a failure, as a message (no password, no token).
  const std::string& display() const { return display_; }

 private:
  Status Perform(const std::string& url, const std::string& command, std::string* out,
                 size_t max_bytes, bool* too_big);
  std::string FolderUrl(const std::string& folder) const;

  SessionOptions options_;
  CURL* easy_ = nullptr;
  char errbuf_[CURL_ERROR_SIZE] = {};
  std::string display_;  // server/folder for messages
  uint64_t uidvalidity_ = 0;
};

// "1,3,5:9" from ascending UIDs.
std::string UidSet(const std::vector<uint32_t>& uids);

}  // namespace keyonce::connectors::imap
