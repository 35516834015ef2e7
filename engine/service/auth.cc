#include "service/auth.h"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "state/privacy.h"

namespace keyonce::service {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kAdmin:
      return "admin";
    case Role::kOperator:
      return "operator";
    case Role::kCaseworker:
      return "caseworker";
  }
  return "caseworker";
}

Result<YAML::Node> LoadYamlFile(const std::filesystem::path& file, const std::string& what) {
  try {
    return YAML::LoadFile(file.string());
  } catch (const YAML::BadFile&) {
    return Status::Io("reading " + what + " " + file.string() + ": cannot open it");
  } catch (const YAML::Exception& e) {
    return Status::Invalid(file.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

namespace {
std::string Where(const std::filesystem::path& file, const YAML::Node& n) {
  auto m = n.Mark();
  return file.string() + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}
}  // namespace

Result<TokenStore> TokenStore::Load(const std::filesystem::path& file) {
  auto loaded = LoadYamlFile(file, "the tokens file");
  if (!loaded.ok()) return loaded.status();
  YAML::Node root = *loaded;
  TokenStore store;
  if (!root || root.IsNull()) return store;
  if (!root.IsMap() || !root["tokens"] || !root["tokens"].IsSequence()) {
    return Status::Invalid(Where(file, root) + ": expected `tokens:` with a list of tokens");
  }
  static const std::regex hex_re("^[0-9a-f]{64}$");
  static const std::regex name_re("^[A-Za-z0-9._@-]{1,64}$");
  for (const auto& t : root["tokens"]) {
    if (!t.IsMap()) return Status::Invalid(Where(file, t) + ": each token is a mapping");
    for (const auto& kv : t) {
      std::string k = kv.first.Scalar();
      if (k != "name" && k != "role" && k != "recipes" && k != "sha256") {
        return Status::Invalid(Where(file, kv.first) + ": unknown key '" + k +
                               "' (a token has name, role, recipes, sha256)");
      }
    }
    Principal p;
    p.name = t["name"] ? t["name"].Scalar() : "";
    if (!std::regex_match(p.name, name_re)) {
      return Status::Invalid(Where(file, t) +
                             ": `name` is required: letters, digits, '.', '_', '@', '-'");
    }
    std::string role = t["role"] ? t["role"].Scalar() : "";
    if (role == "admin")
      p.role = Role::kAdmin;
    else if (role == "operator")
      p.role = Role::kOperator;
    else if (role == "caseworker")
      p.role = Role::kCaseworker;
    else
      return Status::Invalid(Where(file, t["role"] ? t["role"] : t) +
                             ": `role` must be admin, operator or caseworker");
    if (const auto r = t["recipes"]) {
      if (!r.IsSequence())
        return Status::Invalid(Where(file, r) + ": `recipes` is a list of recipe names");
      for (const auto& n : r) p.recipes.insert(n.Scalar());
    }
    std::string hash = t["sha256"] ? t["sha256"].Scalar() : "";
    if (!std::regex_match(hash, hex_re)) {
      return Status::Invalid(Where(file, t["sha256"] ? t["sha256"] : t) +
                             ": `sha256` must be the token's SHA-256 in 64 lower-case hex digits "
                             "(`keyonce token hash`); never the token itself");
    }
    if (store.by_hash_.count(hash))
      return Status::Invalid(Where(file, t) + ": the same token is listed twice");
    p.token_hash = hash;
    store.by_hash_[hash] = std::move(p);
  }
  return store;
}

std::optional<Principal> TokenStore::Find(const std::string& token) const {
  if (token.empty() || token.size() > 256) return std::nullopt;
  auto it = by_hash_.find(Sha256Hex(token));
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

std::string Sessions::Create(Principal who) {
  std::string id = RandomHex(32);
  who.session = true;
  who.csrf = RandomHex(24);
  sessions_[id] = {std::move(who), Clock::now()};
  return id;
}

std::optional<Principal> Sessions::Find(const std::string& id) {
  auto now = Clock::now();
  // Expired sessions are dropped as they are met, and all of them now and then.
  if (sessions_.size() > 64) {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      it = now - it->second.last_seen > idle_ ? sessions_.erase(it) : std::next(it);
    }
  }
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.last_seen > idle_) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_seen = now;
  return it->second.who;
}

void Sessions::Remove(const std::string& id) { sessions_.erase(id); }

void Sessions::Revalidate(const TokenStore& tokens) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = tokens.HasHash(it->second.who.token_hash) ? std::next(it) : sessions_.erase(it);
  }
}

std::string NewToken() { return "ko_" + RandomHex(20); }

bool SafeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

}  // namespace keyonce::service
