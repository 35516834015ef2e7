// Personal data and secrets out of every output.
//
// Redactor masks CPR numbers (in every spelling cpr::FindInText knows, each
// standing alone and with a possible birth date) and removes known secret
// values from any text before it is printed, logged or stored in run history.
// Pseudonymizer turns a record key into a stable pseudonymous reference (a
// keyed hash) that a person can use to find the record again without the key
// itself appearing anywhere.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyonce/privacy.h"

namespace keyonce {

class Redactor {
 public:
  // Secret values shorter than 4 characters are not searched for (too many
  // false hits); they should not exist.
  void AddSecret(std::string value);
  // MaskCpr (keyonce/privacy.h), then the secrets.
  std::string Apply(std::string_view text) const;

 private:
  std::vector<std::string> secrets_;
};

// 16-byte digests.
using Digest = std::array<uint8_t, 16>;

class Pseudonymizer {
 public:
  explicit Pseudonymizer(std::string key);
  ~Pseudonymizer();
  Pseudonymizer(const Pseudonymizer&) = delete;
  Pseudonymizer& operator=(const Pseudonymizer&) = delete;
  // Keyed hash of (scope, key): the journal's record identity.
  Digest KeyHash(std::string_view scope, std::string_view key);
  // "ref-" + 12 letters (48 bits of KeyHash, no digits): what people see.
  static std::string Reference(const Digest& d);
  // A reference's 48 bits, and back (a compact form for storage); nullopt
  // for text that is not a reference.
  static std::optional<uint64_t> ReferenceBits(std::string_view reference);
  static std::string ReferenceOfBits(uint64_t bits);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Unkeyed content hash (SHA-256, first 16 bytes).
class ContentHasher {
 public:
  ContentHasher();
  ~ContentHasher();
  ContentHasher(const ContentHasher&) = delete;
  ContentHasher& operator=(const ContentHasher&) = delete;
  Digest Hash(std::string_view data);

 private:
  void* ctx_;
};

std::string RandomHex(size_t bytes);  // from the OS's CSPRNG (OpenSSL RAND_bytes)
std::string Sha256Hex(std::string_view data);
std::string Hex(const uint8_t* data, size_t n);

}  // namespace keyonce
