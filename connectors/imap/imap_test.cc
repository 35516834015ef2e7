// The imap source against a real IMAP server: Debian's Dovecot on loopback
// (tests/support/imap_server.h), mails put in with APPEND. Reading never
// marks a mail; only acknowledged mails are marked (seen, keyword, moved);
// kill -9 of `keyonce run` at random points, then a rerun, writes every mail
// exactly once and leaves every mail marked.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "connectors/imap/imap_session.h"
#include "keyonce/connector.h"
#include "keyonce/testing.h"
#include "tests/cli_util.h"
#include "tests/support/http_servers.h"
#include "tests/support/imap_server.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;
namespace tu = testing_util;

constexpr const char* kPassword = "hemmeligt-pässord-1";

std::string Mail(int n, const std::string& subject_word = "Ansøgning") {
  return "From: =?ISO-8859-1?Q?S=F8ren_J=F8rgensen?= <soren" + std::to_string(n) +
         "@example.dk>\r\n"
         "To: ansoegninger@kommune.dk\r\n"
         "Subject: =?UTF-8?Q?" +
         (subject_word == "Ansøgning" ? std::string("Ans=C3=B8gning") : subject_word) + "_nr._" +
         std::to_string(n) +
         "?=\r\n"
         "Date: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
         "Message-ID: <mail" +
         std::to_string(n) +
         "@example.dk>\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"b\"\r\n"
         "\r\n"
         "--b\r\n"
         "Content-Type: text/plain; charset=ISO-8859-1\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n"
         "\r\n"
         "K=E6re kommune, her er ans=F8gning " +
         std::to_string(n) +
         ".\r\n"
         "--b\r\n"
         "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n"
         "Content-Disposition: attachment; filename*=UTF-8''skema%200101901234.xlsx\r\n"
         "Content-Transfer-Encoding: base64\r\n"
         "\r\n"
         "UEsDBBQAAAAIAAAAIQD/AAEC\r\n"
         "--b--\r\n";
}

class ImapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keyonce-imap-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string why;
    ASSERT_TRUE(server_.Start(dir_ / "dovecot", "robot@kommune.dk", kPassword, &why)) << why;
    secrets_ = boost::json::object{{"imap_password", kPassword}};
    ctx_.recipe = "mail";
    ctx_.run_id = "7";
    ctx_.log = &log_;
    ctx_.scope.secrets = &secrets_;
  }
  void TearDown() override {
    server_.Stop();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  void Put(const std::string& mail, const std::string& folder = "INBOX") {
    std::string why;
    ASSERT_TRUE(server_.Append(folder, mail, &why)) << why;
  }

  Result<std::unique_ptr<Source>> Make(const std::string& extra) {
    const ConnectorDef* def = Registry::Global().Find("imap");
    if (!def) return Status::Internal("no imap connector");
    testing::SettingsYaml o;
    o.secrets = {"imap_password"};
    o.base_dir = dir_;
    const std::string yaml = "url: " + server_.imaps_url() +
                             "\nusername: robot@kommune.dk\npassword: \"{{ "
                             "secrets.imap_password }}\"\nca_file: " +
                             server_.cert().cert.string() + "\n" + extra;
    auto s = testing::SettingsFromYaml(def->source->fields, yaml, o);
    if (!s.ok()) return s.status();
    return def->make_source(*s);
  }

  // Opens, reads every mail, acknowledges the first `ack` (end when all),
  // and closes: a run that ends (or dies) after its acknowledgement.
  std::vector<SourceItem> ReadAndAck(const std::string& extra, size_t ack) {
    std::vector<SourceItem> items;
    auto src = Make(extra);
    EXPECT_TRUE(src.ok()) << src.status().ToString();
    if (!src.ok()) return items;
    Status st = (*src)->Open(ctx_);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return items;
    for (;;) {
      SourceItem item;
      auto more = (*src)->Next(&item);
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      items.push_back(std::move(item));
    }
    if (ack > 0) {
      st = (*src)->Acknowledge(ack, ack == items.size());
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    EXPECT_TRUE((*src)->Close().ok());
    return items;
  }

  struct CaptureLog : Log {
    void Info(const std::string& m) override { lines.push_back(m); }
    void Warn(const std::string& m) override { lines.push_back(m); }
    void AddSecret(const std::string& v) override { secrets.push_back(v); }
    std::vector<std::string> lines, secrets;
  };

  fs::path dir_;
  tu::ImapServer server_;
  Value secrets_;
  CaptureLog log_;
  RunContext ctx_;
};

TEST_F(ImapTest, ReadsEachMailAsARecordAndMarksNothingWhileReading) {
  Put(Mail(1));
  Put(Mail(2));
  // A UTF-8 mail sent as 8-bit, with an HTML alternative.
  Put("From: Åse <aase@example.dk>\r\nSubject: =?UTF-8?Q?Sp=C3=B8rgsm=C3=A5l?=\r\n"
      "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n"
      "--a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
      "Hvornår åbner SFO'en? Æbler og øl.\r\n"
      "--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hvornår åbner SFO'en?</p>\r\n"
      "--a--\r\n");
  auto items = ReadAndAck("attachments_to: vedhaeftet\n", 0);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(std::string(items[2].record.at("text").as_string()),
            "Hvornår åbner SFO'en? Æbler og øl.");
  EXPECT_EQ(std::string(items[2].record.at("subject").as_string()), "Spørgsmål");
  EXPECT_EQ(std::string(items[2].record.at("html").as_string()), "<p>Hvornår åbner SFO'en?</p>");
  EXPECT_TRUE(items[2].record.at("attachments").as_array().empty());
  EXPECT_TRUE(items[2].record.at("date").is_null());
  const Record& r = items[0].record;
  EXPECT_EQ(r.at("subject").as_string(), "Ansøgning nr. 1");
  EXPECT_EQ(r.at("from").as_string(), "soren1@example.dk");
  EXPECT_EQ(r.at("from_name").as_string(), "Søren Jørgensen");
  EXPECT_EQ(r.at("message_id").as_string(), "mail1@example.dk");
  EXPECT_EQ(r.at("date").as_string(), "2026-12-07T10:00:00+01:00");
  EXPECT_EQ(std::string(r.at("text").as_string()), "Kære kommune, her er ansøgning 1.");
  EXPECT_EQ(r.at("to").as_array().size(), 1u);
  EXPECT_EQ(items[0].position.find(server_.imaps_url() + "/INBOX UID "), 0u) << items[0].position;
  // The attachment: saved under a name no sender chose, listed with its own.
  const auto& att = r.at("attachments").as_array();
  ASSERT_EQ(att.size(), 1u);
  EXPECT_EQ(att[0].at("name").as_string(), "skema 0101901234.xlsx");
  EXPECT_EQ(att[0].at("size").as_int64(), 18);
  const std::string path(att[0].at("path").as_string());
  EXPECT_EQ(fs::path(path).parent_path(), dir_ / "vedhaeftet");
  EXPECT_EQ(path.find("0101901234"), std::string::npos) << "no CPR number in a file name";
  EXPECT_EQ(fs::path(path).extension(), ".xlsx");
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.substr(0, 4), "PK\x03\x04");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Nothing was marked: all are still unseen.
  EXPECT_EQ(server_.Search("INBOX", "UNSEEN").size(), 3u);
  EXPECT_EQ(log_.secrets, std::vector<std::string>{kPassword});
}

TEST_F(ImapTest, OnlyAcknowledgedMailsAreMarkedAndTheRestIsReadAgain) {
  for (int n = 1; n <= 3; ++n) Put(Mail(n));
  // A run that read three and died after its first two were safe.
  auto first = ReadAndAck("", 2);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(server_.Search("INBOX", "SEEN").size(), 2u);
  // The next run reads only the third, and marks it.
  auto second = ReadAndAck("", 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].record.at("message_id").as_string(), "mail3@example.dk");
  EXPECT_TRUE(server_.Search("INBOX", "UNSEEN").empty());
  EXPECT_TRUE(ReadAndAck("", 0).empty());
}

