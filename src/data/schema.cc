#include "data/schema.h"

#include "data/csv_file.h"
#include "data/file_io.h"
#include "data/json_file.h"
#include "data/npy_file.h"

namespace datasite::data {

std::optional<nlohmann::json> SchemaWithoutBytes(Format format) {
  if (format == Format::kRaw) return nlohmann::json{{"kind", "bytes"}};
  return std::nullopt;
}

Result<nlohmann::json> InferSchema(Format format, const std::string& path) {
  switch (format) {
    case Format::kCsv: {
      ASSIGN_OR_RETURN(internal::CsvProfile profile,
                       internal::ProfileCsv(path, /*track_distinct=*/false));
      return internal::CsvSchema(profile);
    }
    case Format::kNpy:
      return internal::NpySchema(path);
    case Format::kJson:
      return internal::JsonSchema(path);
    case Format::kRaw: {
      ASSIGN_OR_RETURN(internal::InputFile file, internal::InputFile::Open(path));
      return *SchemaWithoutBytes(format);
    }
  }
  return InternalError("unknown format");
}

}  // namespace datasite::data
