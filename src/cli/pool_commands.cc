#include "cli/pool_commands.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli/http_client.h"
#include "cli/session.h"

namespace datasite::cli {
namespace {

using nlohmann::json;

// A requirements file is a few kilobytes; a larger file is a mistake.
constexpr int64_t kMaxRequirementsFileBytes = int64_t{1} << 20;
// The server's bounds on a pool's workers.
constexpr int64_t kMaxWorkers = 64;

// What the command line said; filled by CLI11 during parse. Each field belongs to the one
// subcommand that is parsed.
struct Flags {
  CLI::App* pools = nullptr;
  CLI::App* pools_list = nullptr;
  CLI::App* pools_show = nullptr;
  CLI::App* pools_launch = nullptr;
  CLI::App* pools_scale = nullptr;
  CLI::App* pools_delete = nullptr;
  CLI::App* images = nullptr;
  CLI::App* images_list = nullptr;
  CLI::App* images_show = nullptr;
  CLI::App* images_submit = nullptr;
  CLI::App* images_build = nullptr;
  CLI::App* images_remove = nullptr;

  ConnectionFlags connection;  // on every command here

  bool json = false;
  std::string name;  // a pool's name (pools), an image's name (images submit)
  std::string id;    // an image's id

  // pools launch and scale
  int64_t workers = 1;
  std::optional<int64_t> memory_bytes;
  std::optional<int64_t> cpu_seconds;
  std::optional<int64_t> timeout_seconds;

