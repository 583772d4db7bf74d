#include "services/pools.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include <sodium.h>
#include <spdlog/spdlog.h>

#include "core/random.h"
#include "core/sha256.h"

extern char** environ;

namespace datasite::services {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kBuildTimeoutSeconds = 900;
constexpr size_t kMaxToolOutput = 64 << 10;
constexpr size_t kMaxNameBytes = 64;

Status OwnersOnly(const Principal& caller) {
  if (!caller.IsDataOwner()) return PermissionDeniedError("only data owners manage worker pools");
  return Status::Ok();
}

// Pool and image names: what a URL path segment, a Kubernetes name and a log line all take.
Status CheckName(const json& name, const char* what) {
  if (!name.is_string()) return InvalidArgumentError(std::string(what) + " must be a string");
  const std::string& s = name.get_ref<const std::string&>();
  bool ok = !s.empty() && s.size() <= kMaxNameBytes && s.front() != '-' && s.front() != '.';
  for (char c : s)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.');
  if (!ok)
    return InvalidArgumentError(std::string(what) + " '" + s.substr(0, 80) +
                                "' must be 1 to 64 letters, digits, '-', '_' or '.'");
  return Status::Ok();
}

Result<std::string> AbsolutePath(const json& value, const char* what) {
  if (!value.is_string()) return InvalidArgumentError(std::string(what) + " must be a string");
  std::string p = value.get<std::string>();
  if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos)
    return InvalidArgumentError(std::string(what) + " must be an absolute path");
  return fs::path(p).lexically_normal().string();
}

// Runs `argv` (no shell), its output gathered (cut at kMaxToolOutput); the exit status, or -1
// when it could not run or passed its time.
int RunTool(const std::vector<std::string>& argv, int timeout_seconds, std::string* output) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    *output = std::string("could not run ") + argv[0] + ": " + strerror(rc);
    return -1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  bool timed_out = false;
  char buf[8192];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    ssize_t got = read(pipe_fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    output->append(buf, static_cast<size_t>(got));
    if (output->size() > kMaxToolOutput) output->erase(0, output->size() - kMaxToolOutput);
  }
  close(pipe_fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    *output += "\n(stopped after " + std::to_string(timeout_seconds) + " s)";
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string LastLines(const std::string& text, int lines) {
  size_t at = text.size();
  while (at > 0 && (text[at - 1] == '\n' || text[at - 1] == ' ')) --at;
  size_t end = at;
  for (int i = 0; i < lines && at > 0; ++i) {
    at = text.rfind('\n', at - 1);
    if (at == std::string::npos) {
      at = 0;
      break;
    }
  }
  std::string out = text.substr(at, end - at);
  while (!out.empty() && out.front() == '\n') out.erase(0, 1);
  return out;
}

}  // namespace

// SHA-256 hex of everything under `root`, in path order: each entry's path, type and mode, and a
// file's bytes or a link's target (links are not followed). '' for no root.
std::string TreeDigest(const std::string& root) {
  if (root.empty()) return "";
  std::vector<fs::path> entries;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec))
    entries.push_back(it->path());
  if (ec) return "unreadable: " + ec.message();
  std::sort(entries.begin(), entries.end());
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  auto add = [&state](const std::string& s) {
    uint64_t n = s.size();
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(&n), sizeof n);
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  std::vector<char> buf(1 << 20);
  for (const fs::path& p : entries) {
    fs::file_status st = fs::symlink_status(p, ec);
    add(p.lexically_relative(root).string());
    add(std::to_string(static_cast<int>(st.type())) + ":" +
        std::to_string(static_cast<unsigned>(st.permissions())));
    if (fs::is_symlink(st)) {
      add(fs::read_symlink(p, ec).string());
    } else if (fs::is_regular_file(st)) {
      std::ifstream in(p, std::ios::binary);
      uint64_t total = 0;
      while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto got = static_cast<size_t>(in.gcount());
        crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(buf.data()), got);
        total += got;
      }
      add(std::to_string(total));
    }
  }
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, out);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

std::string PackagesHash(const json& environment, const std::string& path) {
  std::string text = json{
      {"python", environment.value("python", "")},
      {"packages", environment.value("packages", json::array())},
      {"path", path},
      {"contents",
       TreeDigest(path)}}.dump();
  return Sha256Hex(text);
}

std::string EnvironmentHash(const sandbox::Sandbox& sandbox) {
  return PackagesHash(sandbox.Environment(), "");
}

