// For tests only: whether a file is open with O_DIRECT in this process.
#ifndef DATASITE_BLOB_O_DIRECT_TEST_UTIL_H_
#define DATASITE_BLOB_O_DIRECT_TEST_UTIL_H_

#include <fcntl.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace datasite::blob {

// Whether some descriptor of this process is open on `path` with O_DIRECT.
inline bool OpenWithODirect(const std::string& path) {
  namespace fs = std::filesystem;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (fs::read_symlink(e.path(), ec).string() != path) continue;
    std::ifstream info("/proc/self/fdinfo/" + e.path().filename().string());
    std::string key;
    while (info >> key) {
      if (key == "flags:") {
        std::string octal;
        info >> octal;
        return (std::stol(octal, nullptr, 8) & O_DIRECT) != 0;
      }
    }
  }
  return false;
}

}  // namespace datasite::blob

#endif  // DATASITE_BLOB_O_DIRECT_TEST_UTIL_H_
