// The smtp target against a real SMTP server (npm smtp-server + mailparser,
// tests/servers/mail/server.js) on loopback, and an end-to-end run of the
// keyonce binary reading a CSV from a real sshd (SFTP) and mailing each row.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>

#include "keyonce/connector.h"
#include "keyonce/testing.h"
#include "tests/cli_util.h"
#include "tests/support/mail_server.h"
#include "tests/support/sshd.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;
namespace tu = testing_util;

constexpr const char* kPassword = "s3cret-smtp-pässword";

class NullLog : public Log {
 public:
  void Info(const std::string&) override {}
  void Warn(const std::string&) override {}
  void AddSecret(const std::string& v) override { secrets.push_back(v); }
  std::vector<std::string> secrets;
};

std::string Str(const boost::json::value& v, const char* key) {
  const auto* p = v.as_object().if_contains(key);
  return p && p->is_string() ? std::string(p->get_string()) : std::string();
}

std::string Decode64(const std::string& b64) {
  std::string out(b64.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return "";
  size_t pad = 0;
  while (pad < b64.size() && b64[b64.size() - 1 - pad] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// One smtp target made from a recipe's YAML (the real loader and validator),
// opened with a scope holding the test secrets.
class MailTarget {
 public:
  MailTarget(const fs::path& dir, const std::string& target_yaml) {
    std::string text =
        "recipe: mail-test\n"
        "secrets:\n"
        "  smtp_password: {env: KEYONCE_TEST_SMTP_PASSWORD}\n"
        "source: {type: csv, path: in.csv}\n"
        "key: \"{{ record.id }}\"\n"
        "targets:\n"
        "  - name: mail\n"
        "    type: smtp\n" +
        target_yaml;
    auto made = testing::TargetFromRecipe(text, dir, "mail-test.yaml");
    if (!made.ok()) {
      load_errors_ = made.status().ToString();
      return;
    }
    recipe_ = std::move(made->recipe);
    target_ = std::move(made->target);
    boost::json::object secrets;
    secrets["smtp_password"] = kPassword;
    secrets_ = std::move(secrets);
    run_ = boost::json::object{{"id", "7"}, {"recipe", "mail-test"}};
    ctx_.recipe = "mail-test";
    ctx_.run_id = "7";
    ctx_.target_name = "mail";
    ctx_.scope.secrets = &secrets_;
    ctx_.scope.run = &run_;
    ctx_.log = &log_;
  }

  const std::string& load_errors() const { return load_errors_; }
  Target* operator->() { return target_.get(); }
  bool made() const { return target_ != nullptr; }
  Status Open() { return target_->Open(ctx_); }

  WriteResult Write(const boost::json::object& record, const std::string& key = "k1") {
    record_ = record;
    WriteOp op;
    op.record = &record_.as_object();
    op.key = key;
    op.batch = 1;
    scope_ = ctx_.scope;
    scope_.record = &record_;
    op.scope = &scope_;
    return target_->Write(op);
  }
  Result<Value> Render(const boost::json::object& record) {
    record_ = record;
    WriteOp op;
    op.record = &record_.as_object();
    op.key = "k1";
    scope_ = ctx_.scope;
    scope_.record = &record_;
    op.scope = &scope_;
    return target_->Render(op);
  }
  NullLog& log() { return log_; }

 private:
  std::shared_ptr<const void> recipe_;  // what the target was made from
  std::unique_ptr<Target> target_;
  std::string load_errors_;
  Value secrets_, run_, record_;
  Scope scope_;
  RunContext ctx_;
  NullLog log_;
};

class SmtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keyonce-smtp-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    server_.Stop();
    if (!HasFailure()) fs::remove_all(dir_);
  }
  void StartServer(const tu::MailServer::Options& options = {}) {
    std::string why;
    ASSERT_TRUE(server_.Start(dir_ / "server", options, &why)) << why;
  }
  std::string Plain() const { return "    url: " + server_.url() + "\n    starttls: \"off\"\n"; }

  fs::path dir_;
  tu::MailServer server_;
};

TEST_F(SmtpTest, DanishSubjectAndBodyArriveIntact) {
  StartServer();
  MailTarget t(
      dir_,
      Plain() +
          "    from: \"Løn og Personale <loen@kommune.dk>\"\n"
          "    to: \"{{ record.name }} <{{ record.email }}>\"\n"
          "    cc: [\"leder@kommune.dk\", \"\"]\n"
          "    bcc: arkiv@kommune.dk\n"
          "    subject: \"Sygefravær for {{ record.name }}: æøå ÆØÅ\"\n"
          "    body: \"Hej {{ record.name }}\\n\\nDit fravær er registreret.\\n.\\nHilsen\\n\"\n");
  ASSERT_TRUE(t.made()) << t.load_errors();
  ASSERT_TRUE(t.Open().ok());
  auto r =
      t.Write({{"id", "1"}, {"name", "Søren Ørsted"}, {"email", "soren@borger.dk"}}, "0101851233");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(t->Close(true).ok());

  auto mails = server_.WaitForMessages(1);
  ASSERT_EQ(mails.size(), 1u) << server_.Log();
  const auto& m = mails[0];
  EXPECT_EQ(Str(m, "subject"), "Sygefravær for Søren Ørsted: æøå ÆØÅ");
  EXPECT_NE(Str(m, "rawSubject").find("=?UTF-8?B?"), std::string::npos) << Str(m, "rawSubject");
  EXPECT_EQ(Str(m, "text"), "Hej Søren Ørsted\n\nDit fravær er registreret.\n.\nHilsen\n");
  EXPECT_EQ(boost::json::serialize(m.at("from")), "[\"loen@kommune.dk\"]");
  EXPECT_EQ(boost::json::serialize(m.at("to")), "[\"soren@borger.dk\"]");
  EXPECT_EQ(boost::json::serialize(m.at("cc")), "[\"leder@kommune.dk\"]");
  // bcc gets the mail but is not named in it.
  EXPECT_EQ(boost::json::serialize(m.at("envelope").at("to")),
            "[\"soren@borger.dk\",\"leder@kommune.dk\",\"arkiv@kommune.dk\"]");
  // Message-ID: run id and a keyed hash, never the key.
  const std::string id = Str(m, "messageId");
  EXPECT_EQ(id.rfind("<keyonce.r7.", 0), 0u) << id;
  EXPECT_NE(id.find("@kommune.dk>"), std::string::npos) << id;
  EXPECT_EQ(id.find("0101851233"), std::string::npos);
  EXPECT_EQ(r.reply.as_object().at("message_id").as_string(), id);
}

TEST_F(SmtpTest, SameRecordGetsSameMessageIdWithinARun) {
  StartServer();
  MailTarget t(dir_, Plain() + "    from: a@x.dk\n    to: b@x.dk\n    subject: s\n    body: b\n");
  ASSERT_TRUE(t.made()) << t.load_errors();
  ASSERT_TRUE(t.Open().ok());
  auto a = t.Write({{"id", "1"}}, "key-1");
  auto b = t.Write({{"id", "1"}}, "key-1");
  auto c = t.Write({{"id", "2"}}, "key-2");
  ASSERT_TRUE(a.status.ok() && b.status.ok() && c.status.ok());
  EXPECT_EQ(a.reply.at("message_id"), b.reply.at("message_id"));
  EXPECT_NE(a.reply.at("message_id"), c.reply.at("message_id"));
}

TEST_F(SmtpTest, AttachmentsAndHtmlArrive) {
  StartServer();
  const std::string csv = "cpr;navn\r\nxxxxxx-xxxx;Åse Æblø\r\n";
  std::ofstream(dir_ / "afvist.csv", std::ios::binary) << csv;
  std::string binary;
  for (int i = 0; i < 3000; ++i) binary += static_cast<char>(i % 256);
  std::ofstream(dir_ / "data.bin", std::ios::binary) << binary;
  MailTarget t(dir_, Plain() +
                         "    from: a@x.dk\n    to: b@x.dk\n    subject: Rapport\n"
                         "    body: \"Se vedhæftede.\"\n"
                         "    html: \"<p>Hej {{ record.name }}</p>\"\n"
                         "    attachments:\n"
                         "      - {path: afvist.csv, name: \"Afviste rækker.csv\"}\n"
                         "      - {path: \"{{ record.file }}\", content_type: application/x-test}\n"
                         "      - {path: missing.txt, optional: true}\n");
  ASSERT_TRUE(t.made()) << t.load_errors();
  ASSERT_TRUE(t.Open().ok());
  auto r = t.Write({{"id", "1"}, {"name", "<Bo & Co>"}, {"file", "data.bin"}});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  auto mails = server_.WaitForMessages(1);
  ASSERT_EQ(mails.size(), 1u) << server_.Log();
  const auto& m = mails[0];
  EXPECT_EQ(Str(m, "text"), "Se vedhæftede.");
  EXPECT_NE(Str(m, "html").find("<p>Hej &lt;Bo &amp; Co&gt;</p>"), std::string::npos)
      << Str(m, "html");
  const auto& att = m.at("attachments").as_array();
  ASSERT_EQ(att.size(), 2u);
  EXPECT_EQ(Str(att[0], "filename"), "Afviste rækker.csv");
  EXPECT_EQ(Str(att[0], "contentType"), "text/csv");
  EXPECT_EQ(Decode64(Str(att[0], "base64")), csv);
  EXPECT_EQ(Str(att[1], "filename"), "data.bin");
  EXPECT_EQ(Str(att[1], "contentType"), "application/x-test");
  EXPECT_EQ(Decode64(Str(att[1], "base64")), binary);

  // A required attachment that is missing fails the record (permanent), naming
  // the attachment by its template, not the rendered path.
  auto missing = t.Write({{"id", "2"}, {"name", "x"}, {"file", "0101851233.pdf"}});
  EXPECT_EQ(missing.status.code(), Status::Code::kPermanent) << missing.status.ToString();
  EXPECT_NE(missing.status.message().find("{{ record.file }}"), std::string::npos);
  EXPECT_EQ(missing.status.message().find("0101851233"), std::string::npos);
}

TEST_F(SmtpTest, UnknownRecipientIsPermanentAndBusyIsTransient) {
  StartServer();
  MailTarget t(dir_, Plain() +
                         "    from: a@x.dk\n    to: \"{{ record.email }}\"\n"
                         "    subject: s\n    body: b\n");
  ASSERT_TRUE(t.made()) << t.load_errors();
  ASSERT_TRUE(t.Open().ok());
  auto unknown = t.Write({{"id", "1"}, {"email", "unknown@x.dk"}});
  EXPECT_EQ(unknown.status.code(), Status::Code::kPermanent) << unknown.status.ToString();
  EXPECT_NE(unknown.status.message().find("550"), std::string::npos) << unknown.status.message();
  EXPECT_EQ(unknown.status.message().find("unknown@x.dk"), std::string::npos);
  auto busy = t.Write({{"id", "2"}, {"email", "busy@x.dk"}});
  EXPECT_EQ(busy.status.code(), Status::Code::kTransient) << busy.status.ToString();
  EXPECT_NE(busy.status.message().find("451"), std::string::npos) << busy.status.message();
  // The connection is still usable after refusals.
  auto ok = t.Write({{"id", "3"}, {"email", "fine@x.dk"}});
  EXPECT_TRUE(ok.status.ok()) << ok.status.ToString();
  auto mails = server_.WaitForMessages(1);
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(boost::json::serialize(mails[0].at("to")), "[\"fine@x.dk\"]");
}

TEST_F(SmtpTest, HeaderInjectionIsRefused) {
  StartServer();
  MailTarget t(dir_, Plain() +
                         "    from: \"{{ record.from }}\"\n    to: \"{{ record.to }}\"\n"
                         "    subject: \"Sag {{ record.subject }}\"\n    body: b\n"
                         "    attachments: [{path: a.txt, name: \"{{ record.file }}\"}]\n");
  std::ofstream(dir_ / "a.txt") << "a";
  ASSERT_TRUE(t.made()) << t.load_errors();
  ASSERT_TRUE(t.Open().ok());
  boost::json::object good = {
      {"id", "1"}, {"from", "a@x.dk"}, {"to", "b@x.dk"}, {"subject", "1"}, {"file", "a.txt"}};
  for (const char* field : {"subject", "to", "from", "file"}) {
    boost::json::object bad = good;
    bad[field] =
        std::string(field == std::string("subject") ? "x" : "b@x.dk") + "\r\nBcc: victim@evil.dk";
    auto r = t.Write(bad);
    EXPECT_EQ(r.status.code(), Status::Code::kPermanent) << field << ": " << r.status.ToString();
    EXPECT_NE(r.status.message().find("line break"), std::string::npos) << r.status.message();
    EXPECT_EQ(r.status.message().find("victim"), std::string::npos);
  }
  ASSERT_TRUE(t.Write(good).status.ok());
  auto mails = server_.WaitForMessages(1);
  ASSERT_EQ(mails.size(), 1u);  // only the good one
  EXPECT_EQ(boost::json::serialize(mails[0].at("envelope").at("to")), "[\"b@x.dk\"]");
}

TEST_F(SmtpTest, StartTlsWithLoginAndPasswordNeverInErrors) {
  tu::MailServer::Options options;
  options.user = "keyonce";
  options.password = kPassword;
  options.starttls = true;
  options.require_tls = true;
  StartServer(options);
  const std::string common = "    url: " + server_.url() +
                             "\n    starttls: required\n    username: keyonce\n" +
                             "    ca_file: " + server_.cert().cert.string() + "\n" +
                             "    from: a@x.dk\n    to: b@x.dk\n    subject: s\n    body: b\n";
  {
    MailTarget t(dir_, common + "    password: \"{{ secrets.smtp_password }}\"\n");
    ASSERT_TRUE(t.made()) << t.load_errors();
    ASSERT_TRUE(t.Open().ok());
    EXPECT_EQ(t.log().secrets, std::vector<std::string>{kPassword});
    auto r = t.Write({{"id", "1"}});
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    auto mails = server_.WaitForMessages(1);
    ASSERT_EQ(mails.size(), 1u);
    EXPECT_EQ(mails[0].at("secure"), Value(true));
    EXPECT_EQ(Str(mails[0], "user"), "keyonce");
  }
  {  // wrong password: 535, permanent, and neither password in the message
    MailTarget t(dir_, common + "    password: \"{{ secrets.smtp_password }}x\"\n");
    ASSERT_TRUE(t.made()) << t.load_errors();
    ASSERT_TRUE(t.Open().ok());
    auto r = t.Write({{"id", "2"}});
    EXPECT_EQ(r.status.code(), Status::Code::kPermanent) << r.status.ToString();
    EXPECT_EQ(r.status.message().find("pässword"), std::string::npos) << r.status.message();
  }
  {  // a certificate nobody vouches for: permanent, clear
    MailTarget t(dir_,
                 "    url: " + server_.url() +
                     "\n    username: keyonce\n    password: \"{{ secrets.smtp_password }}\"\n"
                     "    from: a@x.dk\n    to: b@x.dk\n    subject: s\n    body: b\n");
    ASSERT_TRUE(t.made()) << t.load_errors();
    ASSERT_TRUE(t.Open().ok());
    auto r = t.Write({{"id", "3"}});
    EXPECT_EQ(r.status.code(), Status::Code::kPermanent) << r.status.ToString();
    EXPECT_NE(r.status.message().find("certificate"), std::string::npos) << r.status.message();
    EXPECT_EQ(r.status.message().find("pässword"), std::string::npos);
  }
  server_.Stop();
  {  // server gone: transient, no password
    MailTarget t(dir_, common + "    password: \"{{ secrets.smtp_password }}\"\n");
    ASSERT_TRUE(t.made()) << t.load_errors();
    ASSERT_TRUE(t.Open().ok());
    auto r = t.Write({{"id", "4"}});
    EXPECT_EQ(r.status.code(), Status::Code::kTransient) << r.status.ToString();
    EXPECT_EQ(r.status.message().find("pässword"), std::string::npos) << r.status.message();
  }
}

TEST_F(SmtpTest, StartTlsRequiredRefusesAPlainServer) {
  StartServer();  // no STARTTLS offered
  MailTarget t(dir_, "    url: " + server_.url() +
                         "\n    from: a@x.dk\n    to: b@x.dk\n    subject: s\n    body: b\n");
  ASSERT_TRUE(t.made()) << t.load_errors();
  ASSERT_TRUE(t.Open().ok());
  auto r = t.Write({{"id", "1"}});
  EXPECT_FALSE(r.status.ok());
  EXPECT_FALSE(r.status.IsTransient()) << r.status.ToString();
  EXPECT_TRUE(server_.Messages().empty());
}

TEST_F(SmtpTest, SmtpsFromTheFirstByte) {
  tu::MailServer::Options options;
  options.secure = true;
  StartServer(options);
  MailTarget t(dir_, "    url: " + server_.url() +
                         "\n    ca_file: " + server_.cert().cert.string() +
                         "\n    from: a@x.dk\n    to: b@x.dk\n    subject: s\n    body: b\n");
  ASSERT_TRUE(t.made()) << t.load_errors();
  ASSERT_TRUE(t.Open().ok());
  auto r = t.Write({{"id", "1"}});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  auto mails = server_.WaitForMessages(1);
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0].at("secure"), Value(true));
}