  // images submit
  std::string path;
  std::string python;
  std::string requirements;  // a requirements file ('-': stdin)
  std::string find_links;
  std::string index_url;
  std::vector<std::string> imports;
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

// Milliseconds since the epoch as "2026-12-05 07:20:04 UTC"; "-" for anything else.
std::string When(const json& ms) {
  if (!ms.is_number_integer()) return "-";
  std::time_t seconds = static_cast<std::time_t>(ms.get<int64_t>() / 1000);
  std::tm tm{};
  if (gmtime_r(&seconds, &tm) == nullptr) return "-";
  char buf[32];
  if (std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) return "-";
  return buf;
}

std::string Number(const json& j, const char* key) {
  const json& v = Field(j, key);
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return "-";
}

// The strings of a JSON array joined with `sep`.
std::string Joined(const json& list, const char* sep) {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& v : list) {
    if (!v.is_string()) continue;
    if (!out.empty()) out += sep;
    out += v.get<std::string>();
  }
  return out;
}

std::string Created(const json& j) {
  std::string by = Str(j, "created_by");
  return When(Field(j, "created_at")) + (by.empty() ? "" : " by " + by);
}

// ---------------------------------------------------------------------------------------------
// What can be checked before connecting (kInvalidArgument: a usage error).

// The requirements in `path` ('-': standard input): one per line, without comments and blanks.
Result<std::vector<std::string>> ReadRequirements(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return InvalidArgumentError("cannot read requirements from standard input");
  } else {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return InvalidArgumentError("cannot read " + path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path + " is not a regular file");
    if (st.st_size > kMaxRequirementsFileBytes) {
      return InvalidArgumentError(path + " is too large for a requirements file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return InvalidArgumentError("cannot read " + path + ": " + std::strerror(errno));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return InvalidArgumentError("cannot read " + path);
  }
  std::vector<std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    line = Trim(line);
    if (!line.empty()) out.push_back(line);
  }
  const std::string what = path == "-" ? "standard input" : path;
  if (out.empty()) return InvalidArgumentError(what + " names no requirement");
  return out;
}

// The body of POST /api/v1/worker_images.
Result<json> SubmitBody(const Flags& f) {
  if (Trim(f.name).empty()) return InvalidArgumentError("--name must not be empty");
  const bool by_path = !f.path.empty() || !f.python.empty();
  const bool by_requirements = !f.requirements.empty();
  if (by_path && by_requirements) {
    return InvalidArgumentError(
        "give --path/--python (an environment that exists) or --requirements (one the server "
        "builds), not both");
  }
  if (!by_path && !by_requirements) {
    return InvalidArgumentError("give --path DIR, --python INTERPRETER or --requirements FILE");
  }
  if (!by_requirements && (!f.find_links.empty() || !f.index_url.empty())) {
    return InvalidArgumentError("--find-links and --index-url are for --requirements");
  }
  json config = json::object();
  if (!f.path.empty()) config["path"] = f.path;
  if (!f.python.empty()) config["python"] = f.python;
  if (by_requirements) {
    ASSIGN_OR_RETURN(std::vector<std::string> requirements, ReadRequirements(f.requirements));
    config["requirements"] = requirements;
    if (!f.find_links.empty()) config["find_links"] = f.find_links;
    if (!f.index_url.empty()) config["index_url"] = f.index_url;
  }
  if (!f.imports.empty()) config["imports"] = f.imports;
  json body = {{"name", f.name}, {"worker_config", std::move(config)}};
  try {
    (void)body.dump();
  } catch (const json::exception&) {
    return InvalidArgumentError("names, paths and requirements must be UTF-8");
  }
  return body;
}

// The body of POST /api/v1/worker_pools.
json LaunchBody(const Flags& f) {
  json body = {{"name", f.name}, {"image_id", f.id}, {"num_workers", f.workers}};
  if (f.memory_bytes) body["memory_bytes"] = *f.memory_bytes;
  if (f.cpu_seconds) body["cpu_seconds"] = *f.cpu_seconds;
  if (f.timeout_seconds) body["timeout_seconds"] = *f.timeout_seconds;
  return body;
}

std::string PoolTarget(const std::string& name, const char* rest = "") {
  return "/api/v1/worker_pools/" + UrlEncode(name) + rest;
}

std::string ImageTarget(const std::string& id, const char* rest = "") {
  return "/api/v1/worker_images/" + UrlEncode(id) + rest;
}

// ---------------------------------------------------------------------------------------------
// Printing

std::string Limits(const json& p) {
  return "memory " + Number(p, "memory_bytes") + " bytes, CPU " + Number(p, "cpu_seconds") +
         " s, timeout " + Number(p, "timeout_seconds") + " s";
}

void PrintPool(const json& p) {
  PrintField("Name:", Str(p, "name"));
  PrintField("Status:", Str(p, "status"));
  PrintField("Image:", Str(p, "image_name") + " (" + Str(p, "image_id") + ")");
  PrintField("Workers:", Number(p, "workers_ready") + " of " + Number(p, "num_workers") + " ready");
  PrintField("Limits:", Limits(p));
  PrintField("Packages hash:", Str(p, "packages_hash"));
  if (!Str(p, "error").empty()) PrintField("Error:", Str(p, "error"));
  PrintField("Created:", Created(p));
}

void PrintImage(const json& i) {
  PrintField("Id:", Str(i, "id"));
  PrintField("Name:", Str(i, "name"));
  PrintField("Status:", Str(i, "status"));
  PrintField("Kind:", Str(i, "kind"));
  std::string version = Str(i, "python_version");
  PrintField("Python:", Str(i, "python") + (version.empty() ? "" : " (" + version + ")"));
  PrintField("Path:", Str(i, "path").empty() ? "(system)" : Str(i, "path"));
  if (Str(i, "kind") == "requirements") {
    PrintField("Requirements:", Joined(Field(i, "requirements"), ", "));
    if (!Str(i, "find_links").empty()) PrintField("Find links:", Str(i, "find_links"));
    if (!Str(i, "index_url").empty()) PrintField("Index URL:", Str(i, "index_url"));
  }
  PrintField("Imports:", Joined(Field(i, "imports"), ", "));
  PrintField("Packages hash:", Str(i, "packages_hash"));
  if (!Str(i, "error").empty()) PrintField("Error:", Str(i, "error"));
  PrintField("Created:", Created(i));
  const json& packages = Field(i, "packages");
  const size_t count = packages.is_array() ? packages.size() : 0;
  std::printf("Packages (%zu):\n", count);
  if (count == 0) std::printf("  (none)\n");
  for (size_t n = 0; n < count; ++n) {
    if (packages[n].is_string()) {
      std::printf("  %s\n", Printable(packages[n].get<std::string>()).c_str());
    }
  }
}

size_t PackageCount(const json& i) {
  const json& packages = Field(i, "packages");
  return packages.is_array() ? packages.size() : 0;
}

Status PrintJsonOr(const Flags& f, const json& answer, void (*print)(const json&)) {
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
  } else {
    print(answer);
    std::fflush(stdout);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The commands

Status ListPools(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json answer, s.Call("GET", "/api/v1/worker_pools"));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  if (answer.is_array()) {
    for (const auto& p : answer) {
      rows.push_back({Str(p, "name"), Str(p, "status"), Str(p, "image_name"),
                      Number(p, "workers_ready") + "/" + Number(p, "num_workers"),
                      Number(p, "memory_bytes"), Number(p, "cpu_seconds"),
                      Number(p, "timeout_seconds"), Str(p, "packages_hash").substr(0, 12)});
    }
  }
  PrintTable({"NAME", "STATUS", "IMAGE", "WORKERS", "MEMORY_BYTES", "CPU_SECONDS",
              "TIMEOUT_SECONDS", "PACKAGES_HASH"},
             rows);
  return Status::Ok();
}

Status ShowPool(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json pool, s.Call("GET", PoolTarget(f.name)));
  return PrintJsonOr(f, pool, PrintPool);
}

Status LaunchPool(Session& s, const Flags& f) {
  json body = LaunchBody(f);
  ASSIGN_OR_RETURN(json pool, s.Call("POST", "/api/v1/worker_pools", &body));
  if (!f.json) {
    std::printf("Launched pool %s: %s of %s workers ready\n", Printable(Str(pool, "name")).c_str(),
                Number(pool, "workers_ready").c_str(), Number(pool, "num_workers").c_str());
  }
  return PrintJsonOr(f, pool, PrintPool);
}

Status ScalePool(Session& s, const Flags& f) {
  json body = {{"num_workers", f.workers}};
  ASSIGN_OR_RETURN(json pool, s.Call("POST", PoolTarget(f.name, "/scale"), &body));
  if (!f.json) {
    std::printf("Scaled pool %s to %s workers (%s ready)\n", Printable(Str(pool, "name")).c_str(),
                Number(pool, "num_workers").c_str(), Number(pool, "workers_ready").c_str());
  }
  return PrintJsonOr(f, pool, PrintPool);
}

Status DeletePool(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json answer, s.Call("DELETE", PoolTarget(f.name)));
  std::printf("Deleted pool %s\n", Printable(f.name).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

Status ListImages(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json answer, s.Call("GET", "/api/v1/worker_images"));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  if (answer.is_array()) {
    for (const auto& i : answer) {
      rows.push_back({Str(i, "id"), Str(i, "name"), Str(i, "status"), Str(i, "kind"),
                      Str(i, "python_version"), std::to_string(PackageCount(i)),
                      Str(i, "packages_hash").substr(0, 12), OneLine(Str(i, "error"), 60)});
    }
  }
  PrintTable({"ID", "NAME", "STATUS", "KIND", "PYTHON", "PACKAGES", "PACKAGES_HASH", "ERROR"},
             rows);
  return Status::Ok();
}

Status ShowImage(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json image, s.Call("GET", ImageTarget(f.id)));
  return PrintJsonOr(f, image, PrintImage);
}

