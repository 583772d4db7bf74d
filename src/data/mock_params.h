// The owner's parameters of a generated mock: everything a mock shows beyond the structure of the
// private file (column names and types, a JSON document's shape of types, an array's dtype and
// trailing dimensions) comes from here, or from defaults that do not depend on the private data.
#ifndef DATASITE_DATA_MOCK_PARAMS_H_
#define DATASITE_DATA_MOCK_PARAMS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace datasite::data {

// Defaults, none of which depends on the private data.
inline constexpr uint64_t kDefaultMockRows = 100;  // CSV rows, the top-level JSON array, npy rows
inline constexpr uint64_t kDefaultMockLength = 3;  // other JSON arrays, synthetic JSON keys
inline constexpr uint64_t kSyntheticLabels = 10;   // "<name>_1" .. "<name>_10"
inline constexpr int64_t kDefaultIntMin = 0;       // integers: [0, 100]
inline constexpr int64_t kDefaultIntMax = 100;
inline constexpr double kDefaultRealMin = 0;  // floats: [0, 1]
inline constexpr double kDefaultRealMax = 1;
// Limits on what an owner may ask for.
inline constexpr uint64_t kMaxMockRows = 1'000'000;
inline constexpr uint64_t kMaxMockCategories = 10'000;
inline constexpr size_t kMaxMockCategoryBytes = 1000;
inline constexpr size_t kMaxMockSpecs = 10'000;          // entries of "columns" or "paths"
inline constexpr uint64_t kMaxMockBytes = 256ull << 20;  // the generated file

// Public bounds of a number column: both given, min <= max, finite.
struct MockBounds {
  bool integers = false;  // Both were JSON integers (then imin/imax hold them).
  int64_t imin = 0;
  int64_t imax = 0;
  double min = 0;
  double max = 0;
};

// What the owner declares about one CSV column, JSON path or the values of an array.
struct MockValueParams {
  std::optional<MockBounds> bounds;                       // "min" and "max"
  std::optional<std::vector<nlohmann::json>> categories;  // strings, numbers or booleans
  double null_fraction = 0;                               // chance of an empty cell / null / NaN
  std::optional<uint64_t> length;  // JSON: array length, or count of synthetic keys
};

// The parameter document, e.g.
//   {"rows": 500, "seed": 7,
//    "columns": {"age": {"min": 0, "max": 120, "null_fraction": 0.1},
//                "sex": {"categories": ["F", "M"]}},        (CSV)
//    "public_keys": ["/*"], "paths": {"/*/age": {"min": 0, "max": 120}},   (JSON)
//    "values": {"min": -1, "max": 1}}                       (npy)
// JSON paths are JSON Pointers (RFC 6901) in which "*" stands for every element of an array and
// for every value of an object whose keys are not public; "" is the top-level value.
struct MockParams {
  std::optional<uint64_t> rows;
  std::optional<uint64_t> seed;
  std::optional<std::map<std::string, MockValueParams>> columns;
  std::optional<std::map<std::string, MockValueParams>> paths;
  std::optional<std::vector<std::string>> public_keys;
  std::optional<MockValueParams> values;
};

// Reads a parameter document strictly. kInvalidArgument naming the field for anything else: an
// unknown field, a wrong type, a number out of range, min without max or min > max, bounds beside
// categories, an empty or too long category list, a malformed path. `doc` null means {}.
Result<MockParams> ParseMockParams(const nlohmann::json& doc);

}  // namespace datasite::data

#endif  // DATASITE_DATA_MOCK_PARAMS_H_
