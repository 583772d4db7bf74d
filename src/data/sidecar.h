// Typed sidecars: the small JSON document beside a CSV that says what CSV can't (each column's
// dtype, the index, Series or DataFrame, categories, time zones, how missing cells are written), so
// that a pandas object comes back exactly (docs/API.md, "Typed sidecars"). The client and the
// sandbox's runner write and read them (python/datasite/_sidecar.py); the server only keeps them
// beside their CSV and checks their shape here: it never interprets one.
#ifndef DATASITE_DATA_SIDECAR_H_
#define DATASITE_DATA_SIDECAR_H_

#include <cstddef>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace datasite::data {

// A sidecar's JSON text may not be longer than this.
inline constexpr size_t kMaxSidecarBytes = size_t{256} << 10;

// Parses `text` as a sidecar and checks it: a JSON object of exactly the documented keys, version
// "pandas/1", a known dtype for every column, bounded nesting, at most 10,000 columns, and — when
// `csv_columns` is given — as many index levels and columns as the CSV has columns.
// kInvalidArgument, naming what is wrong, otherwise. Thread-safe (no state).
Result<nlohmann::json> ParseSidecar(std::string_view text, std::optional<size_t> csv_columns);

}  // namespace datasite::data

#endif  // DATASITE_DATA_SIDECAR_H_