TEST_F(SmtpTest, RenderShowsTheMailWithoutSending) {
  MailTarget t(
      dir_,
      "    url: smtp://127.0.0.1:1\n    from: \"Løn <l@x.dk>\"\n"
      "    to: [\"{{ record.email }}\", \"c@x.dk, d@x.dk\"]\n"
      "    subject: \"Hej {{ record.name }}\"\n    body: \"Tekst\"\n"
      "    attachments: [{path: \"out/{{ run.id }}.csv\", name: rapport.csv}, {path: x/y.pdf}]\n");
  ASSERT_TRUE(t.made()) << t.load_errors();
  auto v = t.Render({{"id", "1"}, {"email", "b@x.dk"}, {"name", "Åse"}});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(
      boost::json::serialize(*v),
      "{\"from\":\"=?UTF-8?B?TMO4bg==?= <l@x.dk>\",\"to\":[\"b@x.dk\",\"c@x.dk\",\"d@x.dk\"],"
      "\"subject\":\"Hej Åse\",\"body\":\"Tekst\",\"attachments\":[\"rapport.csv\",\"y.pdf\"]}");
  auto none = t.Render({{"id", "1"}, {"email", ""}, {"name", "x"}});
  ASSERT_TRUE(none.ok());  // c@x.dk and d@x.dk remain
}

