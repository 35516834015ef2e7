// Fuzzes JSON paths: the first line is the path, the rest a JSON document.
// Parsing the path either succeeds or gives an error; selecting from any
// document never fails, and SelectOne is the first of Select.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "connectors/common/net/json_path.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return -1;
  auto [path_text, doc] = keyonce::fuzz::SplitLine(keyonce::fuzz::AsText(data, size));
  auto path = keyonce::connectors::net::JsonPath::Parse(path_text);
  if (!path.ok()) {
    if (path.status().message().empty()) __builtin_trap();
    return 0;
  }
  boost::system::error_code ec;
  keyonce::Value root = boost::json::parse(doc, ec);
  if (ec) root = keyonce::Value(std::string(doc));  // a string root: selects nothing or itself
  auto all = path->Select(root);
  const keyonce::Value* one = path->SelectOne(root);
  if (all.empty() ? one != nullptr : one != all.front()) __builtin_trap();
  if (path->IsRoot() && (all.size() != 1 || all.front() != &root)) __builtin_trap();
  // Re-parsing what was written gives the same selection.
  auto again = keyonce::connectors::net::JsonPath::Parse(path->text());
  if (!again.ok() || again->Select(root) != all) __builtin_trap();
  return 0;
}
