#include "tests/support/postgres.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "tests/support/servers.h"

namespace keyonce::testing_util {
namespace fs = std::filesystem;

namespace {

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";

std::string Bin(const std::string& name) { return std::string(kBinDir) + "/" + name; }

std::string RandomHex(size_t n) {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(getpid()));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kHex[rng() % 16];
  return s;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

}  // namespace

PostgresCluster::~PostgresCluster() { Stop(); }

bool PostgresCluster::RunAsOwner(const std::vector<std::string>& argv, std::string* output) const {
  std::vector<std::string> cmd;
  if (geteuid() == 0) cmd = {"runuser", "-u", "postgres", "--"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return RunProgram(cmd, output) == 0;
}

bool PostgresCluster::Start(std::string* why) {
  std::string ignored;
  if (!why) why = &ignored;
  if (access(Bin("initdb").c_str(), X_OK) != 0) {
    *why = "PostgreSQL 15 is not installed: " + Bin("initdb") +
           " is missing (apt-get install postgresql-15)";
    return false;
  }
  if (geteuid() == 0 && getpwnam("postgres") == nullptr) {
    *why = "running as root, but there is no `postgres` system user to own the test cluster";
    return false;
  }
  std::string tmpl = (fs::temp_directory_path() / "keyonce_pg_XXXXXX").string();
  if (!mkdtemp(tmpl.data())) {
    *why = "cannot create a temporary folder for the test cluster";
    return false;
  }
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);
  if (geteuid() == 0) {
    std::string out;
    if (RunProgram({"chown", "postgres:postgres", dir_.string()}, &out) != 0) {
      *why = "chown of the test cluster's folder failed: " + out;
      return false;
    }
  }
  password_ = "pw_" + RandomHex(20);
  std::string out;
  if (!RunAsOwner({Bin("initdb"), "-D", (dir_ / "data").string(), "-U", "postgres", "-E", "UTF8",
                   "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"},
                  &out)) {
    *why = "initdb failed: " + out;
    return false;
  }
  port_ = FreePort();
  {
    std::ofstream conf(dir_ / "data" / "postgresql.conf", std::ios::app);
    conf << "\n# keyonce test cluster\n"
         << "listen_addresses = '127.0.0.1'\n"
         << "port = " << port_ << "\n"
         << "unix_socket_directories = '" << dir_.string() << "'\n"
         << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
         << "max_connections = 40\nshared_buffers = 32MB\n"
         << "password_encryption = 'scram-sha-256'\n"
         << "logging_collector = off\n";
  }
  if (!StartServer(why)) return false;
  std::string e1, e2;
  if (!Psql("postgres", "CREATE ROLE " + user_ + " LOGIN PASSWORD '" + password_ + "'", false,
            &e1) ||
      !Psql("postgres", "CREATE DATABASE " + database_ + " OWNER " + user_, false, &e2)) {
    *why = "creating the test user and database failed: " + e1 + e2;
    return false;
  }
  // Tables the test makes with Exec (as the superuser) are the test user's to use.
  if (!Psql(database_,
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT ALL ON TABLES TO " + user_ +
                "; ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT ALL ON SEQUENCES TO " + user_,
            false, &e1)) {
    *why = "granting the test user its privileges failed: " + e1;
    return false;
  }
  return true;
}

bool PostgresCluster::StartServer(std::string* why) {
  std::string out;
  if (!RunAsOwner({Bin("pg_ctl"), "-D", (dir_ / "data").string(), "-l",
                   (dir_ / "server.log").string(), "-w", "-t", "120", "start"},
                  &out)) {
    *why = "pg_ctl start failed: " + out + "\n" + Log();
    return false;
  }
  running_ = true;
  if (!WaitForPort(port_, std::chrono::seconds(60))) {
    *why = "PostgreSQL did not listen on port " + std::to_string(port_) + ":\n" + Log();
    return false;
  }
  return true;
}

bool PostgresCluster::Restart(std::string* why) {
  std::string out;
  RunAsOwner(
      {Bin("pg_ctl"), "-D", (dir_ / "data").string(), "-m", "immediate", "-w", "-t", "60", "stop"},
      &out);
  running_ = false;
  return StartServer(why);
}

void PostgresCluster::Stop() {
  if (dir_.empty()) return;
  if (running_) {
    std::string out;
    RunAsOwner({Bin("pg_ctl"), "-D", (dir_ / "data").string(), "-m", "immediate", "-w", "-t", "60",
                "stop"},
               &out);
    running_ = false;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  dir_.clear();
}

std::string PostgresCluster::ConnectionString(bool with_password) const {
  std::string s =
      "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + database_ + " user=" + user_;
  if (with_password) s += " password=" + password_;
  return s;
}

bool PostgresCluster::Psql(const std::string& db, const std::string& sql, bool tuples_only,
                           std::string* output) const {
  std::vector<std::string> argv = {
      Bin("psql"), "-X", "-q", "-h", dir_.string(),    "-p", std::to_string(port_), "-U",
      "postgres",  "-d", db,   "-v", "ON_ERROR_STOP=1"};
  if (tuples_only) argv.insert(argv.end(), {"-A", "-t"});
  argv.insert(argv.end(), {"-c", sql});
  return RunProgram(argv, output) == 0;
}

bool PostgresCluster::Exec(const std::string& sql, std::string* error) const {
  std::string out;
  bool ok = Psql(database_, sql, false, &out);
  if (!ok && error) *error = out;
  return ok;
}

std::string PostgresCluster::QueryText(const std::string& sql, bool* ok) const {
  std::string out;
  bool good = Psql(database_, sql, true, &out);
  if (ok) *ok = good;
  if (!good) return "";
  return Trim(out.substr(0, out.find('\n')));
}

long long PostgresCluster::QueryInt(const std::string& sql) const {
  bool ok = false;
  std::string t = QueryText(sql, &ok);
  if (!ok || t.empty()) return -1;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  return end && *end == '\0' ? v : -1;
}

std::string PostgresCluster::Log() const {
  std::ifstream in(dir_ / "server.log");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > 4000) s = "..." + s.substr(s.size() - 4000);
  return s;
}

}  // namespace keyonce::testing_util
