// Helpers for this module's tests: files under the test's own temporary directory, .npy builders,
// and a CSV reader. Test-only.
#ifndef DATASITE_DATA_TEST_UTIL_H_
#define DATASITE_DATA_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "data/csv_file.h"
#include "data/file_io.h"

namespace datasite::data::testing {

// A path for `name` in a directory of the running test's own, made empty when first used.
inline std::string TempPath(std::string_view name) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "datasite_data" /
                              (std::string(info->test_suite_name()) + "." + info->name());
  static std::string made;
  if (made != dir.string()) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    made = dir.string();
  }
  return (dir / name).string();
}

inline void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Writes `bytes` to a new temporary file called `name`; returns its path.
inline std::string TempFile(std::string_view name, std::string_view bytes) {
  std::string path = TempPath(name);
  WriteFile(path, bytes);
  return path;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every record of a CSV file, header first; fails the test on a parse error.
inline std::vector<std::vector<std::string>> ReadCsv(const std::string& path) {
  std::vector<std::vector<std::string>> records;
  auto file = internal::InputFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  if (!file.ok()) return records;
  internal::CsvReader reader(std::move(file).value());
  for (;;) {
    auto more = reader.Next();
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    records.emplace_back(reader.fields().begin(), reader.fields().end());
  }
  return records;
}

// "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }".
inline std::string NpyDict(std::string_view descr, std::string_view shape,
                           bool fortran_order = false) {
  return "{'descr': '" + std::string(descr) +
         "', 'fortran_order': " + (fortran_order ? "True" : "False") +
         ", 'shape': " + std::string(shape) + ", }";
}

// A .npy file as NumPy writes it: the header padded with spaces to a multiple of 64 bytes, then
// a newline, then `data`.
inline std::string NpyFile(std::string_view dict, std::string_view data, int major = 1) {
  size_t prefix = major == 1 ? 10 : 12;
  std::string header(dict);
  size_t unpadded = prefix + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < prefix - 8; ++i)
    out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  out += header;
  out += data;
  return out;
}

// The bytes of `values`, little-endian unless `big_endian`.
template <typename T>
std::string Bytes(const std::vector<T>& values, bool big_endian = false) {
  std::string out(values.size() * sizeof(T), '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    char* p = out.data() + i * sizeof(T);
    std::memcpy(p, &values[i], sizeof(T));
    if (big_endian) std::reverse(p, p + sizeof(T));
  }
  return out;
}

// The values in `bytes`, read as `Bytes` wrote them.
template <typename T>
std::vector<T> Values(std::string_view bytes, bool big_endian = false) {
  std::vector<T> out(bytes.size() / sizeof(T));
  for (size_t i = 0; i < out.size(); ++i) {
    char tmp[sizeof(T)];
    std::memcpy(tmp, bytes.data() + i * sizeof(T), sizeof(T));
    if (big_endian) std::reverse(tmp, tmp + sizeof(T));
    std::memcpy(&out[i], tmp, sizeof(T));
  }
  return out;
}

}  // namespace datasite::data::testing

#endif  // DATASITE_DATA_TEST_UTIL_H_
