// Files on a server (sftp://, ftp://, ftps://, smb://) for the file
// connectors (csv, jsonl), through libcurl.
//
// A file connector keeps its local reader and writer and wraps them:
//
//   if (net::IsRemotePath(settings)) return net::MakeRemoteSource(settings, MakeLocalSource);
//
// Source: Open downloads the file, streamed, into a private temporary folder
// (0700; the file 0600) and the local source reads it from there; positions
// and messages name the remote file ("sftp://host/drop/x.csv:12", never
// credentials). The copy is removed at Close.
//
// Target: the local target writes a staging copy (with the file's current
// content first when the connector keeps it, e.g. mode append); the final
// commit uploads it as <name>.part and renames that to <name>, so a reader
// never sees half a file. The whole file is replaced once per run.
//
// Nothing lost, nothing twice (see docs/reliability.md). Open creates an
// empty <name>.part (after removing a stale <name>.keyonce-old); only the
// final commit's rename takes it away. The final commit runs, after the
// upload, three file commands on the server:
//   1. rename <name> -> <name>.keyonce-old   (skipped when there is no <name>)
//   2. rename <name>.part -> <name>
//   3. remove <name>.keyonce-old
// (OpenSSH's SFTP cannot rename over an existing file, hence 1 and 3.) After
// a crash, Recover tells from the server which point was reached:
//   <name>.part there, no backup  -> the rename did not happen: the run's
//                                    batches are written again
//   <name>.part and backup there  -> between 1 and 2, the upload is complete:
//                                    Recover finishes 2 and 3, batches arrived
//   no <name>.part                -> 2 happened: the batches arrived (a
//                                    leftover backup is removed)
// The checkpoint token holds the file's URL, so a path naming a file per run
// (out/{{ run.id }}.csv) is recovered at the interrupted run's file.
// A reader may miss <name> for a moment between 1 and 2; it never sees a
// partial file. SMB cannot rename through libcurl, so smb:// is read-only.
//
// Threading: like a connector, one thread at a time.
#pragma once

#include <curl/curl.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connectors/common/net/transfer.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::net {

// True when the template text of setting `name` starts with sftp://, ftp://,
// ftps://, smb:// or smbs:// (case-insensitive): the scheme must be written
// in the recipe, the rest may use params, run and state.
bool IsRemotePath(const Settings& settings, const std::string& name = "path");

// Sentences for the description of a file connector's `path` (source or
// target).
std::string RemotePathNote(bool target);

// The settings for files on a server, declared once for csv and jsonl:
// username, password, private_key, private_key_password, known_hosts,
// host_key_sha256, ftp_tls and the TLS settings (TlsFields).
std::vector<FieldSpec> RemoteFields();

// What the remote settings say, evaluated against a run's scope.
struct RemoteOptions {
  std::string username, password;         // password: a secret
  std::string private_key, key_password;  // sftp key file and its passphrase (a secret)
  std::string known_hosts;                // sftp: OpenSSH known_hosts file
  std::string host_key_sha256;            // sftp: base64 SHA-256 of the host key (instead)
  std::string ftp_tls = "off";            // ftp://: off, optional, required (AUTH TLS)
  TransferOptions transfer;               // connect timeout and TLS (ftps)
};

// Reads the remote settings (templates against `scope`); registers the
// secrets with `log` (may be null). kInvalid naming the setting on failure.
Result<RemoteOptions> ReadRemote(const Settings& settings, const Scope& scope, Log* log);

// Checks what can be checked without I/O, for make_source / make_target:
// no password in the URL, smb:// only for reading, key settings that belong
// together.
Status CheckRemoteSettings(const Settings& settings, bool for_target);

// One connection to a file server (kept open between calls), for files
// named by full URLs (sftp://host/path, ftp://host/path, ...).
class RemoteFiles {
 public:
  explicit RemoteFiles(RemoteOptions options);
  ~RemoteFiles();
  RemoteFiles(const RemoteFiles&) = delete;
  RemoteFiles& operator=(const RemoteFiles&) = delete;

  // Whether the file exists.
  Result<bool> Exists(const std::string& url);
  // Downloads the file to `local` (created 0600, streamed). kNotFound when
  // the remote file does not exist; `local` is removed on failure.
  Status Download(const std::string& url, const std::filesystem::path& local);
  // Uploads `local` to `url` (replacing it), then runs `after` (file
  // commands from RenameCommands / RemoveCommands) on the server.
  Status Upload(const std::filesystem::path& local, const std::string& url,
                const std::vector<std::string>& after = {});
  // Runs file commands on the server without a transfer.
  Status Run(const std::string& url, const std::vector<std::string>& commands);

  // File commands in the URL's protocol, for Upload/Run. `may_fail`: the
  // command's failure is ignored (e.g. removing what may not be there).
  static Result<std::vector<std::string>> RenameCommands(const std::string& from_url,
                                                         const std::string& to_url, bool may_fail);
  static Result<std::vector<std::string>> RemoveCommands(const std::string& url, bool may_fail);

 private:
  Status Prepare(const std::string& url);
  Status Fail(CURLcode rc, const std::string& url, const std::string& doing) const;

  RemoteOptions options_;
  CURL* easy_ = nullptr;
  char errbuf_[CURL_ERROR_SIZE] = {};
};

using LocalSourceFactory = std::function<Result<std::unique_ptr<Source>>(const Settings&)>;
using LocalTargetFactory = std::function<Result<std::unique_ptr<Target>>(const Settings&)>;

// A source reading the remote file that `path` names through the local
// source `make_local` makes for the downloaded copy. No I/O here.
Result<std::unique_ptr<Source>> MakeRemoteSource(const Settings& settings,
                                                 LocalSourceFactory make_local);

// A file connector's source: the remote file `path` names (MakeRemoteSource)
// or the local one, either with move_to / remove_after (after_read.h).
Result<std::unique_ptr<Source>> MakeFileSource(const Settings& settings,
                                               LocalSourceFactory make_local);

// A target writing the remote file that `path` names through the local
// target `make_local` makes for a staging copy. `keep_existing`: the remote
// file's current content is downloaded into the staging copy first (the
// connector keeps existing content, e.g. csv, or jsonl mode append). No I/O
// here.
Result<std::unique_ptr<Target>> MakeRemoteTarget(const Settings& settings,
                                                 LocalTargetFactory make_local, bool keep_existing);

}  // namespace keyonce::connectors::net
