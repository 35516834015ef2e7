#include "keyonce/status.h"

namespace keyonce {

const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kInvalid: return "invalid";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kTransient: return "transient";
    case Status::Code::kPermanent: return "permanent";
    case Status::Code::kIo: return "i/o";
    case Status::Code::kInternal: return "internal";
    case Status::Code::kRefused:
      return "refused";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return message_;
}

std::string ByteSize(size_t bytes) {
  constexpr size_t kMiB = 1u << 20, kKiB = 1u << 10;
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace keyonce
