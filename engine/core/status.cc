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
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return message_;
}

}  // namespace keyonce