TEST_F(ImapTest, AcknowledgedMailsMoveToAFolderOrGetAKeyword) {
  for (int n = 1; n <= 3; ++n) Put(Mail(n));
  auto moved = ReadAndAck("after_read: move\nmove_to: Behandlet æøå\n", 2);
  ASSERT_EQ(moved.size(), 3u);
  EXPECT_EQ(server_.Search("INBOX", "ALL").size(), 1u);
  EXPECT_EQ(server_.Search(connectors::imap::ModifiedUtf7("Behandlet æøå"), "ALL").size(), 2u);
  // flag: the keyword marks it, and such mails are not read again even when
  // search reads seen mails too.
  auto flagged = ReadAndAck("after_read: flag\nflag: $Behandlet\nsearch: {unseen: false}\n", 1);
  ASSERT_EQ(flagged.size(), 1u);
  EXPECT_NE(server_.Flags("INBOX").begin()->second.find("$Behandlet"), std::string::npos);
  EXPECT_TRUE(
      ReadAndAck("after_read: flag\nflag: $Behandlet\nsearch: {unseen: false}\n", 0).empty());
}

TEST_F(ImapTest, SearchesBySubjectSenderAndDayWithDanishLetters) {
  Put(Mail(1));
  Put(Mail(2, "Faktura"));
  auto items = ReadAndAck("search: {subject: \"Ansøgning\"}\n", 0);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].record.at("message_id").as_string(), "mail1@example.dk");
  EXPECT_EQ(ReadAndAck("search: {from: soren2@example.dk}\n", 0).size(), 1u);
  // since: by day (mails are dated by their arrival: today).
  EXPECT_EQ(ReadAndAck("search: {since: \"2020-01-01T00:00:00Z\"}\n", 0).size(), 2u);
  EXPECT_TRUE(ReadAndAck("search: {since: \"2999-01-01\"}\n", 0).empty());
  auto bad = Make("search: {since: \"i går\"}\n");
  ASSERT_TRUE(bad.ok());
  Status st = (*bad)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("search.since must be an ISO date"), std::string::npos);
}

TEST_F(ImapTest, ATooBigMailIsRejectedWithItsUidAndTheRestIsRead) {
  Put(Mail(1));
  Put("Subject: kort\r\n\r\nhej\r\n");
  auto items = ReadAndAck("max_message_bytes: 300\n", 0);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_TRUE(items[0].rejected);
  EXPECT_NE(items[0].reason.find("larger than max_message_bytes (300 bytes)"), std::string::npos)
      << items[0].reason;
  EXPECT_NE(items[0].reason.find("UID 1"), std::string::npos);
  EXPECT_FALSE(items[1].rejected);
  EXPECT_EQ(items[1].record.at("text").as_string(), "hej\n");
  // It has no Message-ID: an id from its headers, the same at every reading.
  const std::string id(items[1].record.at("message_id").as_string());
  EXPECT_EQ(id.size(), 64u + std::string("@keyonce.invalid").size()) << id;
  auto again = ReadAndAck("max_message_bytes: 300\n", 0);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(std::string(again[1].record.at("message_id").as_string()), id);
}