struct PoolService::Pool {
  json doc;  // what is stored: name, image_id, num_workers, limits, created_*
  std::shared_ptr<sandbox::Sandbox> sandbox;
  std::string packages_hash;
  json modules = json::array();
  std::string error;  // why it is not running
};

PoolService::PoolService(store::Store& store, const Clock& clock, PoolOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

PoolService::~PoolService() = default;

void PoolService::SetDefaultSandbox(sandbox::Sandbox* sandbox) {
  std::lock_guard lock(mu_);
  default_sandbox_ = sandbox;
}

Status PoolService::Audited(const Principal& caller, const std::string& action,
                            const std::string& kind, const std::string& key, const json* doc,
                            const std::string& detail) {
  return store_.InTransaction([&](store::Store& tx) -> Status {
    if (doc != nullptr) {
      RETURN_IF_ERROR(tx.PutPoolRecord({kind, key, doc->dump(), clock_.NowMillis()}));
    } else {
      RETURN_IF_ERROR(tx.DeletePoolRecord(kind, key));
    }
    const std::string target = (kind == "image" ? "worker_image:" : "worker_pool:") + key;
    return tx.AppendAudit({clock_.NowSeconds(), caller.AuditName(), action, target, detail});
  });
}

json PoolService::DefaultImage() {
  json image = {
      {"id", kDefaultPool},        {"name", kDefaultPool}, {"kind", "path"},
      {"python", options_.python}, {"path", ""},           {"requirements", json::array()},
      {"find_links", nullptr},     {"index_url", nullptr}, {"imports", json::array()},
      {"status", "ready"},         {"error", nullptr},     {"packages", json::array()},
      {"packages_hash", ""},       {"python_version", ""}, {"created_at", 0},
      {"created_by", ""}};
  sandbox::Sandbox* sandbox;
  {
    std::lock_guard lock(mu_);
    sandbox = default_sandbox_;
  }
  if (sandbox == nullptr && !options_.local) {
    // Run by external workers: what the last of them to start published (as for other pools).
    image["packages_hash"] = RemoteEnvironment(kDefaultPool).value("packages_hash", "");
    image["status"] = image["packages_hash"] == "" ? "no_workers" : "external";
  } else if (sandbox == nullptr) {
    image["status"] = "starting";  // the server's sandbox starts beside its first requests
  } else {
    json env = sandbox->Environment();
    image["packages"] = env.value("packages", json::array());
    image["python_version"] = env.value("python", "");
    image["packages_hash"] = PackagesHash(env, "");
  }
  return image;
}

// Starts a one-slot sandbox over the image, importing what it claims, and records what it holds.
Result<json> PoolService::CheckImage(json image) {
  sandbox::Options o;
  o.python = image["python"].get<std::string>();
  o.env_root = image["path"].get<std::string>();
  for (const auto& m : image["imports"]) o.preload.push_back(m.get<std::string>());
  o.slots = 1;
  auto started = sandbox::StartSandbox(o);
  if (!started.ok()) {
    image["status"] = "failed";
    image["error"] = started.status().message();
    return image;
  }
  json env = (*started)->Environment();
  image["status"] = "ready";
  image["error"] = nullptr;
  image["packages"] = env.value("packages", json::array());
  image["python_version"] = env.value("python", "");
  image["packages_hash"] = PackagesHash(env, o.env_root);
  return image;
}

Result<json> PoolService::SubmitImage(const Principal& caller, const json& body) {
  RETURN_IF_ERROR(OwnersOnly(caller));
  if (!body.is_object()) return InvalidArgumentError("the body must be a JSON object");
  RETURN_IF_ERROR(CheckName(body.value("name", json()), "name"));
  const std::string name = body["name"];
  const json config = body.value("worker_config", json::object());
  if (!config.is_object()) return InvalidArgumentError("worker_config must be an object");
  static const std::set<std::string> kKeys = {"path",       "python",    "requirements",
                                              "find_links", "index_url", "imports"};
  for (const auto& item : config.items()) {
    if (!kKeys.count(item.key()))
      return InvalidArgumentError("worker_config: unknown key '" + item.key().substr(0, 80) +
                                  "' (path, python, requirements, find_links, index_url, imports)");
  }
  json image = {{"id", NewUuid()},
                {"name", name},
                {"requirements", json::array()},
                {"find_links", nullptr},
                {"index_url", nullptr},
                {"imports", json::array()},
                {"error", nullptr},
                {"packages", json::array()},
                {"packages_hash", ""},
                {"python_version", ""},
                {"created_at", clock_.NowMillis()},
                {"created_by", caller.email}};
  if (config.contains("imports")) {
    const json& imports = config["imports"];
    if (!imports.is_array() || imports.size() > 64)
      return InvalidArgumentError("imports must be a list of at most 64 module names");
    for (const json& m : imports) {
      if (!m.is_string() || m.get_ref<const std::string&>().empty() ||
          m.get_ref<const std::string&>().size() > 200)
        return InvalidArgumentError("imports must be module names");
      image["imports"].push_back(m);
    }
  }
  const bool by_requirements = config.contains("requirements");
  if (by_requirements) {
    if (config.contains("path") || config.contains("python"))
      return InvalidArgumentError("worker_config: give requirements, or a path/python, not both");
    const json& reqs = config["requirements"];
    if (!reqs.is_array() || reqs.empty() || reqs.size() > 256)
      return InvalidArgumentError("requirements must be a list of 1 to 256 requirement strings");
    for (const json& r : reqs) {
      // A name with extras, versions and markers only: no pip option, and no direct reference
      // (a URL or a path would pass --no-index and find_links).
      const std::string spec = r.is_string() ? r.get<std::string>() : "";
      if (spec.empty() || spec.size() > 200 || !std::isalnum(static_cast<unsigned char>(spec[0])) ||
          spec.find_first_of("@/\\:\n\r\t") != std::string::npos)
        return InvalidArgumentError(
            "each requirement must be a requirement specifier such as 'scikit-learn==1.2.1' (no "
            "pip options, URLs, paths or direct references)");
      image["requirements"].push_back(r);
    }
    if (config.contains("find_links") && !config["find_links"].is_null()) {
      ASSIGN_OR_RETURN(std::string links, AbsolutePath(config["find_links"], "find_links"));
      image["find_links"] = links;
    }
    if (config.contains("index_url") && !config["index_url"].is_null()) {
      if (!config["index_url"].is_string() ||
          (config["index_url"].get<std::string>().rfind("https://", 0) != 0 &&
           config["index_url"].get<std::string>().rfind("http://", 0) != 0))
        return InvalidArgumentError("index_url must be an http(s) URL");
      image["index_url"] = config["index_url"];
    }
    if (image["find_links"].is_null() && image["index_url"].is_null())
      return InvalidArgumentError(
          "requirements need find_links (a wheel folder) or index_url (the owner's index)");
    if (options_.envs_dir.empty())
      return FailedPreconditionError("this server has no directory to build environments in");
    image["kind"] = "requirements";
    image["path"] = (fs::path(options_.envs_dir) / image["id"].get<std::string>()).string();
    image["python"] = image["path"].get<std::string>() + "/bin/python";
    image["status"] = "submitted";
  } else {
    image["kind"] = "path";
    std::string root, python;
    if (config.contains("path")) {
      ASSIGN_OR_RETURN(root, AbsolutePath(config["path"], "path"));
      if (root.rfind("/usr/", 0) == 0 || root == "/usr") root.clear();  // bound already
    }
    if (config.contains("python")) {
      ASSIGN_OR_RETURN(python, AbsolutePath(config["python"], "python"));
    } else if (!root.empty()) {
      python = root + "/bin/python";
    } else {
      return InvalidArgumentError("worker_config needs a path, a python or requirements");
    }
    image["path"] = root;
    image["python"] = python;
  }
  {
    auto images = store_.ListPoolRecords("image");
    if (!images.ok()) return images.status();
    if (name == kDefaultPool) return AlreadyExistsError("the image 'default' is the server's own");
    for (const auto& r : *images) {
      if (json::parse(r.doc, nullptr, false).value("name", "") == name)
        return AlreadyExistsError("there is an image named '" + name + "' already");
    }
  }
  if (!by_requirements) {
    std::lock_guard building(build_mu_);
    ASSIGN_OR_RETURN(image, CheckImage(std::move(image)));
    if (image["status"] != "ready")
      return InvalidArgumentError("the environment does not work: " +
                                  image["error"].get<std::string>());
  }
  RETURN_IF_ERROR(Audited(caller, "worker_image.submit", "image", image["id"], &image,
                          image["name"].get<std::string>()));
  spdlog::info("worker image {} ({}) submitted by {}", image["name"].get<std::string>(),
               image["id"].get<std::string>(), caller.email);
  return image;
}

Result<json> PoolService::LoadImage(const std::string& id) {
  if (id == kDefaultPool) return DefaultImage();
  auto r = store_.GetPoolRecord("image", id);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kNotFound)
      return NotFoundError("no worker image '" + id.substr(0, 80) + "'");
    return r.status();
  }
  return json::parse(r->doc);
}

