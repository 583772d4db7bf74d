// Helpers shared by the fuzz targets: a private scratch directory, file writing, and a check that
// reports a broken invariant as a crash (so that libFuzzer keeps the input). Fuzzing only.
#ifndef DATASITE_FUZZ_FUZZ_UTIL_H_
#define DATASITE_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace datasite::fuzz {

// Whether `s` is valid UTF-8: what nlohmann::json can print as a string (the server's JSON answers
// carry text only when it is).
inline bool ValidUtf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

// Aborts with `what` when `ok` is false: libFuzzer then saves the input as a crash.
inline void Check(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// A directory of this process's own, made at first use and removed at exit: on /dev/shm when
// there is one (the targets write a file per input), else under $TMPDIR or /tmp.
inline const std::string& ScratchDir() {
  // Never destroyed: the exit handler that removes the directory runs after static destructors.
  static const std::string* dir = [] {
    std::string base = "/tmp";
    if (const char* t = std::getenv("TMPDIR"); t && *t) base = t;
    if (std::filesystem::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0)
      base = "/dev/shm";
    auto* path = new std::string(base + "/datasite-fuzz-XXXXXX");
    Check(::mkdtemp(path->data()) != nullptr, "cannot make a scratch directory");
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return path;
  }();
  return *dir;
}

// Writes `bytes` to `path`, replacing it.
inline void WriteFile(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  Check(f != nullptr, "cannot create a scratch file");
  size_t n = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  Check(n == bytes.size() && std::fclose(f) == 0, "cannot write a scratch file");
}

// FNV-1a of the input: a mock seed that differs between inputs but not between runs.
inline uint64_t SeedOf(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace datasite::fuzz

#endif  // DATASITE_FUZZ_FUZZ_UTIL_H_
