// Helpers for tests that run the keyonce binary.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace keyonce::testing_util {

struct Output {
  int exit_code = -1;
  std::string out, err;
  std::string all() const { return out + err; }
};

std::string Binary();
// Runs keyonce with args in `cwd`, extra environment variables added.
Output Keyonce(const std::vector<std::string>& args, const std::filesystem::path& cwd,
               const std::map<std::string, std::string>& env = {});
// Starts keyonce in the background with output discarded; returns its pid.
pid_t Spawn(const std::vector<std::string>& args, const std::filesystem::path& cwd);

// keyonce started in the background with its output kept in files of `cwd`
// named after `tag` (so that several can run in one folder at once).
struct Background {
  pid_t pid = -1;
  std::filesystem::path out, err;
};
Background StartKeyonce(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                        const std::string& tag, const std::map<std::string, std::string>& env = {});
// Waits for its exit (killing it after `timeout_seconds`) and collects its output.
Output Finish(const Background& b, int timeout_seconds = 120);
// Waits until the file contains `text` (true) or `timeout_seconds` pass (false).
bool WaitForText(const std::filesystem::path& file, const std::string& text,
                 int timeout_seconds = 60);
std::string ReadFile(const std::filesystem::path& p);
void WriteFile(const std::filesystem::path& p, const std::string& text);
std::filesystem::path FreshDir(const std::string& name);
// One query's single integer result.
long long QueryInt(const std::filesystem::path& db, const std::string& sql);

}  // namespace keyonce::testing_util
