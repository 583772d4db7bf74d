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

Result<nlohmann::json> GenerateMock(Format format, const std::string& in_path,
                                    const std::string& out_path, uint64_t seed) {
  if (format == Format::kRaw) {
    return FailedPreconditionError("a mock can't be generated for raw bytes; upload one");
  }
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
      schema = internal::WriteCsvMock(in_path, seed, out);
      break;
    case Format::kNpy:
      schema = internal::WriteNpyMock(in_path, seed, out);
      break;
    case Format::kJson:
      schema = internal::WriteJsonMock(in_path, seed, out);
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