TEST_F(ImapTest, LoginAndTlsFailuresAreClearAndSayNothingSecret) {
  Put(Mail(1));
  secrets_ = boost::json::object{{"imap_password", "forkert-pässord"}};
  auto src = Make("");
  ASSERT_TRUE(src.ok());
  Status st = (*src)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kPermanent) << st.ToString();
  EXPECT_EQ(st.message().find("pässord"), std::string::npos) << st.message();
  // A server whose certificate nobody vouches for.
  const ConnectorDef* def = Registry::Global().Find("imap");
  testing::SettingsYaml o;
  o.secrets = {"imap_password"};
  auto s = testing::SettingsFromYaml(
      def->source->fields,
      "url: " + server_.imaps_url() +
          "\nusername: robot@kommune.dk\npassword: \"{{ secrets.imap_password }}\"\n",
      o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto untrusted = def->make_source(*s);
  ASSERT_TRUE(untrusted.ok());
  st = (*untrusted)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kPermanent) << st.ToString();
  // STARTTLS on imap:// reads like imaps://.
  secrets_ = boost::json::object{{"imap_password", kPassword}};
  s = testing::SettingsFromYaml(def->source->fields,
                                "url: " + server_.imap_url() +
                                    "\nusername: robot@kommune.dk\npassword: \"{{ "
                                    "secrets.imap_password }}\"\nca_file: " +
                                    server_.cert().cert.string() + "\n",
                                o);
  ASSERT_TRUE(s.ok());
  auto read = testing::ReadSource(def->make_source(*s), ctx_);
  EXPECT_TRUE(read.error.ok()) << read.error.ToString();
  EXPECT_EQ(read.items.size(), 1u);
}

