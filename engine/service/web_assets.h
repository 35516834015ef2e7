// The caseworkers' page, embedded in the binary at build time from
// engine/service/web/ (see embed.cmake): no install step, no CDN.
#pragma once

#include <string_view>

namespace keyonce::service {

struct WebAsset {
  std::string_view path;          // "/static/app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;
};

// The asset at `path`, or nullptr.
const WebAsset* FindWebAsset(std::string_view path);

}  // namespace keyonce::service