Result<json> PoolService::BuildImage(const Principal& caller, const std::string& id) {
  RETURN_IF_ERROR(OwnersOnly(caller));
  if (id == kDefaultPool) return InvalidArgumentError("the image 'default' is the server's own");
  ASSIGN_OR_RETURN(json image, LoadImage(id));
  RETURN_IF_ERROR(NotInUse(id));
  std::lock_guard building(build_mu_);
  if (image["kind"] == "requirements") {
    const std::string root = image["path"];
    std::error_code ec;
    fs::remove_all(root, ec);
    // The directories made here are searchable by the sandbox's uid (as root, bubblewrap runs as
    // uid 65534 and must reach the environment).
    std::vector<fs::path> made;
    for (fs::path p = fs::path(root).parent_path();
         !p.empty() && p != p.root_path() && !fs::exists(p, ec); p = p.parent_path())
      made.push_back(p);
    fs::create_directories(fs::path(root).parent_path(), ec);
    for (const fs::path& p : made) fs::permissions(p, fs::perms(0755), ec);
    std::string output;
    int rc =
        RunTool({options_.python, "-m", "venv", "--system-site-packages", "--without-pip", root},
                120, &output);
    if (rc == 0) {
      std::vector<std::string> pip = {options_.python,
                                      "-m",
                                      "pip",
                                      "--python",
                                      image["python"],
                                      "install",
                                      "--disable-pip-version-check",
                                      "--no-input",
                                      "--no-cache-dir",
                                      "--only-binary",
                                      ":all:"};
      if (!image["find_links"].is_null()) {
        pip.push_back("--find-links");
        pip.push_back(image["find_links"]);
      }
      if (image["index_url"].is_null()) {
        pip.push_back("--no-index");
      } else {
        pip.push_back("--index-url");
        pip.push_back(image["index_url"]);
      }
      pip.push_back("--");
      for (const json& r : image["requirements"]) pip.push_back(r);
      output.clear();
      rc = RunTool(pip, kBuildTimeoutSeconds, &output);
    }
    if (rc != 0) {
      image["status"] = "failed";
      image["error"] = "pip: " + LastLines(output, 6);
      RETURN_IF_ERROR(Audited(caller, "worker_image.build", "image", id, &image, "failed"));
      return InvalidArgumentError("building the environment failed: " + LastLines(output, 6));
    }
    // Readable, not writable, by all but its builder: the sandbox's uid reads it (whatever the
    // server's umask made of it).
    auto open_up = [&ec](const fs::path& p) {
      fs::file_status st = fs::symlink_status(p, ec);
      if (ec || fs::is_symlink(st)) return;
      fs::perms keep = st.permissions() & fs::perms(0700);
      fs::perms more = fs::is_directory(st) || (keep & fs::perms::owner_exec) != fs::perms::none
                           ? fs::perms(0755)
                           : fs::perms(0644);
      fs::permissions(p, (keep & fs::perms(0700)) | more, ec);
    };
    open_up(root);
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
         it.increment(ec))
      open_up(it->path());
  }
  ASSIGN_OR_RETURN(image, CheckImage(std::move(image)));
  RETURN_IF_ERROR(Audited(
      caller, "worker_image.build", "image", id, &image,
      image["status"].get<std::string>() + " " + image.value("packages_hash", std::string())));
  if (image["status"] != "ready")
    return InvalidArgumentError("the environment does not work: " +
                                image["error"].get<std::string>());
  spdlog::info("worker image {} built by {}", id, caller.email);
  return image;
}