// Microsoft 365's way: an OAuth2 client-credentials token from the identity
// provider (oauth2-mock-server), then XOAUTH2 as the shared mailbox; Dovecot
// checks the token with the provider (RFC 7662 introspection).
TEST_F(ImapTest, LogsInWithAnOAuth2ClientCredentialsTokenOverXoauth2) {
  server_.Stop();
  tu::http::OAuthApi idp;
  idp.mailbox = "postkasse@kommune.dk";
  std::string why;
  ASSERT_TRUE(idp.Start(dir_ / "idp", "klient-hemmelighed", "", "", 3600, &why)) << why;
  ASSERT_TRUE(server_.Start(dir_ / "dovecot2", "postkasse@kommune.dk", "unused-password-1", &why,
                            idp.introspection_url()))
      << why;
  Put(Mail(1));
  const ConnectorDef* def = Registry::Global().Find("imap");
  testing::SettingsYaml o;
  o.secrets = {"client_secret"};
  auto s = testing::SettingsFromYaml(
      def->source->fields,
      "url: " + server_.imaps_url() +
          "\nusername: postkasse@kommune.dk\nca_file: " + server_.cert().cert.string() +
          "\nauth: {type: oauth2_client_credentials, token_url: " + idp.token_url() +
          ", client_id: keyonce, client_secret: \"{{ secrets.client_secret }}\", scope: "
          "\"https://outlook.office365.com/.default\"}\n",
      o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  secrets_ = boost::json::object{{"client_secret", "klient-hemmelighed"}};
  auto read = testing::ReadSource(def->make_source(*s), ctx_);
  ASSERT_TRUE(read.error.ok()) << read.error.ToString() << "\n" << server_.Log();
  ASSERT_EQ(read.items.size(), 1u);
  EXPECT_EQ(read.items[0].record.at("message_id").as_string(), "mail1@example.dk");
  // The access token is a secret from the moment it is fetched.
  EXPECT_GE(log_.secrets.size(), 2u);
  // A wrong client secret: refused by the provider, clearly, without it.
  secrets_ = boost::json::object{{"client_secret", "forkert"}};
  auto refused = testing::ReadSource(def->make_source(*s), ctx_);
  EXPECT_EQ(refused.error.code(), Status::Code::kPermanent) << refused.error.ToString();
  EXPECT_EQ(refused.error.message().find("forkert"), std::string::npos);
}

TEST_F(ImapTest, SettingsThatCannotWorkAreRefusedBeforeAnyConnection) {
  const ConnectorDef* def = Registry::Global().Find("imap");
  testing::SettingsYaml o;
  o.secrets = {"imap_password", "cs"};
  auto make = [&](const std::string& yaml) {
    auto s = testing::SettingsFromYaml(def->source->fields, yaml, o);
    if (!s.ok()) return s.status();
    return def->make_source(*s).status();
  };
  const std::string login = "username: u\npassword: \"{{ secrets.imap_password }}\"\n";
  EXPECT_NE(make("url: https://mail\n" + login).message().find("imaps:// or imap://"),
            std::string::npos);
  EXPECT_NE(make("url: imaps://u:p@mail\n" + login).message().find("user name or password"),
            std::string::npos);
  EXPECT_NE(make("url: imaps://mail/INBOX\n" + login).message().find("folder"), std::string::npos);
  EXPECT_NE(make("url: imaps://mail\nusername: u\n").message().find("needs password"),
            std::string::npos);
  EXPECT_NE(make("url: imaps://mail\n" + login + "after_read: move\n").message().find("move_to"),
            std::string::npos);
  EXPECT_NE(make("url: imaps://mail\n" + login + "after_read: flag\nflag: Be handlet\n")
                .message()
                .find("flag 'Be handlet' may hold only letters, digits, $ and _"),
            std::string::npos);
  EXPECT_NE(make("url: imaps://mail\nusername: u\nauth: {type: basic, username: u, password: "
                 "\"{{ secrets.cs }}\"}\n")
                .message()
                .find("XOAUTH2"),
            std::string::npos);
}

// kill -9 of `keyonce run` at random points while it reads mails, writes
// them and marks them; then a run to the end. Every mail is in the table
// exactly once, and every mail is marked read.
TEST_F(ImapTest, KillNineAtRandomPointsThenRerunWritesEachMailOnceAndMarksAll) {
  constexpr int kMails = 40;
  for (int n = 1; n <= kMails; ++n) Put(Mail(n));
  const fs::path run_dir = dir_ / "run";
  fs::create_directories(run_dir);
  tu::WriteFile(run_dir / "mail.yaml",
                "recipe: mail\n"
                "secrets:\n  imap_password: {env: IMAP_PASSWORD}\n"
                "source:\n  type: imap\n  url: " +
                    server_.imaps_url() +
                    "\n  username: robot@kommune.dk\n"
                    "  password: \"{{ secrets.imap_password }}\"\n"
                    "  ca_file: " +
                    server_.cert().cert.string() +
                    "\n"
                    "key: \"{{ record.message_id }}\"\n"
                    "batch_records: 3\n"
                    "targets:\n"
                    "  - name: db\n    type: sqlite\n    path: mails.db\n    table: mails\n"
                    "    create_table: true\n    mode: insert\n"
                    "    columns: {message_id: \"{{ record.message_id }}\", subject: \"{{ "
                    "record.subject }}\"}\n"
                    "  - {name: lines, type: jsonl, path: mails.jsonl, body: {id: \"{{ "
                    "record.message_id }}\"}}\n");
  const std::map<std::string, std::string> env = {{"IMAP_PASSWORD", kPassword}};
  const std::vector<std::string> args = {"run", "mail.yaml", "--state", "state.db",
                                         "--no-progress"};
  std::mt19937 rng(20261207);
  int killed = 0;
  for (int i = 0; i < 12; ++i) {
    auto b = tu::StartKeyonce(args, run_dir, "kill" + std::to_string(i), env);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 400)(rng)));
    if (::kill(b.pid, SIGKILL) == 0) ++killed;
    int status = 0;
    ::waitpid(b.pid, &status, 0);
  }
  auto last = tu::Keyonce(args, run_dir, env);
  ASSERT_EQ(last.exit_code, 0) << last.all();
  EXPECT_GT(killed, 3);
  EXPECT_EQ(tu::QueryInt(run_dir / "mails.db", "SELECT count(*) FROM mails"), kMails);
  EXPECT_EQ(tu::QueryInt(run_dir / "mails.db", "SELECT count(DISTINCT message_id) FROM mails"),
            kMails);
  const std::string lines = tu::ReadFile(run_dir / "mails.jsonl");
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), kMails);
  EXPECT_TRUE(server_.Search("INBOX", "UNSEEN").empty()) << "every mail is marked at the end";
  EXPECT_EQ(last.all().find(kPassword), std::string::npos);
}

}  // namespace
}  // namespace keyonce
