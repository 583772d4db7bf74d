#include "cli/dataset_commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/http_client.h"
#include "cli/session.h"

namespace datasite::cli {
namespace {

using nlohmann::json;

// Uploads of larger files show their progress (when stderr is a terminal).
constexpr uint64_t kProgressMinBytes = uint64_t{16} << 20;
constexpr int64_t kPageSize = 100;
constexpr size_t kMaxDescriptionFileBytes = 1 << 20;
constexpr size_t kSummaryColumnChars = 60;

// What the command line said; filled by CLI11 during parse. Each field belongs to the one
// subcommand that is parsed.
struct Flags {
  CLI::App* dataset = nullptr;
  CLI::App* list = nullptr;
  CLI::App* show = nullptr;
  CLI::App* upload = nullptr;
  CLI::App* download_mock = nullptr;
  CLI::App* remove = nullptr;

  ConnectionFlags connection;  // on every dataset command

  bool json = false;
  bool yes = false;
  std::string search;
  std::string name;  // the dataset
  std::string asset;
  std::string output;

  // upload
  std::vector<std::string> assets;
  std::vector<std::string> contributors;
  std::string summary;
  std::string description;
  std::string description_file;
  std::string citation;
  std::string dataset_url;
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

std::string HumanBytes(int64_t n) {
  if (n < 1024) return std::to_string(n) + " B";
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int unit = -1;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  return buf;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The upload format of a file, from its extension.
std::string FormatOfPath(const std::string& path) {
  std::string lower(path);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* f : {"csv", "json", "npy"}) {
    if (EndsWith(lower, std::string(".") + f)) return f;
  }
  return "raw";
}

std::string ContentTypeOf(const std::string& format) {
  if (format == "csv") return "text/csv";
  if (format == "json") return "application/json";
  return "application/octet-stream";
}

std::string DatasetTarget(const std::string& id_or_name) {
  return "/api/v1/datasets/" + UrlEncode(id_or_name);
}

Result<json> GetDataset(Session& s, const std::string& id_or_name) {
  return s.Call("GET", DatasetTarget(id_or_name));
}

// ---------------------------------------------------------------------------------------------
// list and show

Status List(Session& s, const Flags& f) {
  json first;
  json items = json::array();
  for (int64_t page = 1;; ++page) {
    std::string target =
        "/api/v1/datasets?page=" + std::to_string(page) + "&page_size=" + std::to_string(kPageSize);
    if (!f.search.empty()) target += "&search=" + UrlEncode(f.search);
    ASSIGN_OR_RETURN(json answer, s.Call("GET", target));
    const json& page_items = Field(answer, "items");
    if (!page_items.is_array()) return InternalError("the dataset list has no items");
    for (const auto& item : page_items) items.push_back(item);
    if (page == 1) first = answer;
    if (page_items.empty() || static_cast<int64_t>(items.size()) >= Int(answer, "total")) break;
  }
  if (f.json) {
    first["items"] = items;
    if (static_cast<int64_t>(items.size()) > kPageSize) first["page_size"] = items.size();
    std::cout << Dump(first) << std::endl;
    return Status::Ok();
  }
  size_t name_width = 4;
  for (const auto& d : items) name_width = std::max(name_width, Str(d, "name").size());
  std::printf("%-*s  %6s  %-20s  %s\n", static_cast<int>(name_width), "NAME", "ASSETS", "UPDATED",
              "SUMMARY");
  for (const auto& d : items) {
    size_t assets = Field(d, "assets").is_array() ? Field(d, "assets").size() : 0;
    std::printf("%-*s  %6zu  %-20s  %s\n", static_cast<int>(name_width), Str(d, "name").c_str(),
                assets, Str(d, "updated_at").c_str(),
                OneLine(Str(d, "summary"), kSummaryColumnChars).c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

std::string DescribeSchema(const json& schema) {
  std::string kind = Str(schema, "kind");
  if (kind == "table") {
    std::string out = "table";
    if (Field(schema, "rows").is_number())
      out += ", " + std::to_string(Int(schema, "rows")) + " rows";
    const json& columns = Field(schema, "columns");
    if (columns.is_array()) out += ", " + std::to_string(columns.size()) + " columns";
    return out;
  }
  if (kind == "array") {
    std::string out = "array, dtype " + Str(schema, "dtype");
    const json& shape = Field(schema, "shape");
    if (shape.is_array()) out += ", shape " + shape.dump();
    return out;
  }
  if (kind == "json") {
    std::string out = "json " + Str(schema, "type");
    if (Field(schema, "length").is_number())
      out += ", length " + std::to_string(Int(schema, "length"));
    return out;
  }
  if (kind == "bytes") return "bytes";
  return schema.is_null() ? "unknown" : Dump(schema);
}

void PrintDataset(const json& d) {
  auto line = [](const char* label, const std::string& value) {
    std::printf("%-14s%s\n", label, value.c_str());
  };
  line("Name:", Str(d, "name"));
  line("Summary:", Str(d, "summary"));
  const json& uploader = Field(d, "uploader");
  std::string by = Str(uploader, "name");
  if (!Str(uploader, "email").empty()) by += " <" + Str(uploader, "email") + ">";
  if (!by.empty()) line("Uploaded by:", Trim(by));
  line("Created:", Str(d, "created_at"));
  line("Updated:", Str(d, "updated_at"));
  if (!Str(d, "citation").empty()) line("Citation:", Str(d, "citation"));
  if (!Str(d, "url").empty()) line("URL:", Str(d, "url"));
  line("ID:", Str(d, "id"));

  const json& contributors = Field(d, "contributors");
  if (contributors.is_array() && !contributors.empty()) {
    std::printf("Contributors:\n");
    for (const auto& c : contributors) {
      std::string text = Str(c, "name");
      if (!Str(c, "email").empty()) text += " <" + Str(c, "email") + ">";
      if (!Str(c, "role").empty()) text += ", " + Str(c, "role");
      std::printf("  %s\n", text.c_str());
    }
  }
  std::string description = Str(d, "description");
  if (!description.empty()) {
    std::printf("Description:\n");
    std::istringstream in(description);
    for (std::string l; std::getline(in, l);) std::printf("  %s\n", l.c_str());
  }

  const json& assets = Field(d, "assets");
  size_t count = assets.is_array() ? assets.size() : 0;
  std::printf("\nAssets (%zu):\n", count);
  if (!assets.is_array()) return;
  for (const auto& a : assets) {
    std::printf("\n  %s\n", Str(a, "name").c_str());
    auto field = [](const char* label, const std::string& value) {
      std::printf("    %-14s%s\n", label, value.c_str());
    };
    if (!Str(a, "description").empty()) field("Description:", OneLine(Str(a, "description"), 200));
    field("Format:", Str(a, "format"));
    if (Field(a, "has_mock").is_boolean() && Field(a, "has_mock").get<bool>()) {
      int64_t size = Int(a, "mock_size");
      std::string mock = HumanBytes(size) + " (" + std::to_string(size) + " bytes)";
      if (Field(a, "mock_is_real").is_boolean() && Field(a, "mock_is_real").get<bool>()) {
        mock += ", the real data";
      }
      if (Field(a, "mock_needs_regeneration").is_boolean() &&
          Field(a, "mock_needs_regeneration").get<bool>()) {
        mock +=
            "; WARNING: generated by an earlier datasite, it may reveal private data: "
            "generate it anew";
      }
      field("Mock:", mock);
    } else {
      field("Mock:", "empty");
    }
    if (Field(a, "data_size").is_number()) {
      int64_t size = Int(a, "data_size");
      field("Private data:", HumanBytes(size) + " (" + std::to_string(size) + " bytes)");
    }
    const json& schema = Field(a, "schema");
    field("Schema:", DescribeSchema(schema));
    const json& columns = Field(schema, "columns");
    if (columns.is_array()) {
      size_t width = 4;
      for (const auto& c : columns) width = std::max(width, Str(c, "name").size());
      for (const auto& c : columns) {
        std::printf("      %-*s  %s\n", static_cast<int>(width), Str(c, "name").c_str(),
                    Str(c, "type").c_str());
      }
    }
  }
  std::fflush(stdout);
}

Status Show(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json d, GetDataset(s, f.name));
  if (f.json) {
    std::cout << Dump(d) << std::endl;
  } else {
    PrintDataset(d);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// upload

enum class MockMode { kNone, kFile, kGenerate };

struct AssetSpec {
  std::string name;
  std::string data_path;
  std::string format;
  MockMode mock = MockMode::kNone;
  bool mock_chosen = false;  // the user said which mock (",no-mock" included)
  std::string mock_path;
  json mock_params = json::object();  // the body of a generation (",generate-mock=PARAMS.json")
};

struct UploadPlan {
  json metadata;  // name, summary, description, citation, url, contributors
  std::vector<AssetSpec> assets;
};

Status CheckReadableFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return InvalidArgumentError("cannot read " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path + " is not a regular file");
  if (::access(path.c_str(), R_OK) != 0) {
    return InvalidArgumentError("cannot read " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// The mock parameter document (docs/API.md, "Generated mocks") in the file at `path`.
Result<json> ReadMockParams(const std::string& path) {
  RETURN_IF_ERROR(CheckReadableFile(path));
  std::ifstream in(path, std::ios::binary);
  json params = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!params.is_object()) {
    return InvalidArgumentError(path + " must hold one JSON object of mock parameters");
  }
  return params;
}

// ASSET=DATA_PATH[,mock=MOCK_PATH|,generate-mock[=PARAMS.json]|,no-mock]
Result<AssetSpec> ParseAssetSpec(const std::string& text) {
  const std::string usage =
      "bad --asset '" + text +
      "': expected ASSET=DATA_PATH[,mock=MOCK_PATH|,generate-mock[=PARAMS.json]|,no-mock]";
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return InvalidArgumentError(usage);
  AssetSpec spec;
  spec.name = text.substr(0, eq);
  std::string rest = text.substr(eq + 1);
  if (EndsWith(rest, ",generate-mock")) {
    spec.mock = MockMode::kGenerate;
    spec.mock_chosen = true;
    rest.resize(rest.size() - std::string_view(",generate-mock").size());
  } else if (size_t g = rest.find(",generate-mock="); g != std::string::npos) {
    spec.mock = MockMode::kGenerate;
    spec.mock_chosen = true;
    std::string params_path = rest.substr(g + std::string_view(",generate-mock=").size());
    rest.resize(g);
    if (params_path.empty()) return InvalidArgumentError(usage + " (empty parameters path)");
    ASSIGN_OR_RETURN(spec.mock_params, ReadMockParams(params_path));
  } else if (EndsWith(rest, ",no-mock")) {
    spec.mock_chosen = true;
    rest.resize(rest.size() - std::string_view(",no-mock").size());
  } else if (size_t m = rest.find(",mock="); m != std::string::npos) {
    spec.mock = MockMode::kFile;
    spec.mock_chosen = true;
    spec.mock_path = rest.substr(m + std::string_view(",mock=").size());
    rest.resize(m);
    if (spec.mock_path.empty()) return InvalidArgumentError(usage + " (empty mock path)");
  }
  spec.data_path = rest;
  if (spec.data_path.empty()) return InvalidArgumentError(usage + " (empty data path)");
  if (spec.data_path.find(',') != std::string::npos) {
    std::string option = spec.data_path.substr(spec.data_path.find(','));
    return InvalidArgumentError(usage + " (unknown option '" + option + "')");
  }
  spec.format = FormatOfPath(spec.data_path);
  if (spec.mock == MockMode::kFile && FormatOfPath(spec.mock_path) != spec.format) {
    return InvalidArgumentError("asset '" + spec.name + "': the mock " + spec.mock_path + " is " +
                                FormatOfPath(spec.mock_path) + " but the data " + spec.data_path +
                                " is " + spec.format + "; they must have the same format");
  }
  return spec;
}

// "Name <email> role", "Name <email>" or "Name".
Result<json> ParseContributor(const std::string& text) {
  const std::string usage = "bad --contributor '" + text + "': expected \"Name <email> role\"";
  json c;
  size_t lt = text.find('<');
  if (lt == std::string::npos) {
    if (text.find('>') != std::string::npos) return InvalidArgumentError(usage);
    c["name"] = Trim(text);
  } else {
    size_t gt = text.find('>', lt);
    if (gt == std::string::npos) return InvalidArgumentError(usage);
    c["name"] = Trim(text.substr(0, lt));
    std::string email = Trim(text.substr(lt + 1, gt - lt - 1));
    std::string role = Trim(text.substr(gt + 1));
    if (!email.empty()) c["email"] = email;
    if (!role.empty()) c["role"] = role;
  }
  if (c["name"].get<std::string>().empty()) return InvalidArgumentError(usage + " (no name)");
  return c;
}

// Everything about an upload that can be checked before connecting. kInvalidArgument only.
Result<UploadPlan> PlanUpload(const Flags& f) {
  UploadPlan plan;
  if (f.name.empty()) return InvalidArgumentError("--name must not be empty");
  plan.metadata = {{"name", f.name}};
  if (!f.summary.empty()) plan.metadata["summary"] = f.summary;
  if (!f.citation.empty()) plan.metadata["citation"] = f.citation;
  if (!f.dataset_url.empty()) plan.metadata["url"] = f.dataset_url;
  if (!f.description.empty()) plan.metadata["description"] = f.description;
  if (!f.description_file.empty()) {
    RETURN_IF_ERROR(CheckReadableFile(f.description_file));
    struct stat st;
    if (::stat(f.description_file.c_str(), &st) == 0 &&
        static_cast<uint64_t>(st.st_size) > kMaxDescriptionFileBytes) {
      return InvalidArgumentError(f.description_file + " is too large for a description");
    }
    std::ifstream in(f.description_file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return InvalidArgumentError("cannot read " + f.description_file);
    plan.metadata["description"] = text;
  }
  if (!f.contributors.empty()) {
    json contributors = json::array();
    for (const auto& text : f.contributors) {
      ASSIGN_OR_RETURN(json c, ParseContributor(text));
      contributors.push_back(std::move(c));
    }
    plan.metadata["contributors"] = std::move(contributors);
  }
  if (f.assets.empty()) return InvalidArgumentError("give at least one --asset");
  for (const auto& text : f.assets) {
    ASSIGN_OR_RETURN(AssetSpec spec, ParseAssetSpec(text));
    for (const auto& other : plan.assets) {
      if (other.name == spec.name) {
        return InvalidArgumentError("two assets are named '" + spec.name + "'");
      }
    }
    RETURN_IF_ERROR(CheckReadableFile(spec.data_path));
    if (spec.mock == MockMode::kFile) RETURN_IF_ERROR(CheckReadableFile(spec.mock_path));
    plan.assets.push_back(std::move(spec));
  }
  try {
    (void)plan.metadata.dump();
  } catch (const json::exception&) {
    return InvalidArgumentError("the dataset's text fields must be UTF-8");
  }
  return plan;
}

// "label  42%  123.4 MB/s" on stderr, redrawn in place, for large files on a terminal.
class ProgressLine {
 public:
  ProgressLine(std::string label, const std::string& path) : label_(std::move(label)) {
    struct stat st;
    uint64_t size = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    enabled_ = size > kProgressMinBytes && ::isatty(STDERR_FILENO);
  }
  ~ProgressLine() {
    if (shown_) std::fputc('\n', stderr);
  }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  UploadProgress Callback() {
    if (!enabled_) return nullptr;
    return [this](uint64_t sent, uint64_t total) { Update(sent, total); };
  }

 private:
  using Clock = std::chrono::steady_clock;

  void Update(uint64_t sent, uint64_t total) {
    auto now = Clock::now();
    if (sent < total && shown_ && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double seconds = std::chrono::duration<double>(now - start_).count();
    double mb_per_s = seconds > 0 ? static_cast<double>(sent) / 1e6 / seconds : 0;
    int percent = total ? static_cast<int>(sent * 100 / total) : 100;
    std::fprintf(stderr, "\r%s  %3d%%  %8.1f MB/s%s", label_.c_str(), percent, mb_per_s,
                 sent == total ? "  (the server checks the file)" : "");
    std::fflush(stderr);
    shown_ = true;
  }

  std::string label_;
  bool enabled_ = false;
  bool shown_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_;
};

// Streams one file to POST /api/v1/blobs; returns the blob.
Result<json> UploadBlob(Session& s, const std::string& path, const std::string& format,
                        const std::string& label) {
  ProgressLine progress(label, path);
  ASSIGN_OR_RETURN(HttpResponse r,
                   s.http().RequestStreamingUpload("/api/v1/blobs?format=" + format, path,
                                                   ContentTypeOf(format), progress.Callback()));
  auto blob = s.ParseAnswer(r, "the upload of " + path);
  if (!blob.ok()) {
    StatusCode code = blob.status().code();
    if (code == StatusCode::kInvalidArgument || code == StatusCode::kResourceExhausted) {
      return Status(code, path + ": " + blob.status().message());
    }
    return blob.status();
  }
  if (Str(*blob, "id").empty()) return InternalError("the server's blob answer has no id");
  return blob;
}

Status UploadAll(Session& s, const UploadPlan& plan, std::vector<std::string>& blob_ids,
                 json& created) {
  json assets = json::array();
  for (const auto& spec : plan.assets) {
    json asset = {{"name", spec.name}};
    ASSIGN_OR_RETURN(json data, UploadBlob(s, spec.data_path, spec.format, spec.name + " data"));
    blob_ids.push_back(Str(data, "id"));
    asset["data"] = Str(data, "id");
    if (spec.mock == MockMode::kFile) {
      ASSIGN_OR_RETURN(json mock, UploadBlob(s, spec.mock_path, spec.format, spec.name + " mock"));
      blob_ids.push_back(Str(mock, "id"));
      asset["mock"] = Str(mock, "id");
    } else if (spec.mock == MockMode::kGenerate) {
      json body = spec.mock_params;
      ASSIGN_OR_RETURN(
          json mock,
          s.Call("POST", "/api/v1/blobs/" + UrlEncode(Str(data, "id")) + "/mock", &body));
      if (Str(mock, "id").empty()) return InternalError("the server's mock answer has no id");
      blob_ids.push_back(Str(mock, "id"));
      asset["mock"] = Str(mock, "id");
    }
    assets.push_back(std::move(asset));
  }
  json body = plan.metadata;
  body["assets"] = std::move(assets);
  ASSIGN_OR_RETURN(created, s.Call("POST", "/api/v1/datasets", &body));
  return Status::Ok();
}

Status Upload(Session& s, const UploadPlan& plan) {
  std::vector<std::string> blob_ids;
  json created;
  Status status = UploadAll(s, plan, blob_ids, created);
  if (!status.ok()) {
    // Blobs no dataset uses would otherwise wait 24 hours for the server to collect them.
    for (const auto& id : blob_ids) (void)s.Call("DELETE", "/api/v1/blobs/" + UrlEncode(id));
    return status;
  }
  const json& assets = Field(created, "assets");
  std::printf("Uploaded dataset %s (%s) with %zu asset%s\n", Str(created, "name").c_str(),
              Str(created, "id").c_str(), assets.is_array() ? assets.size() : 0,
              assets.is_array() && assets.size() == 1 ? "" : "s");
  if (assets.is_array()) {
    for (const auto& a : assets) {
      std::string mock = "empty mock";
      if (Field(a, "has_mock").is_boolean() && Field(a, "has_mock").get<bool>()) {
        mock = "mock " + HumanBytes(Int(a, "mock_size"));
      }
      std::string data;
      if (Field(a, "data_size").is_number())
        data = "data " + HumanBytes(Int(a, "data_size")) + ", ";
      std::printf("  %s: %s, %s%s\n", Str(a, "name").c_str(), Str(a, "format").c_str(),
                  data.c_str(), mock.c_str());
    }
  }
  std::fflush(stdout);
  return Status::Ok();
}

int RunUpload(const Flags& f) {
  auto plan = PlanUpload(f);
  if (!plan.ok()) return Fail(plan.status(), kExitUsage);
  return WithSession(f.connection, /*needs_account=*/true, [&](Session& s) {
    for (const auto& spec : plan->assets) {
      if (!spec.mock_chosen) {
        std::cerr << "note: asset '" << spec.name
                  << "' gets an empty mock; add ,mock=PATH or ,generate-mock to give it one"
                  << std::endl;
      }
    }
    return Upload(s, *plan);
  });
}

// ---------------------------------------------------------------------------------------------
// download-mock and delete

// A format as a file extension; anything unexpected from the server becomes "raw".
std::string SafeExtension(const std::string& format) {
  for (const char* f : {"csv", "json", "npy", "raw"}) {
    if (format == f) return format;
  }
  return "raw";
}

Status DownloadMock(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json d, GetDataset(s, f.name));
  const json* asset = nullptr;
  std::string names;
  const json& assets = Field(d, "assets");
  if (assets.is_array()) {
    for (const auto& a : assets) {
      if (Str(a, "name") == f.asset) asset = &a;
      names += (names.empty() ? "" : ", ") + Str(a, "name");
    }
  }
  if (asset == nullptr) {
    return NotFoundError("dataset '" + f.name + "' has no asset '" + f.asset +
                         "' (its assets: " + (names.empty() ? "none" : names) + ")");
  }
  if (!Field(*asset, "has_mock").is_boolean() || !Field(*asset, "has_mock").get<bool>()) {
    return FailedPreconditionError("asset '" + f.asset + "' of dataset '" + f.name +
                                   "' has an empty mock: there is nothing to download");
  }
  // The default name, also used inside a directory given as -o.
  std::string base = f.asset;
  std::replace(base.begin(), base.end(), '/', '_');
  if (!base.empty() && base[0] == '.') base[0] = '_';
  base += "." + SafeExtension(Str(*asset, "format"));
  std::string output = f.output.empty() ? base : f.output;
  struct stat st;
  if (output != "-" && ::stat(output.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    output += (output.back() == '/' ? "" : "/") + base;
  }
  std::string target = DatasetTarget(Str(d, "id")) + "/assets/" + UrlEncode(f.asset) + "/mock";
  ASSIGN_OR_RETURN(HttpResponse r, s.http().DownloadToFile(target, output));
  if (r.status / 100 != 2) return s.ErrorFrom(r);
  if (r.Header("X-Content-SHA256").empty()) {
    if (output != "-") ::unlink(output.c_str());
    return InternalError("the server sent no X-Content-SHA256, so the download can't be checked" +
                         std::string(output != "-" ? "; it was removed" : ""));
  }
  if (output != "-") {
    int64_t size = ::stat(output.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
    std::printf("Saved the mock of %s/%s to %s (%s)\n", f.name.c_str(), f.asset.c_str(),
                output.c_str(), HumanBytes(size).c_str());
    std::fflush(stdout);
  }
  return Status::Ok();
}

bool Confirm(const std::string& question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = Trim(answer);
  return answer == "y" || answer == "Y" || answer == "yes" || answer == "YES";
}

Status Delete(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json d, GetDataset(s, f.name));
  if (!f.yes) {
    size_t assets = Field(d, "assets").is_array() ? Field(d, "assets").size() : 0;
    if (!Confirm("Delete dataset '" + Str(d, "name") + "' and the files of its " +
                 std::to_string(assets) + " asset(s)?")) {
      return FailedPreconditionError("cancelled; nothing was deleted");
    }
  }
  ASSIGN_OR_RETURN(json answer, s.Call("DELETE", DatasetTarget(Str(d, "id"))));
  std::printf("Deleted dataset %s\n", Str(d, "name").c_str());
  std::fflush(stdout);
  return Status::Ok();
}

int RunDelete(const Flags& f) {
  if (!f.yes && !::isatty(STDIN_FILENO)) {
    return Fail(InvalidArgumentError("refusing to delete without --yes (stdin is not a terminal)"),
                kExitUsage);
  }
  return WithSession(f.connection, /*needs_account=*/true,
                     [&](Session& s) { return Delete(s, f); });
}

}  // namespace

void AddDatasetCommands(CLI::App& app) {
  Flags& f = GetFlags();
  f.dataset = app.add_subcommand("dataset", "List, show, upload, download and delete datasets");
  f.dataset->require_subcommand(1);

  f.list = f.dataset->add_subcommand("list", "List the server's datasets");
  f.list->add_option("--search", f.search, "Only datasets whose name or description has TEXT");
  f.list->add_flag("--json", f.json, "Print the server's JSON");

  f.show = f.dataset->add_subcommand("show", "Show a dataset and its assets");
  f.show->add_option("name", f.name, "Dataset name (or id)")->required();
  f.show->add_flag("--json", f.json, "Print the server's JSON");

  f.upload = f.dataset->add_subcommand("upload", "Upload files as a new dataset");
  f.upload->add_option("--name", f.name, "Dataset name")->required();
  f.upload
      ->add_option("--asset", f.assets,
                   "ASSET=DATA_PATH[,mock=MOCK_PATH|,generate-mock[=PARAMS.json]|,no-mock]; repeat "
                   "for more assets. The format comes from the extension: .csv, .json, .npy, "
                   "else raw. PARAMS.json: the mock parameters (docs/API.md, Generated mocks)")
      ->required();
  f.upload->add_option("--summary", f.summary, "One-line summary");
  auto* description =
      f.upload->add_option("--description", f.description, "Description (markdown)");
  auto* description_file =
      f.upload->add_option("--description-file", f.description_file, "Read the description from F");
  description->excludes(description_file);
  f.upload->add_option("--citation", f.citation, "How to cite the dataset");
  f.upload->add_option("--dataset-url", f.dataset_url, "The dataset's web page");
  f.upload->add_option("--contributor", f.contributors,
                       "\"Name <email> role\" (email and role optional); repeat for more");

  f.download_mock = f.dataset->add_subcommand("download-mock", "Download an asset's mock data");
  f.download_mock->add_option("name", f.name, "Dataset name (or id)")->required();
  f.download_mock->add_option("asset", f.asset, "Asset name")->required();
  f.download_mock->add_option("-o,--output", f.output,
                              "Where to save it (default: ./ASSET.FORMAT; '-' for stdout)");

  f.remove = f.dataset->add_subcommand("delete", "Delete a dataset and its files");
  f.remove->add_option("name", f.name, "Dataset name (or id)")->required();
  f.remove->add_flag("-y,--yes", f.yes, "Do not ask for confirmation");

  for (CLI::App* c : {f.list, f.show, f.upload, f.download_mock, f.remove}) {
    AddConnectionOptions(c, f.connection);
  }
}

int RunDatasetCommand() {
  Flags& f = GetFlags();
  if (f.dataset == nullptr || !f.dataset->parsed()) return -1;
  try {
    if (f.list->parsed()) {
      return WithSession(f.connection, /*needs_account=*/false,
                         [&](Session& s) { return List(s, f); });
    }
    if (f.show->parsed()) {
      return WithSession(f.connection, /*needs_account=*/false,
                         [&](Session& s) { return Show(s, f); });
    }
    if (f.upload->parsed()) return RunUpload(f);
    if (f.download_mock->parsed()) {
      return WithSession(f.connection, /*needs_account=*/false,
                         [&](Session& s) { return DownloadMock(s, f); });
    }
    if (f.remove->parsed()) return RunDelete(f);
  } catch (const std::exception& e) {
    return Fail(InternalError(e.what()));
  }
  return Fail(InvalidArgumentError("unknown dataset command"), kExitUsage);
}

}  // namespace datasite::cli