// What a data scientist sees of an image: what it holds, not where it came from (an index URL may
// carry credentials, paths and pip's output name the host).
json ForScientists(json image) {
  for (const char* key : {"path", "find_links", "index_url", "python", "created_by"})
    image.erase(key);
  if (!image.value("error", json()).is_null()) image["error"] = "the environment does not work";
  return image;
}

Result<json> PoolService::ListImages(const Principal& caller) {
  json out = json::array({DefaultImage()});
  ASSIGN_OR_RETURN(std::vector<store::PoolRecord> records, store_.ListPoolRecords("image"));
  std::vector<json> images;
  for (const auto& r : records) images.push_back(json::parse(r.doc));
  std::sort(images.begin(), images.end(), [](const json& a, const json& b) {
    return std::make_pair(a.value("created_at", int64_t{0}), a.value("id", "")) <
           std::make_pair(b.value("created_at", int64_t{0}), b.value("id", ""));
  });
  for (json& i : images) out.push_back(std::move(i));
  if (!caller.IsDataOwner())
    for (json& i : out) i = ForScientists(std::move(i));
  return out;
}

Result<json> PoolService::GetImage(const Principal& caller, const std::string& id) {
  ASSIGN_OR_RETURN(json image, LoadImage(id));
  return caller.IsDataOwner() ? image : ForScientists(std::move(image));
}

