// The file formats a dataset's assets come in, and how each is named and served.
#ifndef DATASITE_DATA_FORMAT_H_
#define DATASITE_DATA_FORMAT_H_

#include <string_view>

#include "core/status.h"

namespace datasite::data {

enum class Format { kCsv, kJson, kNpy, kRaw };

// "csv", "json", "npy" or "raw" (lowercase, exactly); kInvalidArgument otherwise.
Result<Format> ParseFormat(std::string_view name);
// The inverse of ParseFormat: "csv", "json", "npy" or "raw".
std::string_view FormatName(Format format);
// The Content-Type of a download: text/csv, application/json, or application/octet-stream (npy,
// raw).
std::string_view ContentType(Format format);

}  // namespace datasite::data

#endif  // DATASITE_DATA_FORMAT_H_