TEST_F(SmtpTest, SettingsAreCheckedWithoutNetwork) {
  for (const char* bad : {"    url: http://x\n", "    url: \"smtp://u:pw@host\"\n"}) {
    MailTarget t(
        dir_, std::string(bad) + "    from: a@x.dk\n    to: b@x.dk\n    subject: s\n    body: b\n");
    EXPECT_FALSE(t.made()) << bad;
    EXPECT_NE(t.load_errors().find("url"), std::string::npos) << t.load_errors();
  }
  MailTarget lit(dir_,
                 "    url: smtp://h\n    username: u\n    password: literal-secret\n"
                 "    from: a@x.dk\n    to: b@x.dk\n    subject: s\n    body: b\n");
  EXPECT_FALSE(lit.made());
  EXPECT_NE(lit.load_errors().find("secret"), std::string::npos) << lit.load_errors();
  MailTarget att(dir_,
                 "    url: smtp://h\n    from: a@x.dk\n    to: b@x.dk\n    subject: s\n"
                 "    body: b\n    attachments: [{path: a, nmae: b}]\n");
  EXPECT_FALSE(att.made());
  EXPECT_NE(att.load_errors().find("nmae"), std::string::npos) << att.load_errors();
}

// The engine's run-summary mail: one Target, one Write, no journal.
TEST_F(SmtpTest, OneWriteWithoutJournalForRunSummaries) {
  StartServer();
  const ConnectorDef* def = Registry::Global().Find("smtp");
  ASSERT_NE(def, nullptr);
  MailTarget t(dir_, Plain() +
                         "    from: keyonce@kommune.dk\n    to: drift@kommune.dk\n"
                         "    subject: \"{{ record.recipe }}: {{ record.status }}\"\n"
                         "    body: \"Læst {{ record.read }}, skrevet {{ record.written }}, "
                         "karantæne {{ record.quarantined }}\"\n");
  ASSERT_TRUE(t.made()) << t.load_errors();
  ASSERT_TRUE(t.Open().ok());
  auto r = t.Write({{"recipe", "sygefravaer"},
                    {"status", "completed_with_errors"},
                    {"read", 120},
                    {"written", 118},
                    {"quarantined", 2}},
                   "");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(t->Close(true).ok());
  auto mails = server_.WaitForMessages(1);
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(Str(mails[0], "subject"), "sygefravaer: completed_with_errors");
  EXPECT_EQ(Str(mails[0], "text"), "Læst 120, skrevet 118, karantæne 2");
}

