// Shared pieces of the `jsonl` and `json` connectors (sources, targets).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "keyonce/connector.h"

namespace keyonce::connectors::json {

// Number of characters (UTF-8 code points) in the first `n` bytes of `s`.
size_t CharCount(std::string_view s, size_t n);

// What the file targets write for `op`: the `body` structure evaluated
// against the op's scope, or the whole record when there is no body.
Result<Value> RenderBody(const Settings& settings, const WriteOp& op);

enum class TargetFormat { kJsonLines, kJsonArray };

Result<std::unique_ptr<Source>> MakeJsonlSource(const Settings& settings);
Result<std::unique_ptr<Source>> MakeJsonSource(const Settings& settings);
Result<std::unique_ptr<Target>> MakeFileTarget(const Settings& settings, TargetFormat format);

}  // namespace keyonce::connectors::json