Status SubmitImage(Session& s, const Flags& f, const json& body) {
  ASSIGN_OR_RETURN(json image, s.Call("POST", "/api/v1/worker_images", &body));
  if (!f.json) {
    const std::string id = Str(image, "id");
    if (Str(image, "status") == "ready") {
      std::printf("Submitted image %s (%s): ready, %zu packages\n", Printable(id).c_str(),
                  Printable(Str(image, "name")).c_str(), PackageCount(image));
    } else {
      std::printf("Submitted image %s (%s): %s; build it with: datasite images build %s\n",
                  Printable(id).c_str(), Printable(Str(image, "name")).c_str(),
                  Printable(Str(image, "status")).c_str(), Printable(id).c_str());
    }
  }
  return PrintJsonOr(f, image, PrintImage);
}

Status BuildImage(Session& s, const Flags& f) {
  const json body = json::object();
  ASSIGN_OR_RETURN(json image, s.Call("POST", ImageTarget(f.id, "/build"), &body));
  if (!f.json) {
    std::printf("Built image %s (%s): %zu packages\n", Printable(Str(image, "id")).c_str(),
                Printable(Str(image, "name")).c_str(), PackageCount(image));
  }
  return PrintJsonOr(f, image, PrintImage);
}

Status RemoveImage(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json answer, s.Call("DELETE", ImageTarget(f.id)));
  std::printf("Removed image %s\n", Printable(f.id).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

void AddJson(CLI::App* c, Flags& f) { c->add_flag("--json", f.json, "Print the server's JSON"); }

void AddLimitOptions(CLI::App* c, Flags& f) {
  c->add_option("--memory-bytes", f.memory_bytes,
                "Memory limit of each job in the pool (default: the server's)")
      ->check(CLI::PositiveNumber);
  c->add_option("--cpu-seconds", f.cpu_seconds,
                "CPU time limit of each job in the pool (default: the server's)")
      ->check(CLI::PositiveNumber);
  c->add_option("--timeout-seconds", f.timeout_seconds,
                "Wall-clock limit of each job in the pool (default: the server's)")
      ->check(CLI::PositiveNumber);
}

}  // namespace