Status PoolService::RemoveImage(const Principal& caller, const std::string& id) {
  RETURN_IF_ERROR(OwnersOnly(caller));
  if (id == kDefaultPool) return InvalidArgumentError("the image 'default' can't be removed");
  ASSIGN_OR_RETURN(json image, LoadImage(id));
  RETURN_IF_ERROR(NotInUse(id));
  RETURN_IF_ERROR(Audited(caller, "worker_image.remove", "image", id, nullptr,
                          image["name"].get<std::string>()));
  if (image["kind"] == "requirements") {
    std::error_code ec;
    fs::remove_all(image["path"].get<std::string>(), ec);
  }
  return Status::Ok();
}

Status PoolService::NotInUse(const std::string& image_id) {
  ASSIGN_OR_RETURN(std::vector<store::PoolRecord> pools, store_.ListPoolRecords("pool"));
  for (const auto& p : pools) {
    if (json::parse(p.doc, nullptr, false).value("image_id", "") == image_id)
      return FailedPreconditionError("the pool '" + p.key + "' runs this image: delete it first");
  }
  return Status::Ok();
}

Status PoolService::StartPool(Pool& pool, const json& image) {
  sandbox::Options o;
  o.python = image["python"].get<std::string>();
  o.env_root = image["path"].get<std::string>();
  for (const auto& m : image["imports"]) o.preload.push_back(m.get<std::string>());
  {
    std::lock_guard lock(mu_);
    o.slots = pool.doc["num_workers"].get<int>();
  }
  auto started = sandbox::StartSandbox(o);
  // The pool is listed (and may be read) while it starts: what it learns is written under mu_.
  if (!started.ok()) {
    std::lock_guard lock(mu_);
    pool.error = started.status().message();
    return started.status();
  }
  json env = (*started)->Environment();
  std::string hash = PackagesHash(env, o.env_root);
  std::lock_guard lock(mu_);
  pool.packages_hash = std::move(hash);
  pool.modules = env.value("modules", json::array());
  pool.sandbox = std::shared_ptr<sandbox::Sandbox>(std::move(*started));
  pool.error.clear();
  return Status::Ok();
}

json PoolService::PoolJson(const Pool& pool) {
  json out = pool.doc;
  if (!options_.local) {
    // Run by `datasite worker --pool` processes: what the last of them to start published.
    json env = RemoteEnvironment(pool.doc.value("name", ""));
    out["workers_ready"] = nullptr;
    out["packages_hash"] = env.value("packages_hash", "");
    out["status"] = env.is_object() && !env.empty() ? "external" : "no_workers";
    out["error"] = nullptr;
    return out;
  }
  out["workers_ready"] = pool.sandbox ? pool.sandbox->Slots() : 0;
  out["packages_hash"] = pool.packages_hash;
  out["status"] = pool.sandbox ? "ready" : pool.error.empty() ? "starting" : "failed";
  out["error"] = pool.error.empty() ? json(nullptr) : json(pool.error);
  return out;
}

json PoolService::RemoteEnvironment(const std::string& name) {
  auto r = store_.GetPoolRecord("pool_env", name);
  if (!r.ok()) return json::object();
  json env = json::parse(r->doc, nullptr, false);
  return env.is_object() ? env : json::object();
}

