// Status and Result: the one error model across the engine/connector boundary.
//
// A Status is either OK or carries a code and a message. The code tells the
// engine what to do with a failed record: kTransient errors are retried with
// backoff, kPermanent errors quarantine the record at once, everything else is
// a configuration or run failure. Messages are sentences without personal data
// or secret values: never put a record's field values into a message.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace keyonce {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalid,    // bad configuration or bad input (a recipe, a parameter, a record)
    kNotFound,   // a file, table, key or row that does not exist
    kTransient,  // may succeed when tried again (timeout, busy, 503)
    kPermanent,  // will fail the same way every time (constraint, 400)
    kIo,         // reading or writing a local file or database failed
    kInternal,   // a bug in keyonce
    kRefused,    // a guard refused to start: the recipe runs elsewhere, or the state file
                 // does not belong to the targets; nothing was written
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status Invalid(std::string msg) { return Status(Code::kInvalid, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Transient(std::string msg) { return Status(Code::kTransient, std::move(msg)); }
  static Status Permanent(std::string msg) { return Status(Code::kPermanent, std::move(msg)); }
  static Status Io(std::string msg) { return Status(Code::kIo, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  static Status Refused(std::string msg) { return Status(Code::kRefused, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsTransient() const { return code_ == Code::kTransient; }

  // Returns a copy whose message is "context: message" (gerund prefix style:
  // "writing record 42 to payroll: ...").
  Status Wrap(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }
  // The same code with another message (an OK status stays OK).
  Status WithMessage(std::string msg) const {
    if (ok()) return *this;
    return Status(code_, std::move(msg));
  }
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Status::Code code);

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}      // NOLINT: must not be OK
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

// "16 MiB", "2 KiB" or "1000 bytes", for messages about size limits.
std::string ByteSize(size_t bytes);

}  // namespace keyonce

#define KEYONCE_RETURN_IF_ERROR(expr)   \
  do {                                  \
    ::keyonce::Status _st = (expr);     \
    if (!_st.ok()) return _st;          \
  } while (0)