// End to end: `keyonce run` reads a CSV from SFTP and mails every row; a
// rerun sends nothing; a row for an unknown recipient is quarantined.
TEST_F(SmtpTest, BinaryReadsCsvFromSftpAndMailsEachRow) {
  StartServer();
  tu::Sshd sshd;
  std::string why;
  ASSERT_TRUE(sshd.Start(dir_ / "sshd", &why)) << why;
  const fs::path drop = dir_ / "drop";
  fs::create_directories(drop);
  std::ofstream(drop / "nye.csv", std::ios::binary)
      << "id;navn;email\r\n1;Åse Ølund;aase@borger.dk\r\n2;Bo;unknown@borger.dk\r\n"
         "3;Ærø Søn;aeroe@borger.dk\r\n";
  const fs::path work = dir_ / "work";
  fs::create_directories(work);
  tu::WriteFile(work / "recipe.yaml",
                "recipe: velkomst\n"
                "source:\n"
                "  type: csv\n"
                "  path: " +
                    sshd.url() + drop.string() +
                    "/nye.csv\n"
                    "  delimiter: \";\"\n"
                    "  username: " +
                    sshd.user() +
                    "\n"
                    "  private_key: " +
                    sshd.user_key().string() +
                    "\n"
                    "  known_hosts: " +
                    sshd.known_hosts().string() +
                    "\n"
                    "key: \"{{ record.id }}\"\n"
                    "targets:\n"
                    "  - name: mail\n"
                    "    type: smtp\n"
                    "    url: " +
                    server_.url() +
                    "\n"
                    "    starttls: \"off\"\n"
                    "    from: \"Borgerservice <bs@kommune.dk>\"\n"
                    "    to: \"{{ record.navn }} <{{ record.email }}>\"\n"
                    "    subject: \"Velkommen, {{ record.navn }}\"\n"
                    "    body: \"Kære {{ record.navn }}, velkommen til kommunen.\"\n"
                    "    in_doubt: quarantine\n");
  // A dry run downloads and renders, and sends nothing.
  auto dry = tu::Keyonce({"run", "recipe.yaml", "--dry-run"}, work);
  EXPECT_EQ(dry.exit_code, 0) << dry.all();
  EXPECT_NE(dry.all().find("Velkommen, Åse Ølund"), std::string::npos) << dry.all();
  EXPECT_TRUE(server_.Messages().empty());

  auto run = tu::Keyonce({"run", "recipe.yaml"}, work);
  EXPECT_EQ(run.exit_code, 3) << run.all();  // one record quarantined
  auto mails = server_.WaitForMessages(2);
  ASSERT_EQ(mails.size(), 2u) << run.all();
  EXPECT_EQ(Str(mails[0], "subject"), "Velkommen, Åse Ølund");
  EXPECT_EQ(Str(mails[1], "subject"), "Velkommen, Ærø Søn");
  auto quarantine = tu::Keyonce({"quarantine", "velkomst"}, work);
  EXPECT_NE(quarantine.all().find("550"), std::string::npos) << quarantine.all();
  // The position names the remote file, without credentials.
  EXPECT_NE(quarantine.all().find("sftp://127.0.0.1:" + std::to_string(sshd.port())),
            std::string::npos)
      << quarantine.all();

  auto again = tu::Keyonce({"run", "recipe.yaml"}, work);
  EXPECT_EQ(server_.Messages().size(), 2u) << again.all();  // nothing twice
}

}  // namespace
}  // namespace keyonce
