// An uploaded CSV file: the RFC 4180 reader, column type inference, the schema and the mock.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  datasite::fuzz::FuzzDataFile(datasite::data::Format::kCsv,
                               std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
