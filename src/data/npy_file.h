// NumPy .npy files (format versions 1.0, 2.0 and 3.0): the header, the schema, the mock.
#ifndef DATASITE_DATA_NPY_FILE_H_
#define DATASITE_DATA_NPY_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/file_io.h"
#include "data/mock_params.h"

namespace datasite::data::internal {

// The header of a .npy file may not be longer than this (NumPy itself writes a few hundred bytes).
inline constexpr uint32_t kMaxNpyHeaderBytes = 1 << 20;

enum class NpyElement {
  kBool,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kFloat32,
  kFloat64,
  // float16, complex, fixed-size strings (unicode 'U', bytes 'S'), raw bytes 'V' and structured
  // records: mocks of these are zero-filled (empty strings, zeros), their values never drawn.
  kOpaque,
};

struct NpyHeader {
  std::string descr;  // As written, e.g. "<f8", or a structured dtype's list "[('a', '<i4')]".
  bool structured = false;  // descr is a list of fields, written without quotes
  NpyElement element = NpyElement::kFloat64;
  uint64_t item_size = 8;  // Bytes per element, at least 1.
  bool swap = false;       // Whether the bytes are in the other order than this machine's.
  bool fortran_order = false;
  std::vector<uint64_t> shape;
  uint64_t count = 1;       // Elements: the product of the shape (1 for a 0-d array).
  uint64_t data_bytes = 0;  // count * item_size.
};

// Parses the header's dictionary, e.g. "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4),
// }". kInvalidArgument when it is malformed, or its dtype is an object one (pickles) or otherwise
// unsupported (supported, in either byte order: bool, int8..int64, uint8..uint64, float16..float64,
// complex64, complex128, datetime64 and timedelta64 of any unit, unicode 'U<n>', bytes 'S<n>', raw
// 'V<n>', and structured dtypes of these, nested at most 8 deep, without titles).
Result<NpyHeader> ParseNpyHeaderDict(std::string_view text);

// Reads the preamble of `file` (magic, version, header length, header) into `preamble` and parses
// it, leaving `file` at the first byte of the data. kInvalidArgument when it is not a .npy file or
// the file's size is not exactly the preamble plus the data the header describes.
Result<NpyHeader> ReadNpyHeader(InputFile& file, std::string& preamble);

// {"kind": "array", "dtype": "<f8", "shape": [3, 4]}.
Result<nlohmann::json> NpySchema(const std::string& path);

// Writes a mock of the .npy file at `in_path` to `out`, which the caller closes; returns its
// schema. Reads only the private file's header (see GenerateMock).
Result<nlohmann::json> WriteNpyMock(const std::string& in_path, const MockParams& params,
                                    uint64_t seed, OutputFile& out);

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_NPY_FILE_H_
