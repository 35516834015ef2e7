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
std::string ReadFile(const std::filesystem::path& p);
void WriteFile(const std::filesystem::path& p, const std::string& text);
std::filesystem::path FreshDir(const std::string& name);
// One query's single integer result.
long long QueryInt(const std::filesystem::path& db, const std::string& sql);

}  // namespace keyonce::testing_util
