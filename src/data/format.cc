#include "data/format.h"

#include <string>

namespace datasite::data {

Result<Format> ParseFormat(std::string_view name) {
  if (name == "csv") return Format::kCsv;
  if (name == "json") return Format::kJson;
  if (name == "npy") return Format::kNpy;
  if (name == "raw") return Format::kRaw;
  std::string shown(name.substr(0, 40));
  return InvalidArgumentError("unknown format '" + shown + "': use csv, json, npy or raw");
}

std::string_view FormatName(Format format) {
  switch (format) {
    case Format::kCsv:
      return "csv";
    case Format::kJson:
      return "json";
    case Format::kNpy:
      return "npy";
    case Format::kRaw:
      return "raw";
  }
  return "raw";
}

std::string_view ContentType(Format format) {
  switch (format) {
    case Format::kCsv:
      return "text/csv";
    case Format::kJson:
      return "application/json";
    case Format::kNpy:
    case Format::kRaw:
      return "application/octet-stream";
  }
  return "application/octet-stream";
}

}  // namespace datasite::data