void AddPoolCommands(CLI::App& app) {
  Flags& f = GetFlags();
  f.pools = app.add_subcommand(
      "pools", "Worker pools: named Python environments with warm sandbox slots code runs in");
  f.pools->require_subcommand(1);
  f.pools_list = f.pools->add_subcommand("list", "List the worker pools, default first");
  AddJson(f.pools_list, f);
  f.pools_show = f.pools->add_subcommand("show", "Show one worker pool");
  f.pools_show->add_option("name", f.name, "The pool's name")->required();
  AddJson(f.pools_show, f);
  f.pools_launch = f.pools->add_subcommand(
      "launch", "Start a worker pool on an image; answers once its workers are warm (owners)");
  f.pools_launch->add_option("name", f.name, "The new pool's name")->required();
  f.pools_launch->add_option("--image", f.id, "The image's id (see datasite images list)")
      ->required();
  f.pools_launch->add_option("--workers", f.workers, "Warm sandbox slots (1 to 64; default 1)")
      ->check(CLI::Range(int64_t{1}, kMaxWorkers));
  AddLimitOptions(f.pools_launch, f);
  AddJson(f.pools_launch, f);
  f.pools_scale =
      f.pools->add_subcommand("scale", "Set a worker pool's number of warm slots (owners)");
  f.pools_scale->add_option("name", f.name, "The pool's name")->required();
  f.pools_scale->add_option("workers", f.workers, "Warm sandbox slots (1 to 64)")
      ->required()
      ->check(CLI::Range(int64_t{1}, kMaxWorkers));
  AddJson(f.pools_scale, f);
  f.pools_delete =
      f.pools->add_subcommand("delete", "Delete a worker pool (owners; the default pool stays)");
  f.pools_delete->add_option("name", f.name, "The pool's name")->required();

  f.images = app.add_subcommand(
      "images", "Worker images: Python environments (by path, or built from requirements)");
  f.images->require_subcommand(1);
  f.images_list = f.images->add_subcommand("list", "List the worker images, oldest first");
  AddJson(f.images_list, f);
  f.images_show = f.images->add_subcommand(
      "show", "Show one worker image, with the packages its environment holds");
  f.images_show->add_option("id", f.id, "The image's id")->required();
  AddJson(f.images_show, f);
  f.images_submit = f.images->add_subcommand(
      "submit",
      "Register a Python environment (owners): a virtualenv or conda prefix by --path, an "
      "interpreter by --python (checked at once), or --requirements for the server to build");
  f.images_submit->add_option("--name", f.name, "The image's name")->required();
  f.images_submit->add_option("--path", f.path, "The environment's root on the server's machine");
  f.images_submit->add_option("--python", f.python, "The interpreter, e.g. /usr/bin/python3");
  f.images_submit->add_option("--requirements", f.requirements,
                              "A requirements file ('-': stdin), installed with pip at build");
  f.images_submit->add_option("--find-links", f.find_links,
                              "A folder of wheels on the server (pip --no-index --find-links)");
  f.images_submit->add_option("--index-url", f.index_url, "A package index (pip --index-url)");
  f.images_submit->add_option("--import", f.imports,
                              "A module the environment's check imports; repeat for more");
  AddJson(f.images_submit, f);
  f.images_build = f.images->add_subcommand(
      "build", "Build an image's environment, or check a path image anew (owners)");
  f.images_build->add_option("id", f.id, "The image's id")->required();
  AddJson(f.images_build, f);
  f.images_remove = f.images->add_subcommand(
      "remove", "Remove a worker image (owners; not while a pool uses it)");
  f.images_remove->add_option("id", f.id, "The image's id")->required();

  for (CLI::App* c :
       {f.pools_list, f.pools_show, f.pools_launch, f.pools_scale, f.pools_delete, f.images_list,
        f.images_show, f.images_submit, f.images_build, f.images_remove}) {
    AddConnectionOptions(c, f.connection);
  }
}

int RunPoolCommand() {
  Flags& f = GetFlags();
  const bool pools = f.pools != nullptr && f.pools->parsed();
  const bool images = f.images != nullptr && f.images->parsed();
  if (!pools && !images) return -1;
  // What needs no server is checked first: a usage error exits 2 before connecting.
  json body;
  if (f.images_submit->parsed()) {
    auto submit = SubmitBody(f);
    if (!submit.ok()) return Fail(submit.status(), kExitUsage);
    body = std::move(*submit);
  }
  if (f.pools_launch->parsed() && Trim(f.name).empty()) {
    return Fail(InvalidArgumentError("the pool's name must not be empty"), kExitUsage);
  }
  std::vector<Subcommand> commands = {
      {f.pools_list, [&](Session& s) { return ListPools(s, f); }},
      {f.pools_show, [&](Session& s) { return ShowPool(s, f); }},
      {f.pools_launch, [&](Session& s) { return LaunchPool(s, f); }},
      {f.pools_scale, [&](Session& s) { return ScalePool(s, f); }},
      {f.pools_delete, [&](Session& s) { return DeletePool(s, f); }},
      {f.images_list, [&](Session& s) { return ListImages(s, f); }},
      {f.images_show, [&](Session& s) { return ShowImage(s, f); }},
      {f.images_submit, [&](Session& s) { return SubmitImage(s, f, body); }},
      {f.images_build, [&](Session& s) { return BuildImage(s, f); }},
      {f.images_remove, [&](Session& s) { return RemoveImage(s, f); }},
  };
  return RunParsedSubcommand(f.connection, commands, pools ? "pools" : "images");
}

}  // namespace datasite::cli
