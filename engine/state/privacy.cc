#include "state/privacy.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <stdexcept>

#include "template/cpr.h"

namespace keyonce {

void Redactor::AddSecret(std::string value) {
  if (value.size() >= 4) secrets_.push_back(std::move(value));
}

std::string Redactor::Apply(std::string_view text) const {
  std::string out = MaskCpr(text);
  for (const auto& s : secrets_) {
    size_t pos = 0;
    while ((pos = out.find(s, pos)) != std::string::npos) {
      out.replace(pos, s.size(), "[secret]");
      pos += 8;
    }
  }
  return out;
}

struct Pseudonymizer::Impl {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
  std::string key;
};

Pseudonymizer::Pseudonymizer(std::string key) : impl_(std::make_unique<Impl>()) {
  impl_->key = std::move(key);
  impl_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!impl_->mac) throw std::runtime_error("OpenSSL has no HMAC");
  impl_->ctx = EVP_MAC_CTX_new(impl_->mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!EVP_MAC_init(impl_->ctx, reinterpret_cast<const unsigned char*>(impl_->key.data()),
                    impl_->key.size(), params)) {
    throw std::runtime_error("cannot initialise HMAC");
  }
}

Pseudonymizer::~Pseudonymizer() {
  EVP_MAC_CTX_free(impl_->ctx);
  EVP_MAC_free(impl_->mac);
}

Digest Pseudonymizer::KeyHash(std::string_view scope, std::string_view key) {
  // Re-initialising with a null key keeps the key and resets the state.
  EVP_MAC_init(impl_->ctx, nullptr, 0, nullptr);
  EVP_MAC_update(impl_->ctx, reinterpret_cast<const unsigned char*>(scope.data()), scope.size());
  const unsigned char sep = 0;
  EVP_MAC_update(impl_->ctx, &sep, 1);
  EVP_MAC_update(impl_->ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  unsigned char out[64];
  size_t len = 0;
  EVP_MAC_final(impl_->ctx, out, &len, sizeof out);
  Digest d{};
  std::memcpy(d.data(), out, d.size());
  return d;
}

std::string Hex(const uint8_t* data, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kHex[data[i] >> 4]);
    s.push_back(kHex[data[i] & 15]);
  }
  return s;
}

namespace {
// Letters only, four bits each: a reference never contains a run of digits,
// so it can never look like (or be masked as) a CPR number.
constexpr const char* kReferenceLetters = "bcdfghjkmnpqrstv";
}  // namespace

std::string Pseudonymizer::Reference(const Digest& d) {
  uint64_t bits = 0;
  for (size_t i = 0; i < 6; ++i) bits = bits << 8 | d[i];
  return ReferenceOfBits(bits);
}

std::string Pseudonymizer::ReferenceOfBits(uint64_t bits) {
  std::string s = "ref-";
  for (int shift = 44; shift >= 0; shift -= 4) s.push_back(kReferenceLetters[(bits >> shift) & 15]);
  return s;
}

std::optional<uint64_t> Pseudonymizer::ReferenceBits(std::string_view ref) {
  // Each letter's four bits, -1 for any other byte (one audit row each: a table).
  static constexpr auto kValue = [] {
    std::array<int8_t, 256> v{};
    v.fill(-1);
    for (int i = 0; i < 16; ++i) v[static_cast<unsigned char>(kReferenceLetters[i])] = int8_t(i);
    return v;
  }();
  if (ref.size() != 16 || std::memcmp(ref.data(), "ref-", 4) != 0) return std::nullopt;
  uint64_t bits = 0;
  for (char c : ref.substr(4)) {
    const int8_t v = kValue[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    bits = bits << 4 | static_cast<uint64_t>(v);
  }
  return bits;
}

namespace {
// Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up per call.
const EVP_MD* Sha256() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
}  // namespace

ContentHasher::ContentHasher() : ctx_(EVP_MD_CTX_new()) {}
ContentHasher::~ContentHasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

Digest ContentHasher::Hash(std::string_view data) {
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  EVP_DigestInit_ex(ctx, Sha256(), nullptr);
  EVP_DigestUpdate(ctx, data.data(), data.size());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, out, &len);
  Digest d{};
  std::memcpy(d.data(), out, d.size());
  return d;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, Sha256(), nullptr);
  return Hex(out, len);
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  return Hex(reinterpret_cast<const uint8_t*>(raw.data()), bytes);
}

}  // namespace keyonce