Result<json> PoolService::LaunchPool(const Principal& caller, const json& body) {
  RETURN_IF_ERROR(OwnersOnly(caller));
  if (!body.is_object()) return InvalidArgumentError("the body must be a JSON object");
  RETURN_IF_ERROR(CheckName(body.value("name", json()), "name"));
  const std::string name = body["name"];
  if (name == kDefaultPool) return AlreadyExistsError("the pool 'default' is the server's own");
  if (!body.contains("image_id") || !body["image_id"].is_string())
    return InvalidArgumentError("image_id must be a worker image's id");
  ASSIGN_OR_RETURN(json image, LoadImage(body["image_id"]));
  if (image["status"] != "ready")
    return FailedPreconditionError("the image '" + image["name"].get<std::string>() +
                                   "' is not built (status " + image["status"].get<std::string>() +
                                   ")");
  auto positive = [&body](const char* key, int64_t max, int64_t fallback) -> Result<int64_t> {
    if (!body.contains(key) || body[key].is_null()) return fallback;
    if (!body[key].is_number_integer() || body[key].get<int64_t>() < 1 ||
        body[key].get<int64_t>() > max)
      return InvalidArgumentError(std::string(key) + " must be an integer from 1 to " +
                                  std::to_string(max));
    return body[key].get<int64_t>();
  };
  ASSIGN_OR_RETURN(int64_t workers, positive("num_workers", sandbox::kMaxSlots, 1));
  ASSIGN_OR_RETURN(int64_t memory, positive("memory_bytes", int64_t{1} << 40,
                                            static_cast<int64_t>(options_.limits.memory_bytes)));
  ASSIGN_OR_RETURN(int64_t cpu, positive("cpu_seconds", 86'400, options_.limits.cpu_seconds));
  ASSIGN_OR_RETURN(int64_t timeout, positive("timeout_seconds", options_.max_timeout_ms / 1000,
                                             options_.max_timeout_ms / 1000));
  auto pool = std::make_shared<Pool>();
  pool->doc = {{"name", name},
               {"image_id", image["id"]},
               {"image_name", image["name"]},
               {"num_workers", workers},
               {"memory_bytes", memory},
               {"cpu_seconds", cpu},
               {"timeout_seconds", timeout},
               {"created_at", clock_.NowMillis()},
               {"created_by", caller.email}};
  {
    std::lock_guard lock(mu_);
    if (pools_.count(name)) return AlreadyExistsError("there is a pool named '" + name + "'");
    pools_[name] = pool;  // reserved while it starts
  }
  Status started = options_.local ? StartPool(*pool, image) : Status::Ok();
  if (!started.ok()) {
    std::lock_guard lock(mu_);
    pools_.erase(name);
    return FailedPreconditionError("the pool could not start: " + started.message());
  }
  Status saved = Audited(
      caller, "worker_pool.launch", "pool", name, &pool->doc,
      "image " + image["id"].get<std::string>() + ", " + std::to_string(workers) + " workers");
  if (!saved.ok()) {
    std::lock_guard lock(mu_);
    pools_.erase(name);
    return saved;
  }
  spdlog::info("worker pool {} launched by {}: image {}, {} workers", name, caller.email,
               image["name"].get<std::string>(), workers);
  std::lock_guard lock(mu_);
  return PoolJson(*pool);
}

Result<json> PoolService::ScalePool(const Principal& caller, const std::string& name, int workers) {
  RETURN_IF_ERROR(OwnersOnly(caller));
  if (workers < 1 || workers > sandbox::kMaxSlots)
    return InvalidArgumentError("num_workers must be from 1 to " +
                                std::to_string(sandbox::kMaxSlots));
  if (name == kDefaultPool)
    return InvalidArgumentError("the default pool's size is the server's --workers");
  std::shared_ptr<Pool> pool;
  std::shared_ptr<sandbox::Sandbox> sandbox;
  std::string error;
  {
    std::lock_guard lock(mu_);
    auto it = pools_.find(name);
    if (it == pools_.end()) return NotFoundError("no worker pool '" + name.substr(0, 80) + "'");
    pool = it->second;
    sandbox = pool->sandbox;
    error = pool->error;
  }
  if (options_.local) {
    if (!sandbox) {
      return FailedPreconditionError(error.empty() ? "the pool is still starting: try again soon"
                                                   : "the pool is down: " + error);
    }
    RETURN_IF_ERROR(sandbox->Resize(workers));
  }  // else recorded only: its workers' number is their deployment's
  json doc;
  {
    std::lock_guard lock(mu_);
    pool->doc["num_workers"] = workers;
    doc = pool->doc;
  }
  RETURN_IF_ERROR(Audited(caller, "worker_pool.scale", "pool", name, &doc,
                          std::to_string(workers) + " workers"));
  std::lock_guard lock(mu_);
  return PoolJson(*pool);
}

Status PoolService::DeletePool(const Principal& caller, const std::string& name) {
  RETURN_IF_ERROR(OwnersOnly(caller));
  if (name == kDefaultPool) return InvalidArgumentError("the pool 'default' can't be deleted");
  std::shared_ptr<Pool> pool;
  {
    std::lock_guard lock(mu_);
    auto it = pools_.find(name);
    if (it == pools_.end()) return NotFoundError("no worker pool '" + name.substr(0, 80) + "'");
    pool = std::move(it->second);
    pools_.erase(it);
  }
  // Runs holding the pool's sandbox keep it (shared_ptr) until they end.
  return Audited(caller, "worker_pool.delete", "pool", name, nullptr, "");
}

// What a data scientist sees of a pool: not why it is down (the sandbox's words name host paths),
// nor who launched it.
json PoolForScientists(json pool) {
  pool.erase("created_by");
  if (!pool.value("error", json()).is_null()) pool["error"] = "the pool is down";
  return pool;
}

Result<json> PoolService::ListPools(const Principal& caller) {
  json out = json::array();
  json def = {{"name", kDefaultPool},
              {"image_id", kDefaultPool},
              {"image_name", kDefaultPool},
              {"memory_bytes", options_.limits.memory_bytes},
              {"cpu_seconds", options_.limits.cpu_seconds},
              {"timeout_seconds", options_.max_timeout_ms / 1000},
              {"created_at", 0},
              {"created_by", ""},
              {"error", nullptr}};
  sandbox::Sandbox* d;
  {
    std::lock_guard lock(mu_);
    d = default_sandbox_;
  }
  def["num_workers"] = d ? d->Slots() : 0;
  def["workers_ready"] = d ? d->Slots() : 0;
  def["status"] = d ? "ready" : "starting";
  def["packages_hash"] = d ? EnvironmentHash(*d) : "";
  if (!d && !options_.local) {  // run by external workers, as DefaultImage says
    def["packages_hash"] = RemoteEnvironment(kDefaultPool).value("packages_hash", "");
    def["status"] = def["packages_hash"] == "" ? "no_workers" : "external";
  }
  out.push_back(std::move(def));
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, pool] : pools_) out.push_back(PoolJson(*pool));
  }
  if (!caller.IsDataOwner())
    for (json& p : out) p = PoolForScientists(std::move(p));
  return out;
}

