// A typed sidecar through data::ParseSidecar, with and without a CSV column count. Checks that an
// accepted sidecar is a JSON object of the documented top-level keys, version "pandas/1", and as
// many columns as it was told the CSV has.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "data/sidecar.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using datasite::fuzz::Check;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The first byte, when there is one, is the column count the CSV claims.
  std::optional<size_t> columns;
  if (!text.empty() && static_cast<unsigned char>(text[0]) < 0x20) {
    columns = static_cast<unsigned char>(text[0]);
    text.remove_prefix(1);
  }
  auto doc = datasite::data::ParseSidecar(text, columns);
  if (!doc.ok()) return 0;
  Check(text.size() <= datasite::data::kMaxSidecarBytes, "an oversized sidecar was accepted");
  Check(doc->is_object() && (*doc)["datasite"] == "pandas/1", "a sidecar of another version");
  Check((*doc)["kind"] == "frame" || (*doc)["kind"] == "series", "a sidecar of another kind");
  if (columns) {
    size_t described = (*doc)["columns"].size();
    const auto& index = (*doc)["index"];
    if (index.contains("levels")) described += index["levels"].size();
    Check(described == *columns, "a sidecar that does not fit its CSV was accepted");
  }
  return 0;
}
