#include "cli/serve_cmd.h"

#include <iostream>
#include <string>

#include "service/auth.h"
#include "service/service.h"
#include "state/privacy.h"
#include "state/store.h"

namespace keyonce {
namespace {

const char* kServeHelp = R"(Usage: keyonce serve [options]

Runs recipes on their schedules and on demand, and serves the JSON API and the
caseworkers' page, until SIGTERM. SIGHUP reloads recipes and tokens (an invalid
recipe is refused and its previous version keeps running). See docs/api.md and
docs/operations.md.

Options:
  --config FILE              settings in YAML (the options below; options win)
  --recipes DIR              the recipe files (*.yaml; *_test.yaml are skipped)
  --state FILE               the state store (default: $KEYONCE_STATE or ./keyonce-state.db)
  --listen HOST:PORT         default 127.0.0.1:8080; port 0 picks a free port
  --tokens FILE              who may do what (see `keyonce token new`)
  --timezone ZONE            the schedules' default time zone (default Europe/Copenhagen)
  --max-runs N               runs at the same time, all recipes together (default 4)
  --identity NAME            the robot identity in the audit log (default keyonce@HOST)
  --tls-cert FILE --tls-key FILE   serve HTTPS
  --audit-retention-days N   audit entries are kept this long (default 180)
  --log-format text|json     the service log on stderr
  --check                    load and check everything, print what was found, exit

Exit codes: 0 stopped cleanly; 1 could not start (state store, port); 2 bad settings.
)";

const char* kTokenHelp = R"(Usage: keyonce token new --name NAME --role ROLE [--recipe R]...
       keyonce token hash < token.txt

`token new` prints a fresh token on the first line and, after it, the entry to
add to the tokens file (only the token's SHA-256 is stored there). Give the
token to its holder and do not keep it elsewhere. Roles: admin, operator,
caseworker (caseworkers may start only the recipes given with --recipe).

`token hash` prints the SHA-256 of a token read from standard input.
)";

bool Value(int argc, char** argv, int& i, const std::string& arg, const char* name,
           std::string* out) {
  std::string n = name;
  if (arg == n) {
    if (i + 1 >= argc) {
      std::cerr << "keyonce: " << n << " needs a value\n";
      std::exit(2);
    }
    *out = argv[++i];
    return true;
  }
  if (arg.rfind(n + "=", 0) == 0) {
    *out = arg.substr(n.size() + 1);
    return true;
  }
  return false;
}

}  // namespace

