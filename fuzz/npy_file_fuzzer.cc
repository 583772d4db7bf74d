// An uploaded .npy file: the preamble and header dict parser, the schema and the mock.
//
// An input that starts with the .npy magic is the whole file. Any other input is a header dict
// ("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"): it is parsed on its own and, when
// it describes at most 64 KiB of data, wrapped into a version 1.0 file with that much data, so
// that mutations of the dict reach the schema and the mock without breaking the header length.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "data/npy_file.h"
#include "data_fuzz.h"

namespace {

constexpr std::string_view kMagic("\x93NUMPY", 6);

// A version 1.0 file around `dict`, padded as NumPy pads it, followed by `data_bytes` bytes.
std::string WrapDict(std::string_view dict, size_t data_bytes, uint64_t seed) {
  std::string header(dict);
  size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  for (size_t i = 0; i < data_bytes; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    out += static_cast<char>(seed >> 56);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using datasite::data::Format;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.substr(0, kMagic.size()) == kMagic) {
    datasite::fuzz::FuzzDataFile(Format::kNpy, input);
    return 0;
  }
  if (input.size() > 60'000) return 0;  // a version 1.0 header holds at most 65535 bytes
  auto header = datasite::data::internal::ParseNpyHeaderDict(input);
  if (!header.ok()) return 0;
  datasite::fuzz::Check(header->data_bytes == header->count * header->item_size,
                        "data_bytes is not count * item_size");
  if (header->data_bytes > (64u << 10)) return 0;
  datasite::fuzz::FuzzDataFile(Format::kNpy,
                               WrapDict(input, header->data_bytes, datasite::fuzz::SeedOf(input)));
  return 0;
}
