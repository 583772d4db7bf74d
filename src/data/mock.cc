#include "data/mock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "data/csv_file.h"
#include "data/file_io.h"
#include "data/json_file.h"
#include "data/npy_file.h"

namespace datasite::data {

namespace {

// Refuses parameters that belong to another format than `format`.
Status CheckParamsFitFormat(Format format, const MockParams& params) {
  const char* csv = "applies to CSV tables only";
  const char* json = "applies to JSON documents only";
  if (params.columns && format != Format::kCsv) {
    return InvalidArgumentError(std::string("columns: ") + csv + "; this asset is " +
                                std::string(FormatName(format)));
  }
  if (params.paths && format != Format::kJson) {
    return InvalidArgumentError(std::string("paths: ") + json + "; this asset is " +
                                std::string(FormatName(format)));
  }
  if (params.public_keys && format != Format::kJson) {
    return InvalidArgumentError(std::string("public_keys: ") + json + "; this asset is " +
                                std::string(FormatName(format)));
  }
  if (params.values && format != Format::kNpy) {
    return InvalidArgumentError("values: applies to .npy arrays only; this asset is " +
                                std::string(FormatName(format)));
  }
  return Status::Ok();
}

}  // namespace

Result<nlohmann::json> GenerateMock(Format format, const std::string& in_path,
                                    const std::string& out_path, const MockParams& params,
                                    uint64_t seed) {
  if (format == Format::kRaw) {
    return FailedPreconditionError("a mock can't be generated for raw bytes; upload one");
  }
  RETURN_IF_ERROR(CheckParamsFitFormat(format, params));
  struct stat in_stat, out_stat;
  if (::stat(in_path.c_str(), &in_stat) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return NotFoundError("the file to read does not exist");
    return InternalError("reading " + in_path + ": " + std::strerror(errno));
  }
  if (::stat(out_path.c_str(), &out_stat) == 0 && in_stat.st_dev == out_stat.st_dev &&
      in_stat.st_ino == out_stat.st_ino) {
    return InternalError("a mock may not overwrite the file it is made from: " + in_path);
  }

  ASSIGN_OR_RETURN(internal::OutputFile out, internal::OutputFile::Create(out_path));
  Result<nlohmann::json> schema = InternalError("unknown format");
  switch (format) {
    case Format::kCsv:
      schema = internal::WriteCsvMock(in_path, params, seed, out);
      break;
    case Format::kNpy:
      schema = internal::WriteNpyMock(in_path, params, seed, out);
      break;
    case Format::kJson:
      schema = internal::WriteJsonMock(in_path, params, seed, out);
      break;
    case Format::kRaw:
      break;
  }
  Status closed = out.Close();
  if (!schema.ok() || !closed.ok()) {
    ::unlink(out_path.c_str());
    return schema.ok() ? closed : schema.status();
  }
  return schema;
}

}  // namespace datasite::data
