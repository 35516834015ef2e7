// The time stamps keyonce writes (run history, quarantine, logs).
#pragma once

#include <ctime>
#include <string>

namespace keyonce {

// Now, in UTC, as ISO 8601 to the second: "2026-11-26T22:19:32Z".
inline std::string UtcTimestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace keyonce