int ServeCommand(int argc, char** argv, int start) {
  service::ServiceConfig cfg;
  std::string config, recipes, state, listen, tokens, tz, max_runs, identity, cert, key, retention,
      format;
  bool check = false;
  for (int i = start; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kServeHelp;
      return 0;
    }
    if (a == "--check") {
      check = true;
      continue;
    }
    if (Value(argc, argv, i, a, "--config", &config) ||
        Value(argc, argv, i, a, "--recipes", &recipes) ||
        Value(argc, argv, i, a, "--state", &state) ||
        Value(argc, argv, i, a, "--listen", &listen) ||
        Value(argc, argv, i, a, "--tokens", &tokens) ||
        Value(argc, argv, i, a, "--timezone", &tz) ||
        Value(argc, argv, i, a, "--max-runs", &max_runs) ||
        Value(argc, argv, i, a, "--identity", &identity) ||
        Value(argc, argv, i, a, "--tls-cert", &cert) ||
        Value(argc, argv, i, a, "--tls-key", &key) ||
        Value(argc, argv, i, a, "--audit-retention-days", &retention) ||
        Value(argc, argv, i, a, "--log-format", &format)) {
      continue;
    }
    std::cerr << "keyonce serve: unknown option " << a << " (see keyonce serve --help)\n";
    return 2;
  }
  if (!config.empty()) {
    if (Status st = service::LoadServiceConfig(config, &cfg); !st.ok()) {
      std::cerr << "keyonce serve: " << st.message() << "\n";
      return 2;
    }
    if (cfg.tokens_path.empty()) {
      auto beside = std::filesystem::path(config).parent_path() / "tokens.yaml";
      if (std::filesystem::exists(beside)) cfg.tokens_path = beside;
    }
  }
  try {
    if (!recipes.empty()) cfg.recipes_dir = recipes;
    if (!state.empty()) cfg.state_path = state;
    if (!tokens.empty()) cfg.tokens_path = tokens;
    if (!tz.empty()) cfg.timezone = tz;
    if (!identity.empty()) cfg.identity = identity;
    if (!cert.empty()) cfg.tls_cert = cert;
    if (!key.empty()) cfg.tls_key = key;
    if (!format.empty()) {
      if (format != "text" && format != "json")
        throw std::invalid_argument("--log-format is text or json");
      cfg.json_logs = format == "json";
    }
    if (!max_runs.empty()) {
      cfg.max_concurrent_runs = std::stoi(max_runs);
      if (cfg.max_concurrent_runs < 1 || cfg.max_concurrent_runs > 64)
        throw std::invalid_argument("--max-runs is 1-64");
    }
    if (!retention.empty()) {
      cfg.audit_retention_days = std::stoi(retention);
      if (cfg.audit_retention_days < 1)
        throw std::invalid_argument("--audit-retention-days is at least 1");
    }
    if (!listen.empty()) {
      auto colon = listen.rfind(':');
      if (colon == std::string::npos) throw std::invalid_argument("--listen is HOST:PORT");
      cfg.listen_host = listen.substr(0, colon);
      int port = std::stoi(listen.substr(colon + 1));
      if (port < 0 || port > 65535) throw std::invalid_argument("--listen: the port is 0-65535");
      cfg.listen_port = static_cast<uint16_t>(port);
    }
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    std::cerr << "keyonce serve: " << (what.rfind("--", 0) == 0 ? what : "a number was expected")
              << "\n";
    return 2;
  } catch (const std::out_of_range&) {
    std::cerr << "keyonce serve: a number is out of range\n";
    return 2;
  }
  if (cfg.tokens_path.empty()) {
    if (const char* t = std::getenv("KEYONCE_TOKENS")) cfg.tokens_path = t;
  }
  if (cfg.state_path.empty()) cfg.state_path = StateStore::DefaultPath();
  if (cfg.recipes_dir.empty()) {
    std::cerr << "keyonce serve: --recipes DIR is required (or `recipes:` in --config)\n";
    return 2;
  }
  if (cfg.tls_cert.empty() != cfg.tls_key.empty()) {
    std::cerr << "keyonce serve: TLS needs both --tls-cert and --tls-key\n";
    return 2;
  }
  if (check) return service::CheckService(cfg);
  return service::RunService(cfg);
}

int TokenCommand(int argc, char** argv, int start) {
  std::string sub = start < argc ? argv[start] : "";
  if (sub.empty() || sub == "--help" || sub == "-h") {
    std::cout << kTokenHelp;
    return sub.empty() ? 2 : 0;
  }
  if (sub == "hash") {
    std::string token;
    std::getline(std::cin, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) {
      std::cerr << "keyonce token hash: give the token on standard input\n";
      return 2;
    }
    std::cout << Sha256Hex(token) << "\n";
    return 0;
  }
  if (sub != "new") {
    std::cerr << "keyonce token: unknown subcommand '" << sub << "' (new, hash)\n";
    return 2;
  }
  std::string name, role, recipe;
  std::vector<std::string> recipes;
  for (int i = start + 1; i < argc; ++i) {
    std::string a = argv[i];
    if (Value(argc, argv, i, a, "--name", &name) || Value(argc, argv, i, a, "--role", &role))
      continue;
    if (Value(argc, argv, i, a, "--recipe", &recipe)) {
      recipes.push_back(recipe);
      continue;
    }
    std::cerr << "keyonce token new: unknown option " << a << "\n";
    return 2;
  }
  if (name.empty() || (role != "admin" && role != "operator" && role != "caseworker")) {
    std::cerr
        << "keyonce token new: --name NAME and --role admin|operator|caseworker are required\n";
    return 2;
  }
  if (role == "caseworker" && recipes.empty()) {
    std::cerr << "keyonce token new: a caseworker needs at least one --recipe\n";
    return 2;
  }
  std::string token = service::NewToken();
  std::cout << token << "\n";
  std::cout << "# add to the tokens file (under `tokens:`):\n";
  std::cout << "  - name: " << name << "\n    role: " << role << "\n";
  if (!recipes.empty()) {
    std::cout << "    recipes: [";
    for (size_t i = 0; i < recipes.size(); ++i) std::cout << (i ? ", " : "") << recipes[i];
    std::cout << "]\n";
  }
  std::cout << "    sha256: " << Sha256Hex(token) << "\n";
  return 0;
}

}  // namespace keyonce
