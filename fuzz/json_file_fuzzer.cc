// An uploaded JSON file: the streaming (SAX) schema pass and the two-pass mock.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  datasite::fuzz::FuzzDataFile(datasite::data::Format::kJson,
                               std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
