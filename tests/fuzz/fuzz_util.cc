#include "tests/fuzz/fuzz_util.h"

#include <cstdlib>
#include <stdexcept>

namespace keyonce::fuzz {
namespace {

struct Dir {
  std::filesystem::path path;
  Dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/keyonce-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory");
    path = tmpl;
  }
  ~Dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

const std::filesystem::path& TempDir() {
  static Dir dir;
  return dir.path;
}

}  // namespace keyonce::fuzz
