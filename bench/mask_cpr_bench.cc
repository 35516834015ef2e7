// How fast MaskCpr is: it runs on every log line, error message and
// run history entry. Builds 64 MiB of log-like text (timestamps, counts, ids,
// JSON replies, one line in a hundred with a CPR number in some spelling),
// masks it five times and prints the best run in MB/s. Asserts nothing.
//
//   cmake --build build --target keyonce_mask_bench && build/engine/keyonce_mask_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "state/privacy.h"

int main() {
  const std::vector<std::string> lines = {
      "2026-05-01T02:12:33Z info  run 42 of sick-leave-to-payroll: record ref-bcdfghjkmnpq written "
      "to payroll (HTTP 201, 12 ms)\n",
      "2026-05-01T02:12:34Z warn  writing record 1873 to cases: HTTP 422 from "
      "https://cases.example.dk/api/v2/cases: {\"error\":\"validation "
      "failed\",\"field\":\"title\"}\n",
      "2026-05-01T02:12:35Z info  batch 17: 10000 records read, 9987 written, 13 unchanged, "
      "made a text of 1048576000 bytes in 4.25 s\n",
      "{\"id\":\"4711\",\"amount\":\"1.110,00\",\"from\":\"01-05-2026\",\"to\":\"31-05-2026\","
      "\"employee_no\":\"20394\",\"cost_centre\":\"6120\",\"position\":\"pædagog\"}\n",
      "2026-05-01T02:12:36Z error writing record 1874 to journal: UNIQUE constraint failed: "
      "notes.case_id (SQLITE_CONSTRAINT 2067)\n",
  };
  const std::vector<std::string> cprs = {"010185-1233",   "0101851233",  "010185 1233",
                                         "01.01.85-1233", "010185.1233", "01-01-85 1233"};
  std::string text;
  const size_t target = 64u << 20;
  for (size_t i = 0; text.size() < target; ++i) {
    text += lines[i % lines.size()];
    if (i % 100 == 99) text += "person " + cprs[(i / 100) % cprs.size()] + " is not known\n";
  }
  double best = 0;
  size_t masked = 0;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    std::string out = keyonce::MaskCpr(text);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, text.size() / s / 1e6);
    masked = static_cast<size_t>(std::count(out.begin(), out.end(), 'x'));
  }
  std::printf("MaskCpr: %.0f MB/s on %.0f MB of log-like text (%zu x in the output)\n", best,
              text.size() / 1e6, masked);
  return 0;
}
