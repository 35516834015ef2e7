// KEYONCE_ASAN / KEYONCE_TSAN are defined when the build runs under
// AddressSanitizer / ThreadSanitizer: gcc says so with __SANITIZE_ADDRESS__ /
// __SANITIZE_THREAD__, clang (the sanitizer build, .ci/asan-build.sh) only
// through __has_feature. Tests that measure memory (RSS) or limit the address
// space skip that part under a sanitizer, whose shadow memory and quarantine
// of freed blocks are resident too.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define KEYONCE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEYONCE_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define KEYONCE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KEYONCE_TSAN 1
#endif
#endif
