// Who may do what in `keyonce serve`.
//
// Tokens live in a YAML file the service reads at start and on SIGHUP; only
// their SHA-256 is stored (tokens are 160-bit random strings, so a plain hash
// is enough: there is nothing to guess). A token carries a role:
//   admin      everything;
//   operator   runs, history, schedule, quarantine and metrics of all recipes;
//   caseworker starts only the recipes listed for the token and sees only the
//              runs it started.
// The web page logs in with a token once and then uses a session cookie
// (HttpOnly, SameSite=Strict, Secure under TLS); every mutating request made
// with the cookie must carry the session's CSRF token in X-CSRF-Token.
// Not thread-safe: used on the service's io thread only.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "keyonce/status.h"

namespace YAML {
class Node;
}

namespace keyonce::service {

enum class Role { kAdmin, kOperator, kCaseworker };
const char* RoleName(Role r);

struct Principal {
  std::string name;
  Role role = Role::kCaseworker;
  std::set<std::string> recipes;  // caseworker: the recipes it may start
  bool session = false;           // authenticated by the cookie (CSRF applies)
  std::string csrf;               // the session's CSRF token
  std::string token_hash;         // which token it came from

  bool IsStaff() const { return role != Role::kCaseworker; }
  bool MayStart(const std::string& recipe) const {
    return role != Role::kCaseworker || recipes.count(recipe) > 0;
  }
};

class TokenStore {
 public:
  // Loads the tokens file; errors name file:line:column.
  static Result<TokenStore> Load(const std::filesystem::path& file);
  // The principal of a presented token, or nullopt.
  std::optional<Principal> Find(const std::string& token) const;
  size_t size() const { return by_hash_.size(); }
  bool HasHash(const std::string& hash) const { return by_hash_.count(hash) > 0; }

 private:
  std::map<std::string, Principal> by_hash_;  // hex SHA-256 -> who
};

class Sessions {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Sessions(std::chrono::seconds idle = std::chrono::hours(8)) : idle_(idle) {}
  // A new session for `who`; returns its cookie value.
  std::string Create(Principal who);
  // The session's principal (its idle time restarts), or nullopt when unknown/expired.
  std::optional<Principal> Find(const std::string& id);
  void Remove(const std::string& id);
  // Drops sessions whose token no longer exists (after a reload).
  void Revalidate(const TokenStore& tokens);

 private:
  struct Entry {
    Principal who;
    Clock::time_point last_seen;
  };
  std::chrono::seconds idle_;
  std::map<std::string, Entry> sessions_;
};

// Reads a YAML file (the service's config, the tokens file); a syntax error
// names file:line:column, `what` names the file's role.
Result<YAML::Node> LoadYamlFile(const std::filesystem::path& file, const std::string& what);

// A fresh token ("ko_" + 40 hex characters) for `keyonce token new`.
std::string NewToken();

// Constant-time comparison of two strings of equal length.
bool SafeEquals(const std::string& a, const std::string& b);

}  // namespace keyonce::service