Result<json> PoolService::GetPool(const Principal& caller, const std::string& name) {
  ASSIGN_OR_RETURN(json all, ListPools(caller));
  for (json& p : all)
    if (p["name"] == name) return std::move(p);
  return NotFoundError("no worker pool '" + name.substr(0, 80) + "'");
}

void PoolService::Load() {
  auto records = store_.ListPoolRecords("pool");
  if (!records.ok()) {
    spdlog::error("worker pools: could not read them: {}", records.status().ToString());
    return;
  }
  std::lock_guard lock(mu_);
  for (const auto& r : *records) {
    auto pool = std::make_shared<Pool>();
    pool->doc = json::parse(r.doc, nullptr, false);
    if (pool->doc.is_discarded()) continue;
    pools_.emplace(r.key, std::move(pool));  // "starting" until Restore has started it
  }
}

void PoolService::Restore() {
  if (!options_.local) return;  // run by external workers
  std::vector<std::pair<std::string, std::shared_ptr<Pool>>> waiting;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, pool] : pools_)
      if (!pool->sandbox && pool->error.empty()) waiting.emplace_back(name, pool);
  }
  // An owner may scale, delete or relaunch a pool meanwhile: each acts on what is listed. A pool
  // deleted while it starts is dropped here with its sandbox; a scale is refused until it runs.
  for (auto& [name, pool] : waiting) {
    std::string image_id;
    {
      std::lock_guard lock(mu_);
      image_id = pool->doc.value("image_id", "");
    }
    auto image = LoadImage(image_id);
    if (!image.ok()) {
      std::lock_guard lock(mu_);
      pool->error = image.status().message();
    }
    // StartPool records its own failure in the pool.
    Status started = image.ok() ? StartPool(*pool, *image) : image.status();
    if (!started.ok())
      spdlog::error("worker pool {}: could not start: {}", name, started.ToString());
  }
}

