// A throwaway PostgreSQL cluster for tests: initdb into a temporary folder,
// a postmaster on 127.0.0.1:<free port> (and a socket in that folder), a
// database and a password (SCRAM) user for the code under test. The
// destructor stops the server (immediate shutdown) and removes everything.
//
// Uses Debian's binaries in /usr/lib/postgresql/15/bin. initdb refuses to run
// as root: as root the cluster belongs to the `postgres` system user
// (`runuser -u postgres --`), otherwise to the current user.
//
//   PostgresCluster pg;
//   ASSERT_TRUE(pg.Start(&why)) << why;
//   pg.Exec("CREATE TABLE t (id int PRIMARY KEY)");
//   std::string conninfo = pg.ConnectionString();  // host=127.0.0.1 port=... user=... password=...
//
// Exec/Query run psql as the superuser over the socket, so they work even
// while the test user is locked out or its connections are being killed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace keyonce::testing_util {

class PostgresCluster {
 public:
  PostgresCluster() = default;
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;
  ~PostgresCluster();

  // Creates and starts the cluster; false with the reason (and the server's
  // log) in *why. Generous timeouts: a loaded CI machine is slow.
  bool Start(std::string* why);
  // Immediate shutdown (like a crash) and start again on the same port.
  bool Restart(std::string* why);
  // Stops the server (-m immediate) and removes the folder. Idempotent.
  void Stop();

  // libpq key=value connection string for the test user over TCP, with the
  // password unless `with_password` is false.
  std::string ConnectionString(bool with_password = true) const;
  int port() const { return port_; }
  const std::string& database() const { return database_; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Runs SQL (one or more statements) as the superuser in the test
  // database; false with psql's output in *error on failure.
  bool Exec(const std::string& sql, std::string* error = nullptr) const;
  // The first column of the first row as text ("" and *ok=false on error).
  std::string QueryText(const std::string& sql, bool* ok = nullptr) const;
  // The first column of the first row as an integer; -1 on error.
  long long QueryInt(const std::string& sql) const;
  // The server's log (for failure messages).
  std::string Log() const;

 private:
  bool RunAsOwner(const std::vector<std::string>& argv, std::string* output) const;
  bool StartServer(std::string* why);
  bool Psql(const std::string& db, const std::string& sql, bool tuples_only,
            std::string* output) const;

  std::filesystem::path dir_;
  int port_ = -1;
  bool running_ = false;
  std::string database_ = "keyonce_test";
  std::string user_ = "keyonce_test";
  std::string password_;
};

}  // namespace keyonce::testing_util
