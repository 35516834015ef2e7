// The `imap` connector: a source of the mails in a folder of a mailbox that
// match a search, one record per mail (sender, recipients, subject, date,
// message id, text, attachments saved as files). libcurl speaks IMAP
// (imap_session.cc); vmime reads the MIME (mail_message.cc).
//
// Nothing lost, nothing twice: a mail is marked (\Seen, a keyword, or moved
// to a folder, as after_read says) only when the engine acknowledges it:
// every target has committed its record, or it is in quarantine
// (Source::Acknowledge). Reading never marks: the folder is opened
// read-only. A crash before the mark makes the next run read the mail
// again, and the journal (keyed by the message id) writes nothing twice.
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "connectors/common/net/transfer.h"
#include "connectors/imap/imap_session.h"
#include "connectors/imap/mail_message.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::imap {
namespace {

namespace fs = std::filesystem;

FieldSpec Secret(FieldSpec f) {
  f.secret = true;
  return f;
}

std::vector<FieldSpec> SourceFields() {
  std::vector<FieldSpec> fields = {
      FieldSpec::Tmpl("url", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Required()
          .Describe("The mail server: imaps://host (TLS from the first byte, port 993) or "
                    "imap://host:143 (see starttls). No user name, password or folder in the URL.")
          .Example("imaps://outlook.office365.com"),
      FieldSpec::Tmpl("folder", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Default("INBOX")
          .Describe("The folder to read, by its name as the mail program shows it (any "
                    "characters; a subfolder with the server's separator, e.g. "
                    "Indbakke/Ansøgninger).")
          .Example("Ansøgninger"),
      FieldSpec::Enum("starttls", {"required", "optional", "off"})
          .Default("required")
          .Describe("For imap:// URLs: required: switch to TLS with STARTTLS before logging in, "
                    "and fail if the server cannot; optional: when offered; off: clear text "
                    "(only for a server on the same machine). imaps:// always uses TLS.")
          .Example("required"),
      FieldSpec::Tmpl("username", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Required()
          .Describe("The mailbox to log in to (for a shared mailbox with OAuth2: its address).")
          .Example("ansoegninger@kommune.dk"),
      Secret(FieldSpec::Tmpl("password", TemplateContext::kText)
                 .Roots(kRootsStatic)
                 .Describe("Password to log in with; must come from secrets. Not with auth.")
                 .Example("\"{{ secrets.imap_password }}\"")),
      net::AuthField("auth").Describe(
          "OAuth2 instead of a password (Microsoft 365 allows no other way): type "
          "oauth2_client_credentials with token_url, client_id, client_secret (from secrets) and "
          "scope (for Microsoft 365: https://outlook.office365.com/.default); the access token "
          "logs in with XOAUTH2 as username. type bearer with token: a token fetched elsewhere."),
      FieldSpec::Object(
          "search",
          {
              FieldSpec::Bool("unseen")
                  .Default("true")
                  .Describe("Only mails not yet read (no \\Seen flag).")
                  .Example("false"),
              FieldSpec::Tmpl("from", TemplateContext::kText)
                  .Roots(kRootsStatic)
                  .Describe("Only mails whose From holds this text (an address or a part of it).")
                  .Example("\"@borger.dk\""),
              FieldSpec::Tmpl("to", TemplateContext::kText)
                  .Roots(kRootsStatic)
                  .Describe("Only mails whose To holds this text.")
                  .Example("ansoegninger@kommune.dk"),
              FieldSpec::Tmpl("subject", TemplateContext::kText)
                  .Roots(kRootsStatic)
                  .Describe("Only mails whose subject holds this text (any characters).")
                  .Example("Ansøgning"),
              FieldSpec::Tmpl("body", TemplateContext::kText)
                  .Roots(kRootsStatic)
                  .Describe("Only mails whose text holds this text.")
                  .Example("pladsanvisning"),
              FieldSpec::Tmpl("since", TemplateContext::kText)
                  .Roots(kRootsStatic)
                  .Describe(
                      "Only mails received on or after this day: an ISO date or date-time (its "
                      "date counts: IMAP searches by day), e.g. the watermark of the mails' "
                      "dates, \"{{ state.watermark }}\" with `watermark: \"{{ record.date }}\"`. "
                      "Empty (a first run without a watermark): no limit. Mails of the "
                      "watermark's own day are read again; the journal writes none twice.")
                  .Example("\"{{ state.watermark }}\""),
          })
          .Describe("Which mails of the folder are read (all conditions must hold): unseen "
                    "(default true), from, to, subject, body, since. Default: the unseen mails.")
          .Example("{unseen: true, subject: \"Ansøgning\", since: \"{{ state.watermark }}\"}"),
      FieldSpec::Enum("after_read", {"seen", "flag", "move", "leave"})
          .Default("seen")
          .Describe(
              "What happens to a mail once its record is written to every target or kept in "
              "quarantine (never before: after a crash the mail is read again and the journal "
              "writes nothing twice). seen: it is marked read. flag: it gets the keyword `flag` "
              "(and mails with that keyword are not read again, whatever search says). move: it "
              "is moved to the folder move_to (made if missing). leave: nothing (a search by "
              "since/watermark and the journal keep it from being written twice).")
          .Example("move"),
      FieldSpec::String("flag")
          .Default("$Keyonce")
          .Describe("The keyword after_read: flag sets (letters, digits, $ and _).")
          .Example("$Behandlet"),
      FieldSpec::Tmpl("move_to", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Describe("For after_read: move: the folder the mail is moved to.")
          .Example("Behandlet"),
      FieldSpec::Tmpl("attachments_to", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Describe(
              "A folder the attachments are saved in (made if missing, readable by keyonce's user "
              "only; relative to the recipe's folder), each as <uidvalidity>-<uid>-<n>.<ext> so "
              "that no name a sender chose (it may hold a CPR number) becomes a file name; the "
              "record's attachments list gives each one's name, type, size and path, for later "
              "steps and recipes. Absent: attachments are listed without a path and not saved. "
              "They hold personal data: remove them with the run's other files.")
          .Example("\"indbakke/{{ run.id }}\""),
      FieldSpec::Int("max_message_bytes")
          .Default("33554432")
          .Describe("Largest mail read (bytes, with its attachments as sent); a bigger one is "
                    "quarantined with its UID, not held in memory.")
          .Example("52428800"),
      FieldSpec::Int("max_messages")
          .Describe("At most this many mails a run (the oldest first); the next run goes on. "
                    "Default: all that match.")
          .Example("500"),
  };
  for (auto& f : net::TimeoutFields()) {
    if (f.name != "max_reply_bytes") fields.push_back(std::move(f));
  }
  for (auto& f : net::TlsFields()) fields.push_back(std::move(f));
  return fields;
}

ComponentSpec SourceSpec() {
  ComponentSpec spec;
  spec.summary =
      "Reads the mails of a mailbox folder that match a search, one record per mail: uid, "
      "uidvalidity, message_id, from, from_name, to, cc, reply_to (lists), subject (RFC 2047 "
      "decoded), date (ISO 8601), text (the text/plain part, else the HTML as text; any "
      "charset, as UTF-8), html, and attachments (a list of {name, content_type, size, path}). "
      "A mail is marked (after_read) only once its record is safe in every target or in "
      "quarantine. Use key: \"{{ record.message_id }}\" (a mail sent without a Message-ID gets "
      "<sha-256 of its headers>@keyonce.invalid, the same each time it is read).";
  spec.fields = SourceFields();
  spec.example_yaml =
      "source:\n"
      "  type: imap\n"
      "  url: imaps://mail.kommune.dk\n"
      "  folder: Ansøgninger\n"
      "  username: ansoegninger@kommune.dk\n"
      "  password: \"{{ secrets.imap_password }}\"\n"
      "  search: {unseen: true, subject: \"Ansøgning\"}\n"
      "  after_read: move\n"
      "  move_to: Behandlet\n"
      "  attachments_to: \"indbakke/{{ run.id }}\"\n";
  return spec;
}

// ------------------------------------------------------------ the source

bool HasAuth(const Settings& s) {
  const Value* raw = s.Raw("auth");
  return raw && !raw->is_null();
}

Result<std::string> Render(const Settings& s, const std::string& name, const Scope& scope) {
  const Template* t = s.Tmpl(name);
  if (!t) return std::string();
  auto r = t->Render(scope);
  if (!r.ok()) return r.status().Wrap(s.where + ": rendering " + name);
  return std::move(r).value();
}

// "2026-12-07..." -> "7-Dec-2026" (IMAP's date); kInvalid otherwise.
Result<std::string> ImapDate(const std::string& iso, const std::string& where) {
  int y = 0, m = 0, d = 0;
  if (iso.size() < 10 || std::sscanf(iso.c_str(), "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 ||
      m > 12 || d < 1 || d > 31) {
    return Status::Invalid(where + ": search.since must be an ISO date (2026-12-07) or date-time");
  }
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  return std::to_string(d) + "-" + kMonths[m - 1] + "-" + std::to_string(y);
}

bool IsAscii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
}

// For a mail without a Message-ID (some scanners and form systems send
// none): an id made from its header block, the same every time the mail is
// read, so that it can still be the record's key ("<sha-256 hex>@keyonce.invalid").
std::string HeaderId(const std::string& raw) {
  size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) end = raw.find("\n\n");
  const std::string_view headers(raw.data(), end == std::string::npos ? raw.size() : end);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(headers.data(), headers.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (unsigned int i = 0; i < len; ++i) {
    id += hex[digest[i] >> 4];
    id += hex[digest[i] & 15];
  }
  return id + "@keyonce.invalid";
}

// The extension of a sender's file name, if it is a plain one ("pdf").
std::string SafeExtension(const std::string& name) {
  size_t dot = name.rfind('.');
  if (dot == std::string::npos) return "";
  std::string ext = name.substr(dot + 1);
  if (ext.empty() || ext.size() > 10) return "";
  for (char& c : ext) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return "";
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return ext;
}

Value StringList(const std::vector<std::string>& v, boost::json::storage_ptr sp) {
  boost::json::array a(sp);
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

class ImapSource : public Source {
 public:
  explicit ImapSource(Settings settings) : settings_(std::move(settings)) {}

  Status Open(const RunContext& ctx) override {
    const std::string& w = settings_.where;
    SessionOptions o;
    auto server = Render(settings_, "url", ctx.scope);
    if (!server.ok()) return server.status();
    o.server = *server;
    while (!o.server.empty() && o.server.back() == '/') o.server.pop_back();
    if ((o.server.rfind("imaps://", 0) != 0 && o.server.rfind("imap://", 0) != 0) ||
        o.server.find('/', o.server.find("://") + 3) != std::string::npos ||
        o.server.find('@') != std::string::npos) {
      return Status::Invalid(w + ": url must be imaps://host[:port] or imap://host[:port] (" +
                             net::SafeUrl(o.server) + ")");
    }
    auto folder = Render(settings_, "folder", ctx.scope);
    if (!folder.ok()) return folder.status();
    o.folder = folder->empty() ? "INBOX" : *folder;
    auto user = Render(settings_, "username", ctx.scope);
    if (!user.ok()) return user.status();
    o.username = *user;
    auto password = Render(settings_, "password", ctx.scope);
    if (!password.ok()) return password.status();
    o.password = *password;
    if (!o.password.empty() && ctx.log) ctx.log->AddSecret(o.password);
    o.starttls = settings_.String("starttls").value_or("required");
    auto transfer = net::ReadTransferOptions(settings_, ctx);
    if (!transfer.ok()) return transfer.status();
    o.transfer = *transfer;
    if (HasAuth(settings_)) {
      auto config = net::ReadAuth(settings_, "auth");
      if (!config.ok()) return config.status();
      net::Authenticator auth(std::move(config).value());
      KEYONCE_RETURN_IF_ERROR(auth.Open(ctx, o.transfer));
      net::HttpRequest probe;
      KEYONCE_RETURN_IF_ERROR(auth.Apply(&probe).Wrap(w + ": getting an OAuth2 token"));
      for (const auto& [name, value] : probe.headers) {
        if (name == "Authorization" && value.rfind("Bearer ", 0) == 0) o.bearer = value.substr(7);
      }
      if (o.bearer.empty()) {
        return Status::Invalid(w +
                               ": auth must give a token (oauth2_client_credentials or bearer)");
      }
    }
    after_ = settings_.String("after_read").value_or("seen");
    flag_ = settings_.String("flag").value_or("$Keyonce");
    auto move_to = Render(settings_, "move_to", ctx.scope);
    if (!move_to.ok()) return move_to.status();
    move_to_ = *move_to;
    if (after_ == "move" && move_to_.empty()) {
      return Status::Invalid(w + ": after_read: move needs move_to (the folder to move mails to)");
    }
    max_bytes_ = static_cast<size_t>(settings_.Int("max_message_bytes").value_or(32 << 20));
    max_messages_ = settings_.Int("max_messages").value_or(0);
    if (settings_.Tmpl("attachments_to")) {
      auto dir = settings_.ResolvePath("attachments_to", ctx.scope);
      if (!dir.ok()) return dir.status().Wrap(w);
      attachments_to_ = *dir;
    }
    auto criteria = Criteria(ctx.scope);
    if (!criteria.ok()) return criteria.status();
    display_ = net::SafeUrl(o.server) + "/" + o.folder;
    reader_ = std::make_unique<Session>(o);
    marker_ = std::make_unique<Session>(o);
    KEYONCE_RETURN_IF_ERROR(reader_->Examine(&uidvalidity_).Wrap("opening the folder"));
    auto uids = reader_->Search(*criteria);
    if (!uids.ok()) return uids.status().Wrap("searching " + display_);
    uids_ = std::move(uids).value();
    if (max_messages_ > 0 && uids_.size() > static_cast<size_t>(max_messages_)) {
      uids_.resize(static_cast<size_t>(max_messages_));
    }
    unseen_search_ = criteria->find("UNSEEN") != std::string::npos;
    return Status::OK();
  }

  Result<bool> Next(SourceItem* item) override {
    if (next_ >= uids_.size()) return false;
    const uint32_t uid = uids_[next_++];
    item->position = display_ + " UID " + std::to_string(uid);
    {
      std::lock_guard<std::mutex> lock(mu_);
      given_.push_back(uid);
    }
    bool reconnected = false, too_big = false;
    auto raw = reader_->Fetch(uid, max_bytes_, &reconnected, &too_big);
    if (reconnected) KEYONCE_RETURN_IF_ERROR(Reopen(uid));
    if (!raw.ok()) {
      if (!too_big) return raw.status().Wrap("fetching UID " + std::to_string(uid));
      // The aborted transfer closed the connection: the folder is opened
      // read-only again before the next fetch.
      KEYONCE_RETURN_IF_ERROR(reader_->Examine(nullptr));
      item->rejected = true;
      item->reason = "the mail (UID " + std::to_string(uid) + " in " + display_ +
                     ") is larger than max_message_bytes (" + std::to_string(max_bytes_) +
                     " bytes); open it in a mail program";
      return true;
    }
    auto mail = ParseMail(*raw);
    if (!mail.ok()) {
      item->rejected = true;
      item->reason = mail.status().message() + " (UID " + std::to_string(uid) + ")";
      return true;
    }
    Record r(item->storage);
    r["uid"] = uid;
    r["uidvalidity"] = uidvalidity_;
    r["message_id"] = mail->message_id.empty() ? HeaderId(*raw) : mail->message_id;
    r["from"] = mail->from;
    r["from_name"] = mail->from_name;
    r["to"] = StringList(mail->to, item->storage);
    r["cc"] = StringList(mail->cc, item->storage);
    r["reply_to"] = StringList(mail->reply_to, item->storage);
    r["subject"] = mail->subject;
    if (mail->date.empty()) {
      r["date"] = nullptr;
    } else {
      r["date"] = mail->date;
    }
    r["text"] = mail->text;
    if (mail->html.empty()) {
      r["html"] = nullptr;
    } else {
      r["html"] = mail->html;
    }
    boost::json::array files(item->storage);
    for (size_t i = 0; i < mail->attachments.size(); ++i) {
      auto& a = mail->attachments[i];
      boost::json::object f(item->storage);
      f["name"] = a.name;
      f["content_type"] = a.content_type;
      f["size"] = static_cast<int64_t>(a.data.size());
      if (attachments_to_.empty()) {
        f["path"] = nullptr;
      } else {
        auto path = Save(uid, i + 1, a);
        if (!path.ok()) return path.status();
        f["path"] = path->string();
      }
      files.push_back(std::move(f));
    }
    r["attachments"] = std::move(files);
    item->SetRecord(std::move(r));
    return true;
  }

  Status Acknowledge(uint64_t items, bool /*end*/) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (items <= acked_) return Status::OK();
    std::vector<uint32_t> uids;
    while (acked_ < items && !given_.empty()) {
      uids.push_back(given_.front());
      given_.pop_front();
      ++acked_;
    }
    if (uids.empty() || after_ == "leave") return Status::OK();
    std::sort(uids.begin(), uids.end());
    const std::string set = UidSet(uids);
    if (after_ == "move") return marker_->Move(set, move_to_);
    return marker_->Store(set, true, after_ == "flag" ? flag_ : "\\Seen");
  }

  Status Close() override {
    reader_.reset();
    std::lock_guard<std::mutex> lock(mu_);
    marker_.reset();
    return Status::OK();
  }

 private:
  Result<std::string> Criteria(const Scope& scope) {
    const std::string& w = settings_.where;
    std::string c;
    auto add = [&](const std::string& part) { c += (c.empty() ? "" : " ") + part; };
    const Value* raw = settings_.Raw("search");
    const boost::json::object* search = raw && raw->is_object() ? &raw->get_object() : nullptr;
    bool unseen = true;
    if (search) {
      if (auto* u = search->if_contains("unseen"); u && u->is_bool()) unseen = u->as_bool();
    }
    if (unseen) add("UNSEEN");
    if (after_ == "flag") add("UNKEYWORD " + flag_);  // checked by MakeSource (CheckFlag)
    // search.<key> rendered against the run's scope; "" when absent.
    auto text = [&](const char* key) -> Result<std::string> {
      const Value* v = search ? search->if_contains(key) : nullptr;
      if (!v || v->is_null()) return std::string();
      TemplateError err;
      auto t = Template::Compile(ToText(*v), TemplateContext::kText, &err);
      if (!t) return Status::Invalid(w + ": search." + key + ": " + err.message);
      auto r = t->Render(scope);
      if (!r.ok()) return r.status().Wrap(w + ": rendering search." + key);
      return std::move(r).value();
    };
    static const std::pair<const char*, const char*> kText[] = {
        {"from", "FROM"}, {"to", "TO"}, {"subject", "SUBJECT"}, {"body", "BODY"}};
    bool ascii = true;
    for (const auto& [key, imap_key] : kText) {
      auto v = text(key);
      if (!v.ok()) return v.status();
      if (v->empty()) continue;
      auto q = Quoted(*v, "search." + std::string(key));
      if (!q.ok()) return q.status().Wrap(w);
      ascii = ascii && IsAscii(*v);
      add(std::string(imap_key) + " " + *q);
    }
    auto since = text("since");
    if (!since.ok()) return since.status();
    if (!since->empty()) {
      auto d = ImapDate(*since, w);
      if (!d.ok()) return d.status();
      add("SINCE " + *d);
    }
    if (c.empty()) c = "ALL";
    return ascii ? c : "CHARSET UTF-8 " + c;
  }

  // The fetch ran on a new connection, in a folder open for writing: the
  // folder is opened read-only again, and a mail that was unseen loses the
  // \Seen the fetch gave it (else a crash now would leave it marked read
  // and unread by keyonce).
  Status Reopen(uint32_t uid) {
    KEYONCE_RETURN_IF_ERROR(reader_->Examine(nullptr));
    if (!unseen_search_) return Status::OK();
    std::lock_guard<std::mutex> lock(mu_);
    return marker_->Store(std::to_string(uid), false, "\\Seen");
  }

  Result<fs::path> Save(uint32_t uid, size_t n, const MailAttachment& a) {
    std::error_code ec;
    if (!made_dir_) {
      fs::create_directories(attachments_to_, ec);
      if (ec) {
        return Status::Io("creating " + attachments_to_.string() + ": " + ec.message());
      }
      ::chmod(attachments_to_.c_str(), 0700);
      made_dir_ = true;
    }
    std::string ext = SafeExtension(a.name);
    fs::path path = attachments_to_ / (std::to_string(uidvalidity_) + "-" + std::to_string(uid) +
                                       "-" + std::to_string(n) + (ext.empty() ? "" : "." + ext));
    const fs::path part = path.string() + ".part";
    {
      std::ofstream out(part, std::ios::binary | std::ios::trunc);
      ::chmod(part.c_str(), 0600);
      out.write(a.data.data(), static_cast<std::streamsize>(a.data.size()));
      if (!out) return Status::Io("saving an attachment in " + attachments_to_.string());
    }
    fs::rename(part, path, ec);
    if (ec) return Status::Io("saving an attachment in " + attachments_to_.string());
    return path;
  }

  Settings settings_;
  std::string after_, flag_, move_to_, display_;
  fs::path attachments_to_;
  bool made_dir_ = false;
  size_t max_bytes_ = 32 << 20;
  int64_t max_messages_ = 0;
  bool unseen_search_ = true;
  uint64_t uidvalidity_ = 0;
  std::unique_ptr<Session> reader_;
  std::vector<uint32_t> uids_;
  size_t next_ = 0;
  std::mutex mu_;  // given_, acked_ and marker_: Acknowledge runs on another thread
  std::unique_ptr<Session> marker_;
  std::deque<uint32_t> given_;
  uint64_t acked_ = 0;
};

// The keyword after_read: flag sets: an IMAP atom we can send as it is.
Status CheckFlag(const Settings& settings) {
  const std::string flag = settings.String("flag").value_or("$Keyonce");
  if (flag.empty()) return Status::Invalid(settings.where + ": flag is empty");
  for (char ch : flag) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '$' && ch != '_') {
      return Status::Invalid(settings.where + ": flag '" + flag +
                             "' may hold only letters, digits, $ and _");
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  const std::string& w = settings.where;
  // What the recipe writes of the URL is checked; a URL from params is
  // checked by libcurl when the run connects.
  if (const Template* url = settings.Tmpl("url"); url && url->source().rfind("{{", 0) != 0) {
    const std::string& u = url->source();
    if (u.rfind("imaps://", 0) != 0 && u.rfind("imap://", 0) != 0) {
      return Status::Invalid(w + ": url must start with imaps:// or imap://");
    }
    size_t host = u.find("://") + 3;
    size_t slash = u.find('/', host);
    if (u.substr(host, slash == std::string::npos ? std::string::npos : slash - host).find('@') !=
        std::string::npos) {
      return Status::Invalid(w +
                             ": url must not hold a user name or password; use username "
                             "and password (from secrets) or auth");
    }
    if (slash != std::string::npos && slash + 1 < u.size()) {
      return Status::Invalid(w + ": url names only the server; give the folder as folder");
    }
  }
  if (settings.Tmpl("password") && HasAuth(settings)) {
    return Status::Invalid(w + ": give either password or auth, not both");
  }
  if (!settings.Tmpl("password") && !HasAuth(settings)) {
    return Status::Invalid(w + ": the mailbox needs password (from secrets) or auth (OAuth2)");
  }
  if (HasAuth(settings)) {
    auto a = net::ReadAuth(settings, "auth");
    if (!a.ok()) return a.status();
    if (a->type != net::AuthType::kOAuth2ClientCredentials &&
        a->type != net::AuthType::kOAuth2Password && a->type != net::AuthType::kBearer) {
      return Status::Invalid(w +
                             ": auth.type must be oauth2_client_credentials, oauth2_password "
                             "or bearer for a mailbox (XOAUTH2); a password goes in password");
    }
  }
  const std::string after = settings.String("after_read").value_or("seen");
  if (after == "move" && !settings.Tmpl("move_to")) {
    return Status::Invalid(w + ": after_read: move needs move_to (the folder to move mails to)");
  }
  if (after != "move" && settings.Tmpl("move_to")) {
    return Status::Invalid(w + ": move_to is set but after_read is not move");
  }
  KEYONCE_RETURN_IF_ERROR(CheckFlag(settings));
  if (settings.Int("max_message_bytes").value_or(1) < 1) {
    return Status::Invalid(w + ": max_message_bytes must be at least 1");
  }
  Status ts = net::CheckTransferSettings(settings);
  if (!ts.ok()) return ts.Wrap(w);
  return std::unique_ptr<Source>(new ImapSource(settings));
}

}  // namespace

ConnectorDef ImapConnector() {
  ConnectorDef def;
  def.name = "imap";
  def.summary = "A mailbox folder over IMAP: one record per mail, attachments saved as files.";
  def.source = SourceSpec();
  def.make_source = MakeSource;
  return def;
}

}  // namespace keyonce::connectors::imap

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::imap::ImapConnector());