Status PoolService::CheckPoolName(const std::string& name) {
  if (name == kDefaultPool) return Status::Ok();
  std::lock_guard lock(mu_);
  if (pools_.count(name)) return Status::Ok();
  std::string names = kDefaultPool;
  for (const auto& [n, p] : pools_) names += ", " + n;
  return InvalidArgumentError("worker_pool_name: no pool '" + name.substr(0, 80) +
                              "' (the pools: " + names + ")");
}

std::optional<store::PoolRecord> PoolService::CodePoolRecord(const std::string& code_id,
                                                             const std::string& pool) {
  if (pool == kDefaultPool) return std::nullopt;
  return store::PoolRecord{"code", code_id, pool, clock_.NowMillis()};
}

std::string PoolService::CurrentHash(const std::string& name) {
  if (!options_.local) return RemoteEnvironment(name).value("packages_hash", "");
  std::lock_guard lock(mu_);
  if (name == kDefaultPool)
    return default_sandbox_ != nullptr ? EnvironmentHash(*default_sandbox_) : "";
  auto it = pools_.find(name);
  return it != pools_.end() && it->second->sandbox ? it->second->packages_hash : "";
}

Status PoolService::BindApproval(store::Store& tx, const std::string& code_id) {
  auto record = tx.GetPoolRecord("code", code_id);
  if (!record.ok() && record.status().code() != StatusCode::kNotFound) return record.status();
  const std::string name = record.ok() ? record->doc : kDefaultPool;
  const std::string hash = CurrentHash(name);
  if (hash.empty() && name == kDefaultPool) {
    // Not known yet: nothing is bound (and an approval bound before, then withdrawn, binds no
    // more).
    Status gone = tx.DeletePoolRecord("approval", code_id);
    return gone.code() == StatusCode::kNotFound ? Status::Ok() : gone;
  }
  if (hash.empty()) {
    return FailedPreconditionError(options_.local
                                       ? "the code's pool '" + name + "' is not running"
                                       : "no worker runs the code's pool '" + name +
                                             "' yet (datasite worker --pool " + name + ")");
  }
  return tx.PutPoolRecord({"approval", code_id, hash, clock_.NowMillis()});
}

bool PoolService::EnvironmentChanged(const store::UserCode& code) {
  const std::string now = CurrentHash(code.worker_pool_name);
  if (now.empty()) return false;
  // An approval in the default pool made before its environment was known bound none, and its
  // runs are not refused (CodeService checks a bound one only): there is nothing to bind anew, and
  // approving it again is refused as for any decided request.
  if (code.worker_pool_name == kDefaultPool && code.approved_environment.empty()) return false;
  return now != code.approved_environment;
}

Result<PoolRun> PoolService::ForRun(const store::UserCode& code, bool private_run) {
  const std::string& name = code.worker_pool_name;
  PoolRun run;
  if (name == kDefaultPool) return run;
  std::lock_guard lock(mu_);
  auto it = pools_.find(name);
  if (it == pools_.end())
    return FailedPreconditionError("the code's worker pool '" + name + "' was deleted");
  const Pool& pool = *it->second;
  if (!pool.sandbox) {
    return FailedPreconditionError("the worker pool '" + name + "' " +
                                   (pool.error.empty() ? "is still starting" : "is down"));
  }
  if (private_run && code.approved_environment != pool.packages_hash)
    return FailedPreconditionError(
        "the worker pool '" + name +
        "' runs another environment than the one approved: the code needs a new review (the owner "
        "approves the request again)");
  run.sandbox = pool.sandbox;
  run.packages_hash = pool.packages_hash;
  run.limits = options_.limits;
  run.limits.memory_bytes = pool.doc.value("memory_bytes", options_.limits.memory_bytes);
  run.limits.cpu_seconds = pool.doc.value("cpu_seconds", options_.limits.cpu_seconds);
  run.timeout_ms = pool.doc.value("timeout_seconds", int64_t{0}) * 1000;
  return run;
}

std::vector<std::string> PoolService::PoolsWithModule(const std::string& module) {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  if (default_sandbox_ != nullptr) {
    json modules = default_sandbox_->Environment().value("modules", json::array());
    if (std::find(modules.begin(), modules.end(), module) != modules.end())
      out.push_back(kDefaultPool);
  }
  for (const auto& [name, pool] : pools_) {
    const json modules =
        options_.local ? pool->modules : RemoteEnvironment(name).value("modules", json::array());
    if (std::find(modules.begin(), modules.end(), module) != modules.end()) out.push_back(name);
  }
  return out;
}

}  // namespace datasite::services
