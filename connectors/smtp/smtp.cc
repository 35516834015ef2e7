// The `smtp` connector: a target that sends one mail per record through an
// SMTP server (libcurl's SMTP with curl_mime for the MIME structure).
//
// Nothing lost, nothing twice: a mail cannot be taken back or looked up, so
// the target is not idempotent and Recover answers "cannot tell": records of
// an interrupted batch are in doubt and the recipe's in_doubt policy decides.
// Each mail carries a Message-ID derived from the run id and a keyed hash of
// the record key (never the key), the same for every attempt of a record in
// a run, so a receiving system can drop a duplicate of a retried send.
//
// Error classes: SMTP 4xx replies (451 mailbox busy, 452 ...) and connection
// problems are transient; 5xx replies (550 unknown recipient, 554, 535 login
// refused) are permanent; a rendered header value holding a line break
// (header injection) is permanent for that record.
//
// A target instance also works on its own, without the journal: make_target,
// Open, one Write, Close (the engine's run-summary mail uses it that way).
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <array>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/common/net/transfer.h"
#include "connectors/smtp/mail_text.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::smtp {
namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------ settings

FieldSpec Secret(FieldSpec f) {
  f.secret = true;
  return f;
}

std::vector<FieldSpec> TargetFields() {
  std::vector<FieldSpec> fields = {
      FieldSpec::Tmpl("url", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Required()
          .Describe(
              "The mail server: smtp://host:port (587 or 25; see starttls) or smtps://host:port "
              "(TLS from the first byte, usually 465). No user name or password in the URL: use "
              "username and password.")
          .Example("smtp://mail.kommune.dk:587"),
      FieldSpec::Enum("starttls", {"required", "optional", "off"})
          .Default("required")
          .Describe(
              "For smtp:// URLs: required: switch to TLS with STARTTLS before logging in or "
              "sending, and fail if the server cannot; optional: use STARTTLS when offered; off: "
              "send in clear text (only for a relay on the same machine). smtps:// always uses "
              "TLS.")
          .Example("required"),
      FieldSpec::Tmpl("username", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Describe("User name to log in with (SMTP AUTH). Absent: no login.")
          .Example("\"{{ params.mail_user }}\""),
      Secret(FieldSpec::Tmpl("password", TemplateContext::kText)
                 .Roots(kRootsStatic)
                 .Describe("Password to log in with; must come from secrets.")
                 .Example("\"{{ secrets.smtp_password }}\"")),
      FieldSpec::Tmpl("from", TemplateContext::kText)
          .Required()
          .Describe("Sender: an address or \"Name <address>\". The name may hold any characters "
                    "(encoded for the header as needed).")
          .Example("\"Borgerservice <borgerservice@kommune.dk>\""),
      FieldSpec::Structure("to")
          .Describe("Recipients: one template or a list of them; each may give one address, "
                    "\"Name <address>\", several separated by commas, or a list. Empty entries are "
                    "left out. At least one of to, cc and bcc must give an address.")
          .Example("[\"{{ record.email }}\", \"sagsbehandler@kommune.dk\"]"),
      FieldSpec::Structure("cc")
          .Describe("Copy recipients, written like `to`.")
          .Example("\"{{ record.manager_email }}\""),
      FieldSpec::Structure("bcc")
          .Describe("Blind copy recipients, written like `to`: they get the mail but are not "
                    "named in it.")
          .Example("arkiv@kommune.dk"),
      FieldSpec::Tmpl("subject", TemplateContext::kText)
          .Required()
          .Describe("Subject line. Any characters (Danish æøå arrive intact: RFC 2047 encoding); a "
                    "value with a line break is refused for that record (it could add headers).")
          .Example("\"Sygefravær registreret for {{ record.name }}\""),
      FieldSpec::Tmpl("body", TemplateContext::kText)
          .Required()
          .Describe("The mail's text (text/plain, UTF-8).")
          .Example("\"Hej {{ record.name }}\\n\\nDit fravær fra {{ record.from_date }} er "
                   "registreret.\\n\""),
      FieldSpec::Tmpl("html", TemplateContext::kXml)
          .Describe(
              "An HTML version of the mail, sent beside `body` (multipart/alternative). Values "
              "are HTML-escaped.")
          .Example("\"<p>Hej {{ record.name }}</p>\""),
      FieldSpec::ObjectList(
          "attachments",
          {
              FieldSpec::Tmpl("path", TemplateContext::kText)
                  .Required()
                  .Describe("File to attach (template; relative to the recipe's folder). It is "
                            "read when the mail is sent, streamed.")
                  .Example("\"out/quarantine-{{ run.id }}.csv\""),
              FieldSpec::Tmpl("name", TemplateContext::kText)
                  .Describe("File name the recipient sees. Default: the file's own name.")
                  .Example("\"afvist.csv\""),
              FieldSpec::String("content_type")
                  .Describe("MIME type. Default: from the file name's extension (csv, pdf, "
                            "txt, json, xlsx, ...), else application/octet-stream.")
                  .Example("text/csv"),
              FieldSpec::Bool("optional")
                  .Default("false")
                  .Describe("true: a missing file is left out; false: a missing file fails "
                            "the record (permanent).")
                  .Example("true"),
          })
          .Describe("Files to attach, each a mapping: path (required; a template, relative to "
                    "the recipe's folder; read when the mail is sent), name (what the recipient "
                    "sees; default the file's name), content_type (default from the extension) "
                    "and optional (true: a missing file is left out; default false: a missing "
                    "file fails the record).")
          .Example("[{path: \"out/afvist.csv\", name: \"afvist.csv\", optional: true}]"),
  };
  for (auto& f : net::TimeoutFields()) {
    if (f.name != "max_reply_bytes") fields.push_back(std::move(f));
  }
  for (auto& f : net::TlsFields()) fields.push_back(std::move(f));
  return fields;
}

ComponentSpec TargetSpec() {
  ComponentSpec spec;
  spec.summary =
      "Sends one mail per record (text, optional HTML, attachments) through an SMTP server. "
      "4xx replies are retried, 5xx replies (e.g. 550 unknown recipient) quarantine the "
      "record. A sent mail cannot be checked afterwards: after a crash its records are in "
      "doubt. Each mail has a Message-ID made from the run and a keyed hash of the record key "
      "(the same for retries within a run); the reply {message_id} can be captured.";
  spec.fields = TargetFields();
  spec.example_yaml =
      "- name: notify\n"
      "  type: smtp\n"
      "  url: smtp://mail.kommune.dk:587\n"
      "  starttls: required\n"
      "  username: keyonce\n"
      "  password: \"{{ secrets.smtp_password }}\"\n"
      "  from: \"Løn <loen@kommune.dk>\"\n"
      "  to: \"{{ record.email }}\"\n"
      "  subject: \"Fravær registreret: {{ record.from_date }}\"\n"
      "  body: |\n"
      "    Hej {{ record.name }}\n"
      "\n"
      "    Dit fravær fra {{ record.from_date }} er registreret i lønsystemet.\n";
  return spec;
}

// ------------------------------------------------------------ the target

struct AttachmentSpec {
  Template path;
  std::optional<Template> name;
  std::string content_type;
  bool optional = false;
  std::string path_source;  // the template text, for messages (never the rendered path)
};

struct Attachment {
  std::string path, name, content_type;
};

struct Mail {
  MailAddress from;
  std::vector<MailAddress> to, cc, bcc;
  std::string subject, body, html;
  bool has_html = false;
  std::vector<Attachment> attachments;
};

std::optional<Template> CompileOrNull(const std::string& text, TemplateContext c,
                                      std::string* error) {
  TemplateError err;
  auto t = Template::Compile(text, c, &err);
  if (!t) *error = err.message + " (at offset " + std::to_string(err.offset) + ")";
  return t;
}

Result<std::vector<AttachmentSpec>> ReadAttachments(const Settings& settings) {
  std::vector<AttachmentSpec> out;
  const Value* raw = settings.Raw("attachments");
  if (!raw || raw->is_null()) return out;
  if (!raw->is_array()) return Status::Invalid(settings.where + ": attachments must be a list");
  size_t i = 0;
  for (const Value& v : raw->get_array()) {
    const std::string where = settings.where + ": attachments[" + std::to_string(i++) + "]";
    if (!v.is_object()) return Status::Invalid(where + " must be a mapping with a path");
    AttachmentSpec a;
    bool has_path = false;
    for (const auto& kv : v.get_object()) {
      const std::string key(kv.key());
      auto text = [&]() -> Result<std::string> {
        if (!kv.value().is_string()) return Status::Invalid(where + "." + key + " must be text");
        return std::string(kv.value().get_string());
      };
      if (key == "path" || key == "name") {
        auto t = text();
        if (!t.ok()) return t.status();
        std::string error;
        auto tmpl = CompileOrNull(*t, TemplateContext::kText, &error);
        if (!tmpl) return Status::Invalid(where + "." + key + ": " + error);
        if (key == "path") {
          a.path = std::move(*tmpl);
          a.path_source = *t;
          has_path = true;
        } else {
          a.name = std::move(tmpl);
        }
      } else if (key == "content_type") {
        auto t = text();
        if (!t.ok()) return t.status();
        if (HasControlCharacter(*t) || t->find('/') == std::string::npos) {
          return Status::Invalid(where + ".content_type must look like type/subtype");
        }
        a.content_type = *t;
      } else if (key == "optional") {
        if (!kv.value().is_bool())
          return Status::Invalid(where + ".optional must be true or false");
        a.optional = kv.value().get_bool();
      } else {
        return Status::Invalid(where + ": unknown key '" + key +
                               "' (known: path, name, content_type, optional)");
      }
    }
    if (!has_path) return Status::Invalid(where + ": missing required key 'path'");
    out.push_back(std::move(a));
  }
  return out;
}

// Owns what one curl transfer needs and frees it afterwards.
struct SendParts {
  curl_slist* rcpt = nullptr;
  curl_slist* headers = nullptr;
  curl_mime* mime = nullptr;
  ~SendParts() {
    curl_slist_free_all(rcpt);
    curl_slist_free_all(headers);
    curl_mime_free(mime);
  }
};

class SmtpTarget : public Target {
 public:
  SmtpTarget(Settings settings, std::vector<AttachmentSpec> attachments)
      : settings_(std::move(settings)), attachments_(std::move(attachments)) {}
  ~SmtpTarget() override {
    if (easy_) curl_easy_cleanup(easy_);
  }

  TargetTraits Traits() const override { return TargetTraits{}; }  // not idempotent

  Status Open(const RunContext& ctx) override {
    auto url = RenderStatic("url", ctx.scope);
    if (!url.ok()) return url.status();
    url_ = *url;
    if (url_.rfind("smtp://", 0) != 0 && url_.rfind("smtps://", 0) != 0) {
      return Status::Invalid(settings_.where + ": url must start with smtp:// or smtps://");
    }
    auto transfer = net::ReadTransferOptions(settings_, ctx);
    if (!transfer.ok()) return transfer.status().Wrap(settings_.where);
    std::string username, password;
    if (settings_.Tmpl("username")) {
      auto u = RenderStatic("username", ctx.scope);
      if (!u.ok()) return u.status();
      username = *u;
    }
    if (settings_.Tmpl("password")) {
      auto p = RenderStatic("password", ctx.scope);
      if (!p.ok()) return p.status();
      password = *p;
      if (ctx.log && !password.empty()) ctx.log->AddSecret(password);
    }
    if (!password.empty() && username.empty()) {
      return Status::Invalid(settings_.where + ": password is set but username is not");
    }

    if (easy_) curl_easy_cleanup(easy_);
    easy_ = curl_easy_init();
    if (!easy_) return Status::Internal("smtp target: curl_easy_init failed");
    net::ConfigureEasy(easy_, *transfer, errbuf_);
    curl_easy_setopt(easy_, CURLOPT_URL, url_.c_str());
    const std::string starttls = settings_.String("starttls").value_or("required");
    long use_ssl = starttls == "off"        ? CURLUSESSL_NONE
                   : starttls == "optional" ? CURLUSESSL_TRY
                                            : CURLUSESSL_ALL;
    curl_easy_setopt(easy_, CURLOPT_USE_SSL, use_ssl);
    if (!username.empty()) {
      curl_easy_setopt(easy_, CURLOPT_USERNAME, username.c_str());
      curl_easy_setopt(easy_, CURLOPT_PASSWORD, password.c_str());
    }
    // The key of the Message-ID hash lives only in memory for this run: the
    // id tells a receiver nothing about the record key.
    if (RAND_bytes(hash_key_.data(), static_cast<int>(hash_key_.size())) != 1) {
      return Status::Internal("smtp target: no random bytes for the Message-ID key");
    }
    run_id_ = ctx.run_id.empty() ? "0" : ctx.run_id;
    return Status::OK();
  }

  Result<Value> Render(const WriteOp& op) override {
    auto mail = RenderMail(op, /*check_files=*/false);
    if (!mail.ok()) return mail.status();
    boost::json::object o;
    o["from"] = FormatAddress(mail->from);
    auto list = [](const std::vector<MailAddress>& v) {
      boost::json::array a;
      for (const auto& m : v) a.emplace_back(FormatAddress(m));
      return a;
    };
    o["to"] = list(mail->to);
    if (!mail->cc.empty()) o["cc"] = list(mail->cc);
    if (!mail->bcc.empty()) o["bcc"] = list(mail->bcc);
    o["subject"] = mail->subject;
    o["body"] = mail->body;
    if (mail->has_html) o["html"] = mail->html;
    boost::json::array names;
    for (const auto& a : mail->attachments) names.emplace_back(a.name);
    o["attachments"] = std::move(names);
    return Value(std::move(o));
  }

  WriteResult Write(const WriteOp& op) override {
    WriteResult r;
    if (!easy_) {
      r.status = Status::Internal("smtp target: Write before Open");
      return r;
    }
    auto mail = RenderMail(op, /*check_files=*/true);
    if (!mail.ok()) {
      r.status = mail.status();
      return r;
    }
    std::string message_id = MessageId(op.key, mail->from.address);
    r.status = Send(*mail, message_id);
    if (r.status.ok()) {
      boost::json::object reply;
      reply["message_id"] = message_id;
      r.reply = Value(std::move(reply));
    }
    return r;
  }

  Result<CommitResult> Commit(uint64_t /*batch*/, bool /*final*/) override {
    CommitResult c;
    c.durable = true;  // a mail is sent (or not) when Write returns
    return c;
  }

  Result<RecoverResult> Recover(const RunContext& /*ctx*/, uint64_t /*first_pending*/,
                                const std::string& /*token*/) override {
    return RecoverResult{};  // known = false: a sent mail cannot be looked up
  }

  Status Close(bool /*success*/) override {
    if (easy_) {
      curl_easy_cleanup(easy_);  // QUIT
      easy_ = nullptr;
    }
    return Status::OK();
  }

 private:
  Result<std::string> RenderStatic(const std::string& name, const Scope& scope) const {
    const Template* t = settings_.Tmpl(name);
    if (!t) return Status::Invalid(settings_.where + ": " + name + " is missing");
    auto r = t->Render(scope);
    if (!r.ok()) return r.status().Wrap(settings_.where + ": rendering " + name);
    return std::move(r).value();
  }

  Result<std::string> RenderText(const std::string& name, const Scope& scope) const {
    const Template* t = settings_.Tmpl(name);
    if (!t) return std::string();
    auto r = t->Render(scope);
    if (!r.ok()) return r.status().Wrap("rendering " + name);
    return std::move(r).value();
  }

  // Appends the addresses a recipient setting gives (string, list, nested lists).
  static Status AddRecipients(const Value& v, const std::string& setting,
                              std::vector<MailAddress>* out) {
    if (v.is_null()) return Status::OK();
    if (v.is_array()) {
      for (const Value& e : v.get_array()) KEYONCE_RETURN_IF_ERROR(AddRecipients(e, setting, out));
      return Status::OK();
    }
    if (!v.is_string()) {
      return Status::Permanent("`" + setting + "` must give text or a list of texts");
    }
    auto list = ParseAddressList(std::string_view(v.get_string()), setting);
    if (!list.ok()) return list.status();
    for (auto& a : *list) out->push_back(std::move(a));
    return Status::OK();
  }

  Result<Mail> RenderMail(const WriteOp& op, bool check_files) const {
    if (!op.scope) return Status::Internal("smtp target: write without a scope");
    const Scope& scope = *op.scope;
    Mail m;
    auto from = RenderText("from", scope);
    if (!from.ok()) return from.status();
    auto froms = ParseAddressList(*from, "from");
    if (!froms.ok()) return froms.status();
    if (froms->size() != 1) return Status::Permanent("`from` must give exactly one address");
    m.from = std::move(froms->front());
    for (auto [name, list] :
         {std::pair{"to", &m.to}, std::pair{"cc", &m.cc}, std::pair{"bcc", &m.bcc}}) {
      const StructureTemplate* st = settings_.Structure(name);
      if (!st) continue;
      auto v = st->Evaluate(scope);
      if (!v.ok()) return v.status().Wrap(std::string("rendering ") + name);
      KEYONCE_RETURN_IF_ERROR(AddRecipients(*v, name, list));
    }
    if (m.to.empty() && m.cc.empty() && m.bcc.empty()) {
      return Status::Permanent("the mail has no recipient (to, cc and bcc gave no address)");
    }
    auto subject = RenderText("subject", scope);
    if (!subject.ok()) return subject.status();
    if (HasControlCharacter(*subject)) {
      return Status::Permanent(
          "`subject` holds a line break or control character (refused: it could add headers "
          "to the mail)");
    }
    m.subject = std::move(subject).value();
    auto body = RenderText("body", scope);
    if (!body.ok()) return body.status();
    m.body = std::move(body).value();
    if (settings_.Tmpl("html")) {
      auto html = RenderText("html", scope);
      if (!html.ok()) return html.status();
      m.html = std::move(html).value();
      m.has_html = true;
    }
    for (size_t i = 0; i < attachments_.size(); ++i) {
      const AttachmentSpec& spec = attachments_[i];
      const std::string what =
          "attachment " + std::to_string(i + 1) + " ('" + spec.path_source + "')";
      auto path_text = spec.path.Render(scope);
      if (!path_text.ok()) return path_text.status().Wrap("rendering the path of " + what);
      if (path_text->empty()) return Status::Permanent("the path of " + what + " is empty");
      fs::path path(*path_text);
      if (path.is_relative()) path = settings_.base_dir / path;
      Attachment a;
      a.path = path.lexically_normal().string();
      if (spec.name) {
        auto name = spec.name->Render(scope);
        if (!name.ok()) return name.status().Wrap("rendering the name of " + what);
        a.name = std::move(name).value();
      }
      if (a.name.empty()) a.name = path.filename().string();
      if (HasControlCharacter(a.name)) {
        return Status::Permanent("the name of " + what +
                                 " holds a line break or control character (refused)");
      }
      a.content_type = spec.content_type.empty() ? GuessContentType(a.name) : spec.content_type;
      if (check_files) {
        struct stat st;
        if (::stat(a.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
          if (spec.optional) continue;
          return Status::Permanent("the file of " + what + " does not exist or is not a file");
        }
      }
      m.attachments.push_back(std::move(a));
    }
    return m;
  }

  // <keyonce.r<run>.<32 hex of HMAC-SHA256(run key, record key)>@<sender's domain>>
  std::string MessageId(const std::string& key, const std::string& from_address) const {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), hash_key_.data(), static_cast<int>(hash_key_.size()),
         reinterpret_cast<const unsigned char*>(key.data()), key.size(), mac, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len && i < 16; ++i) {
      hex += kHex[mac[i] >> 4];
      hex += kHex[mac[i] & 15];
    }
    std::string domain = from_address.substr(from_address.rfind('@') + 1);
    std::string run;
    for (char c : run_id_) run += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    return "<keyonce.r" + run + "." + hex + "@" + domain + ">";
  }

  Status Send(const Mail& m, const std::string& message_id) {
    SendParts parts;
    for (const auto* list : {&m.to, &m.cc, &m.bcc}) {
      for (const auto& a : *list)
        parts.rcpt = curl_slist_append(parts.rcpt, ("<" + a.address + ">").c_str());
    }
    auto join = [](const std::vector<MailAddress>& v) {
      std::string s;
      for (const auto& a : v) s += (s.empty() ? "" : ",\r\n ") + FormatAddress(a);
      return s;
    };
    std::vector<std::string> headers = {
        "Date: " + MailDate(std::time(nullptr)),
        "From: " + FormatAddress(m.from),
        m.to.empty() ? "To: undisclosed-recipients:;" : "To: " + join(m.to),
    };
    if (!m.cc.empty()) headers.push_back("Cc: " + join(m.cc));
    headers.push_back("Subject: " + EncodeHeaderText(m.subject));
    headers.push_back("Message-ID: " + message_id);
    for (const auto& h : headers) parts.headers = curl_slist_append(parts.headers, h.c_str());

    parts.mime = curl_mime_init(easy_);
    curl_mimepart* part = curl_mime_addpart(parts.mime);
    const std::string text = ToCrlf(m.body);
    if (m.has_html) {
      curl_mime* alt = curl_mime_init(easy_);
      curl_mimepart* p = curl_mime_addpart(alt);
      curl_mime_data(p, text.data(), text.size());
      curl_mime_type(p, "text/plain; charset=utf-8");
      curl_mime_encoder(p, "quoted-printable");
      const std::string html = ToCrlf(m.html);
      p = curl_mime_addpart(alt);
      curl_mime_data(p, html.data(), html.size());
      curl_mime_type(p, "text/html; charset=utf-8");
      curl_mime_encoder(p, "quoted-printable");
      curl_mime_subparts(part, alt);  // part owns alt now
      curl_mime_type(part, "multipart/alternative");
    } else {
      curl_mime_data(part, text.data(), text.size());
      curl_mime_type(part, "text/plain; charset=utf-8");
      curl_mime_encoder(part, "quoted-printable");
    }
    for (const auto& a : m.attachments) {
      curl_mimepart* p = curl_mime_addpart(parts.mime);
      if (curl_mime_filedata(p, a.path.c_str()) != CURLE_OK) {
        return Status::Permanent("attaching '" + a.name + "': the file cannot be read");
      }
      // Our own Content-Disposition (curl would write a non-ASCII name raw).
      curl_slist* disposition = curl_slist_append(nullptr, AttachmentDisposition(a.name).c_str());
      curl_mime_headers(p, disposition, /*take_ownership=*/1);
      curl_mime_type(p, a.content_type.c_str());
      curl_mime_encoder(p, "base64");
    }

    curl_easy_setopt(easy_, CURLOPT_MAIL_FROM, ("<" + m.from.address + ">").c_str());
    curl_easy_setopt(easy_, CURLOPT_MAIL_RCPT, parts.rcpt);
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, parts.headers);
    curl_easy_setopt(easy_, CURLOPT_MIMEPOST, parts.mime);
    errbuf_[0] = '\0';
    CURLcode rc = curl_easy_perform(easy_);
    long reply = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &reply);
    // Nothing of this mail may outlive `parts`.
    curl_easy_setopt(easy_, CURLOPT_MIMEPOST, nullptr);
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(easy_, CURLOPT_MAIL_RCPT, nullptr);
    if (rc == CURLE_OK) return Status::OK();
    return Classify(rc, reply);
  }

  Status Classify(CURLcode rc, long reply) const {
    std::string detail = errbuf_[0] ? std::string(errbuf_) : curl_easy_strerror(rc);
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
    detail = net::Excerpt(detail, 200);
    const std::string where = "sending mail via " + net::SafeUrl(url_) + ": ";
    if (reply >= 400 && reply < 500) {
      return Status::Transient(where + detail + " (SMTP " + std::to_string(reply) +
                               ": a temporary refusal, tried again later)");
    }
    if (reply >= 500 && reply < 600) {
      return Status::Permanent(where + detail + " (SMTP " + std::to_string(reply) +
                               ": refused, not tried again)");
    }
    return net::CurlStatus(rc, errbuf_, url_).Wrap("sending mail");
  }

  Settings settings_;
  std::vector<AttachmentSpec> attachments_;
  std::string url_;
  std::string run_id_;
  std::array<unsigned char, 32> hash_key_{};
  CURL* easy_ = nullptr;
  char errbuf_[CURL_ERROR_SIZE] = {};
};

Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings) {
  const Template* url = settings.Tmpl("url");
  if (url && url->IsConstant()) {
    const std::string& u = url->source();
    if (u.rfind("smtp://", 0) != 0 && u.rfind("smtps://", 0) != 0) {
      return Status::Invalid(settings.where + ": url must start with smtp:// or smtps://");
    }
  }
  if (url) {
    const std::string& u = url->source();
    size_t scheme = u.find("://");
    size_t at = u.find('@', scheme == std::string::npos ? 0 : scheme + 3);
    size_t slash = u.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (scheme != std::string::npos && at != std::string::npos &&
        (slash == std::string::npos || at < slash)) {
      return Status::Invalid(settings.where +
                             ": url must not hold a user name or password; use username and "
                             "password (from secrets)");
    }
  }
  if (settings.Tmpl("password") && !settings.Tmpl("username")) {
    return Status::Invalid(settings.where + ": password is set but username is not");
  }
  Status ts = net::CheckTransferSettings(settings);
  if (!ts.ok()) return ts.Wrap(settings.where);
  auto attachments = ReadAttachments(settings);
  if (!attachments.ok()) return attachments.status();
  return std::unique_ptr<Target>(new SmtpTarget(settings, std::move(attachments).value()));
}

}  // namespace

ConnectorDef SmtpConnector() {
  ConnectorDef def;
  def.name = "smtp";
  def.summary = "Mail through an SMTP server: one mail per record.";
  def.target = TargetSpec();
  def.make_target = MakeTarget;
  return def;
}

}  // namespace keyonce::connectors::smtp

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::smtp::SmtpConnector());
