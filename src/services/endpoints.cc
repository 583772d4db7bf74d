#include "services/endpoints.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/random.h"
#include "data/sidecar.h"
#include "services/output_checks.h"
#include "services/source_check.h"

namespace datasite::services {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxSourceBytes = size_t{1} << 20;
constexpr size_t kMaxSettingsBytes = size_t{1} << 20;  // as JSON text
constexpr size_t kMaxDescriptionBytes = size_t{64} << 10;
constexpr size_t kMaxSignatureBytes = 2000;
constexpr size_t kMaxHelpers = 32;
constexpr size_t kMaxParams = 64;
constexpr size_t kMaxAssets = 16;
// What one call may return: it comes back in one response (or one descriptor to a job).
constexpr uint64_t kMaxCallResultBytes = uint64_t{64} << 20;
// Connections one call may have open at once (the server's are limited by EgressRelays too).
constexpr int kMaxConnectionsPerCall = 8;
// How much of a call's arguments, and of what a private function printed in a data scientist's
// job, its audit entry records.
constexpr size_t kAuditedArgumentChars = 2000;
constexpr size_t kAuditedOutputChars = 16000;

bool IsIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 100 || (std::isdigit(static_cast<unsigned char>(s[0])) != 0))
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

Status RequireOwner(const Principal& caller) {
  if (!caller.IsDataOwner()) return PermissionDeniedError("only data owners manage API endpoints");
  return Status::Ok();
}

// The Python source of one function: the same checks as submitted code's (nothing a display hides,
// the function defined at top level).
Status CheckFunctionSource(const std::string& what, const std::string& source,
                           const std::string& name) {
  if (source.empty() || source.size() > kMaxSourceBytes)
    return InvalidArgumentError(what + ": 'source' must be 1 byte to 1 MiB of Python");
  if (Status st = CheckSourceShownAsRun(source); !st.ok())
    return InvalidArgumentError(what + ": 'source', " + st.message());
  if (TopLevelDefinitionLine(source, name) == 0)
    return InvalidArgumentError(what + ": the source defines no top-level function '" + name + "'");
  return Status::Ok();
}

std::string Joined(const std::vector<std::string>& params) {
  std::string out = "(";
  for (size_t i = 0; i < params.size(); ++i) out += (i ? ", " : "") + params[i];
  return out + ")";
}

std::string Cut(std::string s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s + "...";
}

}  // namespace

// One function of an endpoint, as the owner gave it.
struct EndpointService::Side {
  std::string name;
  std::string source;
  json settings = json::object();
  json helpers = json::object();  // name -> source
  std::string signature;
  std::vector<std::string> params;
  json assets = json::object();  // name -> asset id

  json ToJson() const {
    return {{"name", name},       {"source", source},       {"settings", settings},
            {"helpers", helpers}, {"signature", signature}, {"params", params},
            {"assets", assets}};
  }

  static Result<Side> Parse(const json& j, const std::string& what) {
    static const std::set<std::string> kKeys = {"name",      "source", "settings", "helpers",
                                                "signature", "params", "assets"};
    if (!j.is_object()) return InvalidArgumentError(what + " must be an object");
    for (const auto& [key, value] : j.items()) {
      if (kKeys.count(key) == 0)
        return InvalidArgumentError(what + ": unknown key '" + Cut(key, 64) + "'");
    }
    Side s;
    if (!j.contains("name") || !j["name"].is_string() || !IsIdentifier(j["name"]))
      return InvalidArgumentError(what + ": 'name' must be the function's name");
    s.name = j["name"];
    if (!j.contains("source") || !j["source"].is_string())
      return InvalidArgumentError(what + ": 'source' must be a string");
    s.source = j["source"];
    RETURN_IF_ERROR(CheckFunctionSource(what, s.source, s.name));
    if (j.contains("settings") && !j["settings"].is_null()) {
      if (!j["settings"].is_object())
        return InvalidArgumentError(what + ": 'settings' must be an object");
      s.settings = j["settings"];
      if (s.settings.dump().size() > kMaxSettingsBytes)
        return InvalidArgumentError(what + ": 'settings' over 1 MiB as JSON");
    }
    if (j.contains("helpers") && !j["helpers"].is_null()) {
      if (!j["helpers"].is_object() || j["helpers"].size() > kMaxHelpers)
        return InvalidArgumentError(what + ": 'helpers' must be an object of at most 32 functions");
      for (const auto& [name, source] : j["helpers"].items()) {
        if (!IsIdentifier(name) || !source.is_string())
          return InvalidArgumentError(what + ": each helper is 'name': 'source'");
        RETURN_IF_ERROR(
            CheckFunctionSource(what + ", helper '" + name + "'", source.get<std::string>(), name));
      }
      s.helpers = j["helpers"];
    }
    if (j.contains("params") && !j["params"].is_null()) {
      if (!j["params"].is_array() || j["params"].size() > kMaxParams)
        return InvalidArgumentError(what + ": 'params' must be a list of at most 64 names");
      std::set<std::string> seen;
      for (const json& p : j["params"]) {
        if (!p.is_string() || !IsIdentifier(p) || p == "context" || !seen.insert(p).second)
          return InvalidArgumentError(what +
                                      ": 'params' are the parameters' names after context, "
                                      "each a distinct Python identifier");
        s.params.push_back(p);
      }
    }
    if (j.contains("signature") && !j["signature"].is_null()) {
      if (!j["signature"].is_string() ||
          j["signature"].get_ref<const std::string&>().size() > kMaxSignatureBytes)
        return InvalidArgumentError(what + ": 'signature' must be a string of at most 2000 bytes");
      s.signature = j["signature"];
    } else {
      s.signature = Joined(s.params);
    }
    if (j.contains("assets") && !j["assets"].is_null()) {
      if (!j["assets"].is_object() || j["assets"].size() > kMaxAssets)
        return InvalidArgumentError(what + ": 'assets' must be an object of at most 16 assets");
      for (const auto& [name, id] : j["assets"].items()) {
        if (!IsIdentifier(name) || !id.is_string() ||
            std::find(s.params.begin(), s.params.end(), name) != s.params.end())
          return InvalidArgumentError(what +
                                      ": each asset is 'name': 'asset id', the name a Python "
                                      "identifier that is no parameter");
      }
      s.assets = j["assets"];
    }
    return s;
  }
};

struct EndpointService::Definition {
  std::optional<std::string> description;
  Side mock;
  std::optional<Side> priv;
  int64_t timeout_ms = 60'000;
  bool hide_mock_definition = false;
  json output_checks;  // null: none

  json ToJson() const {
    return {{"description", description ? json(*description) : json(nullptr)},
            {"mock", mock.ToJson()},
            {"private", priv ? priv->ToJson() : json(nullptr)},
            {"timeout_ms", timeout_ms},
            {"hide_mock_definition", hide_mock_definition},
            {"output_checks", output_checks}};
  }
};

EndpointService::EndpointService(store::Store& store, blob::BlobStore& blobs, const Clock& clock,
                                 EndpointOptions options)
    : store_(store), blobs_(blobs), clock_(clock), options_(std::move(options)) {}

void EndpointService::SetSandbox(std::unique_ptr<sandbox::Sandbox> sandbox) {
  std::lock_guard lock(sandbox_mu_);
  sandbox_ = std::move(sandbox);
  sandbox_cv_.notify_all();
}

void EndpointService::SetSandboxFailure(Status why) {
  std::lock_guard lock(sandbox_mu_);
  sandbox_failure_ = std::move(why);
  sandbox_cv_.notify_all();
}

Result<sandbox::Sandbox*> EndpointService::WaitForSandbox() {
  std::unique_lock lock(sandbox_mu_);
  if (!sandbox_ && !sandbox_failure_ && options_.sandbox) {
    // The first call starts it (a few hundred milliseconds: pandas is imported once); calls made
    // meanwhile wait on the lock.
    std::error_code made;
    std::filesystem::create_directories(options_.scratch_dir, made);
    if (made)
      return UnavailableError("the endpoint calls' directory can't be made: " + made.message());
    auto started = sandbox::StartSandbox(*options_.sandbox);
    if (started.ok()) {
      spdlog::info("endpoint sandbox: {}", (*started)->Describe());
      sandbox_ = std::move(*started);
    } else {
      spdlog::error("endpoint sandbox: {}", started.status().message());
      // Remembered, as the jobs' sandbox's failure is: calls are refused with it from now on
      // instead of each trying to start one again under the lock.
      sandbox_failure_ = started.status();
      return UnavailableError("the endpoint sandbox could not start: " +
                              started.status().message());
    }
  }
  // The sandbox starts with the server, in a second or so; a call made meanwhile waits for it.
  sandbox_cv_.wait_for(lock, std::chrono::seconds(30),
                       [this] { return sandbox_ != nullptr || sandbox_failure_.has_value(); });
  if (sandbox_) return sandbox_.get();
  if (sandbox_failure_)
    return FailedPreconditionError("this server runs no code: " + sandbox_failure_->message());
  return UnavailableError("the sandbox is still starting; call again");
}

Status EndpointService::Audit(const Principal& actor, const std::string& action,
                              const std::string& target, const std::string& detail) {
  return store_.AppendAudit({clock_.NowSeconds(), actor.AuditName(), action, target, detail});
}

std::timed_mutex& EndpointService::SideLock(const std::string& path, bool private_side) {
  std::lock_guard lock(locks_mu_);
  auto& slot = side_locks_[path + (private_side ? "#private" : "#mock")];
  if (!slot) slot = std::make_unique<std::timed_mutex>();
  return *slot;
}

bool EndpointService::UsesState(const Side& side) {
  if (side.source.find("state") != std::string::npos) return true;
  for (const auto& [name, source] : side.helpers.items()) {
    if (source.get_ref<const std::string&>().find("state") != std::string::npos) return true;
  }
  return false;
}

bool EndpointService::UserTurn::Wait(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(service_.turns_mu_);
  if (!service_.turns_cv_.wait_until(lock, deadline,
                                     [this] { return service_.running_.count(user_) == 0; }))
    return false;
  service_.running_.insert(user_);
  held_ = true;
  return true;
}

EndpointService::UserTurn::~UserTurn() {
  if (!held_) return;
  {
    std::lock_guard lock(service_.turns_mu_);
    service_.running_.erase(user_);
  }
  service_.turns_cv_.notify_all();
}

Result<EndpointService::Definition> EndpointService::ParseDefinition(const json& body, bool partial,
                                                                     const Definition* base) {
  static const std::set<std::string> kKeys = {"path",
                                              "description",
                                              "mock",
                                              "private",
                                              "timeout_seconds",
                                              "worker_pool_name",
                                              "hide_mock_definition",
                                              "output_checks"};
  if (!body.is_object()) return InvalidArgumentError("the body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (kKeys.count(key) == 0 || (partial && key == "path"))
      return InvalidArgumentError("unknown key '" + Cut(key, 64) + "'");
  }
  Definition d = base ? *base : Definition{};
  if (!base) d.timeout_ms = std::min(options_.default_timeout_ms, options_.max_timeout_ms);
  bool changed = false;
  if (body.contains("description")) {
    const json& v = body["description"];
    if (!v.is_null() &&
        (!v.is_string() || v.get_ref<const std::string&>().size() > kMaxDescriptionBytes))
      return InvalidArgumentError("'description' must be a string of at most 64 KiB");
    d.description = v.is_null() ? std::nullopt : std::optional<std::string>(v);
    changed = true;
  }
  if (body.contains("mock") && !body["mock"].is_null()) {
    ASSIGN_OR_RETURN(d.mock, Side::Parse(body["mock"], "mock_function"));
    changed = true;
  } else if (!partial) {
    return InvalidArgumentError("'mock' (the mock function) is required");
  }
  if (body.contains("private") && !body["private"].is_null()) {
    ASSIGN_OR_RETURN(d.priv, Side::Parse(body["private"], "private_function"));
    changed = true;
  }
  if (body.contains("timeout_seconds") && !body["timeout_seconds"].is_null()) {
    const json& v = body["timeout_seconds"];
    const int64_t max_s = options_.max_timeout_ms / 1000;
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > max_s)
      return InvalidArgumentError("'timeout_seconds' must be 1 to " + std::to_string(max_s) +
                                  " (the server's --job-timeout)");
    d.timeout_ms = v.get<int64_t>() * 1000;
    changed = true;
  }
  if (body.contains("worker_pool_name") && !body["worker_pool_name"].is_null()) {
    if (body["worker_pool_name"] != "default")
      return InvalidArgumentError(
          "'worker_pool_name': this server has only the default pool (worker pools are not "
          "built yet)");
    changed = true;
  }
  if (body.contains("hide_mock_definition") && !body["hide_mock_definition"].is_null()) {
    if (!body["hide_mock_definition"].is_boolean())
      return InvalidArgumentError("'hide_mock_definition' must be true or false");
    d.hide_mock_definition = body["hide_mock_definition"];
    changed = true;
  }
  if (body.contains("output_checks")) {
    const json& v = body["output_checks"];
    if (v.is_null() || (v.is_object() && v.empty())) {
      d.output_checks = nullptr;
    } else {
      ASSIGN_OR_RETURN(OutputRules rules, ParseOutputRules(v));
      d.output_checks = OutputRulesJson(rules);
    }
    changed = true;
  }
  if (partial && !changed) {
    return InvalidArgumentError(
        "nothing to update: give mock_function, private_function, endpoint_timeout, "
        "hide_mock_definition, description or output_checks");
  }
  if (d.priv && d.priv->params != d.mock.params) {
    return InvalidArgumentError(
        "the mock and private functions' signatures differ: mock " + d.mock.signature +
        ", private " + d.priv->signature +
        "; a changed signature must be given on both sides (update both functions together)");
  }
  for (const Side* side : {&d.mock, d.priv ? &*d.priv : nullptr}) {
    if (side == nullptr) continue;
    for (const auto& [name, id] : side->assets.items()) {
      auto dataset = store_.GetDatasetByAsset(id.get<std::string>());
      if (!dataset.ok()) {
        if (dataset.status().code() == StatusCode::kNotFound)
          return NotFoundError("asset '" + name + "': no asset with id '" +
                               Cut(id.get<std::string>(), 64) + "'");
        return dataset.status();
      }
    }
  }
  return d;
}

namespace {

Result<json> StoredDefinition(const store::ApiEndpoint& e) {
  json d = json::parse(e.definition, nullptr, false);
  if (!d.is_object()) return InternalError("the endpoint '" + e.path + "' is stored unreadably");
  return d;
}

}  // namespace

json EndpointService::View(const Principal& caller, const store::ApiEndpoint& e,
                           const Definition& d) const {
  json v = {{"path", e.path},
            {"description", d.description ? json(*d.description) : json(nullptr)},
            {"signature", d.mock.signature},
            {"params", d.mock.params},
            {"has_private", d.priv.has_value()},
            {"timeout_seconds", d.timeout_ms / 1000},
            {"worker_pool_name", nullptr},
            {"hide_mock_definition", d.hide_mock_definition},
            {"created_at", FormatIsoTime(e.created_at / 1000)},
            {"updated_at", FormatIsoTime(e.updated_at / 1000)}};
  if (caller.IsDataOwner()) {
    auto state = [](const std::string& text) {
      json s = json::parse(text, nullptr, false);
      return s.is_discarded() ? json::object() : s;
    };
    v["mock"] = d.mock.ToJson();
    v["mock"]["state"] = state(e.mock_state);
    if (d.priv) {
      v["private"] = d.priv->ToJson();
      v["private"]["state"] = state(e.private_state);
    } else {
      v["private"] = nullptr;
    }
    v["output_checks"] = d.output_checks;
  } else {
    // A data scientist sees what they call: the mock's code unless hidden, never its settings,
    // its state or anything of the private function.
    v["mock"] = d.hide_mock_definition ? json(nullptr)
                                       : json{{"name", d.mock.name}, {"source", d.mock.source}};
  }
  return v;
}

Result<json> EndpointService::Add(const Principal& caller, const json& body) {
  RETURN_IF_ERROR(RequireOwner(caller));
  if (!body.is_object() || !body.contains("path") || !body["path"].is_string())
    return InvalidArgumentError("'path' must be the endpoint's path, 'service.method'");
  const std::string path = body["path"];
  if (options_.check_path) RETURN_IF_ERROR(options_.check_path(path));
  ASSIGN_OR_RETURN(Definition d, ParseDefinition(body, false, nullptr));
  store::ApiEndpoint e;
  e.path = path;
  e.definition = d.ToJson().dump();
  e.created_by = caller.user_id.value_or("");
  e.created_at = e.updated_at = clock_.NowMillis();
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertApiEndpoint(e));
    return tx.AppendAudit({clock_.NowSeconds(), caller.AuditName(), "api_endpoint.create", path,
                           std::string(d.priv ? "mock and private functions" : "mock function") +
                               ", timeout " + std::to_string(d.timeout_ms / 1000) + " s"});
  });
  if (st.code() == StatusCode::kAlreadyExists)
    return AlreadyExistsError("an API endpoint at '" + path +
                              "' exists already: update it, or delete it first");
  RETURN_IF_ERROR(st);
  return View(caller, e, d);
}

Result<json> EndpointService::Update(const Principal& caller, const std::string& path,
                                     const json& body) {
  RETURN_IF_ERROR(RequireOwner(caller));
  ASSIGN_OR_RETURN(store::ApiEndpoint e, store_.GetApiEndpoint(path));
  ASSIGN_OR_RETURN(Definition base, ReadDefinition(e));
  ASSIGN_OR_RETURN(Definition d, ParseDefinition(body, true, &base));
  std::vector<std::string> changed;
  for (const auto& [key, value] : body.items()) changed.push_back(key);
  std::string what;
  for (const auto& c : changed) what += (what.empty() ? "" : ", ") + c;
  e.definition = d.ToJson().dump();
  e.updated_at = clock_.NowMillis();
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.UpdateApiEndpoint(path, e.definition, e.updated_at));
    return tx.AppendAudit(
        {clock_.NowSeconds(), caller.AuditName(), "api_endpoint.update", path, "changed " + what});
  }));
  return View(caller, e, d);
}

Status EndpointService::Delete(const Principal& caller, const std::string& path) {
  RETURN_IF_ERROR(RequireOwner(caller));
  return store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.DeleteApiEndpoint(path));
    return tx.AppendAudit(
        {clock_.NowSeconds(), caller.AuditName(), "api_endpoint.delete", path, ""});
  });
}

Result<json> EndpointService::List(const Principal& caller) {
  if (!caller.authenticated()) return UnauthenticatedError("log in to list API endpoints");
  ASSIGN_OR_RETURN(std::vector<store::ApiEndpoint> all, store_.ListApiEndpoints());
  json items = json::array();
  for (const auto& e : all) {
    auto d = ReadDefinition(e);
    if (!d.ok()) {
      spdlog::error("API endpoint {}: {}", e.path, d.status().ToString());
      continue;
    }
    items.push_back(View(caller, e, *d));
  }
  return json{{"items", std::move(items)}};
}

Result<json> EndpointService::Get(const Principal& caller, const std::string& path) {
  if (!caller.authenticated()) return UnauthenticatedError("log in to read API endpoints");
  ASSIGN_OR_RETURN(store::ApiEndpoint e, store_.GetApiEndpoint(path));
  ASSIGN_OR_RETURN(Definition d, ReadDefinition(e));
  return View(caller, e, d);
}

std::vector<std::string> EndpointService::ParamsOf(const std::string& path) {
  auto e = store_.GetApiEndpoint(path);
  if (!e.ok()) return {};
  auto d = ReadDefinition(*e);
  return d.ok() ? d->mock.params : std::vector<std::string>{};
}

bool EndpointService::HasOutputChecks(const std::string& path) {
  auto e = store_.GetApiEndpoint(path);
  if (!e.ok()) return false;
  auto d = ReadDefinition(*e);
  return d.ok() && !d->output_checks.is_null();
}

Result<EndpointResult> EndpointService::RunSide(const Principal& user, const store::ApiEndpoint& e,
                                                const Definition& d, bool private_side,
                                                const json& kwargs, EndpointFailure* failure,
                                                std::chrono::milliseconds at_most) {
  const Side& side = private_side ? *d.priv : d.mock;
  if (!kwargs.is_object()) return InvalidArgumentError("'kwargs' must be an object");
  for (const auto& [name, value] : kwargs.items()) {
    if (!IsIdentifier(name) || side.assets.contains(name))
      return InvalidArgumentError("argument '" + Cut(name, 64) + "' is not a parameter of " +
                                  e.path);
  }
  // A call takes at most its timeout (and what its job has left) in all, waiting included.
  std::chrono::milliseconds budget(std::min(d.timeout_ms, options_.max_timeout_ms));
  if (at_most.count() > 0) budget = std::min(budget, at_most);
  const auto deadline = std::chrono::steady_clock::now() + budget;
  auto too_late = [&e] {
    return Status(StatusCode::kDeadlineExceeded,
                  e.path + ": busy (other calls ran until its time was up); call again later");
  };
  ASSIGN_OR_RETURN(sandbox::Sandbox * sandbox, WaitForSandbox());
  sandbox::JobSpec spec;
  spec.source = side.source;
  spec.function_name = side.name;
  spec.function_line = TopLevelDefinitionLine(side.source, side.name);
  spec.constants = kwargs;
  spec.limits = options_.limits;
  spec.limits.max_result_bytes = std::min(spec.limits.max_result_bytes, kMaxCallResultBytes);
  // The assets the function binds: the private data on the private side, the mocks on the mock
  // side; held as local files until the call is over.
  std::vector<blob::LocalFile> files;
  json asset_names = json::array();
  for (const auto& [name, id] : side.assets.items()) {
    auto dataset = store_.GetDatasetByAsset(id.get<std::string>());
    if (!dataset.ok())
      return FailedPreconditionError("the endpoint's asset '" + name + "' no longer exists");
    const store::Asset* asset = nullptr;
    for (const auto& a : dataset->assets)
      if (a.id == id) asset = &a;
    const auto& blob =
        asset == nullptr ? std::nullopt : (private_side ? asset->data_blob : asset->mock_blob);
    if (!blob)
      return FailedPreconditionError("the endpoint's asset '" + name + "' has no " +
                                     (private_side ? "private data here" : "mock"));
    ASSIGN_OR_RETURN(blob::LocalFile file, blobs_.Materialize(blob->id));
    spec.inputs.push_back(
        {name, file.path(), blob->format, blob->format == "csv" ? blob->meta : ""});
    files.push_back(std::move(file));
    asset_names.push_back(name);
  }
  // One user runs one call at a time (the endpoint sandbox's slots are everyone's), and calls of
  // a function that keeps state run one at a time here, each reading the state the last one kept.
  // A function whose code never names `state` runs its calls side by side (its state is written
  // only if it changed, over the version it read).
  UserTurn turn(*this, user.user_id.value_or(user.email));
  if (!turn.Wait(deadline)) return too_late();
  std::unique_lock<std::timed_mutex> serial(SideLock(e.path, private_side), std::defer_lock);
  if (UsesState(side) && !serial.try_lock_until(deadline)) return too_late();
  spec.finish_by = deadline;
  spec.limits.wall_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (spec.limits.wall_timeout.count() <= 0) return too_late();
  ASSIGN_OR_RETURN(store::ApiEndpoint now, store_.GetApiEndpoint(e.path));
  const std::string& state_text = private_side ? now.private_state : now.mock_state;
  const int64_t state_version = private_side ? now.private_state_version : now.mock_state_version;
  json state = json::parse(state_text, nullptr, false);
  if (!state.is_object()) state = json::object();
  json who = {{"id", user.user_id ? json(*user.user_id) : json(nullptr)},
              {"email", user.email},
              {"name", nullptr},
              {"role", std::string(auth::RoleName(user.role))}};
  if (user.user_id) {
    if (auto u = store_.GetUserById(*user.user_id); u.ok()) who["name"] = u->name;
  }
  spec.endpoint = {{"settings", side.settings},
                   {"user", std::move(who)},
                   {"state", std::move(state)},
                   {"helpers", side.helpers},
                   {"assets", std::move(asset_names)}};
  // The call's connections (--endpoint-egress): all of them end when the call returns.
  std::unique_ptr<net::EgressRelays::Group> connections;
  if (private_side && !options_.egress.empty()) {
    // The function may connect to the hosts the data owner named, and only those: the sandbox has
    // no network, the function sends the end of a Unix socket pair it made, and the connection
    // made here is relayed to it (a TCP socket handed over could be pointed elsewhere).
    connections = relays_.NewGroup(kMaxConnectionsPerCall);
    spec.endpoint["egress"] = true;
    spec.on_connect = [this, &e, &connections](sandbox::ConnectRequest& request) -> Status {
      const net::EgressTarget* target =
          net::FindEgressTarget(options_.egress, request.host, request.port);
      if (target == nullptr) {
        std::string host = Cut(request.host, 255);  // the function's text: one line of it
        for (char& c : host)
          if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
        spdlog::warn("API endpoint {}: refused a connection to {}:{} (not in --endpoint-egress)",
                     e.path, host, request.port);
        return PermissionDeniedError(
            "the server does not allow connections to this host and port (--endpoint-egress)");
      }
      return connections->Open(*target, request.socket.release(), request.time_left,
                               std::chrono::steady_clock::now() + request.time_left);
    };
  }
  const blob::LocalFile scratch(options_.scratch_dir + "/endpoint-" + NewUuid(), /*remove=*/true);
  auto r = sandbox->Run(spec, scratch.path(), nullptr);
  if (!r.ok() && r.status().code() == StatusCode::kDeadlineExceeded) return too_late();
  if (!r.ok()) {
    spdlog::error("API endpoint {}: the sandbox could not run the call: {}", e.path,
                  r.status().ToString());
    return UnavailableError("the sandbox could not run the call (details in the server log)");
  }
  EndpointResult out;
  out.path = e.path;
  out.side = private_side ? "private" : "mock";
  out.stdout_text = std::move(r->stdout_text);
  out.stderr_text = std::move(r->stderr_text);
  if (failure != nullptr) {
    failure->stdout_text = out.stdout_text;
    failure->stderr_text = out.stderr_text;
  }
  switch (r->outcome) {
    case sandbox::Outcome::kOk:
      break;
    case sandbox::Outcome::kError:
    case sandbox::Outcome::kPolicy:
      if (failure != nullptr) failure->raised = true;
      return InvalidArgumentError(r->error);
    case sandbox::Outcome::kTimeout:
      return Status(StatusCode::kDeadlineExceeded, e.path + ": " + r->error);
    case sandbox::Outcome::kResourceLimit:
      return ResourceExhaustedError(e.path + ": " + r->error);
    case sandbox::Outcome::kKilled:
      return UnavailableError(e.path + ": the call was cancelled");
    case sandbox::Outcome::kEnvironment:
      return FailedPreconditionError(e.path + ": " + r->error +
                                     " (the endpoints' sandbox has no such module)");
    case sandbox::Outcome::kSandboxFailure:
      spdlog::error("API endpoint {}: sandbox failure: {}", e.path, r->error);
      return UnavailableError(
          "the sandbox failed while running the call (details in the server log)");
  }
  std::ifstream in(scratch.path(), std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  out.bytes = ss.str();
  if (out.bytes.size() != r->result_bytes)
    return InternalError("the call's result could not be read back");
  out.format = r->result_format;
  out.meta = std::move(r->result_meta);
  if (!out.meta.empty()) {
    // Written by the function's process: checked as a job's result sidecar is.
    auto meta = data::ParseSidecar(out.meta, std::nullopt);
    if (!meta.ok()) {
      if (failure != nullptr) failure->raised = true;
      return InvalidArgumentError("the result's sidecar was refused: " + meta.status().message());
    }
  }
  if (!r->policy_state.empty() &&
      r->policy_state != json::parse(state_text, nullptr, false).dump()) {
    ASSIGN_OR_RETURN(bool written, store_.UpdateApiEndpointState(e.path, private_side,
                                                                 state_version, r->policy_state));
    if (!written) {
      // Another server process called this function meanwhile and kept its state first: this
      // call counted against a state that is gone, so its result is not given.
      return FailedPreconditionError(e.path +
                                     ": its state was changed by a concurrent call; call again");
    }
  }
  return out;
}

Result<EndpointResult> EndpointService::Call(const Principal& caller, const std::string& path,
                                             const std::string& side, const json& kwargs,
                                             EndpointFailure* failure) {
  if (!caller.authenticated()) return UnauthenticatedError("log in to call API endpoints");
  ASSIGN_OR_RETURN(store::ApiEndpoint e, store_.GetApiEndpoint(path));
  ASSIGN_OR_RETURN(Definition d, ReadDefinition(e));
  bool private_side = false;
  if (side == "auto") {
    private_side = caller.IsDataOwner() && d.priv.has_value();
  } else if (side == "private") {
    if (!caller.IsDataOwner())
      return PermissionDeniedError(
          "only data owners call an endpoint's private function; a data scientist calls it "
          "inside code a data owner approved, or calls the mock");
    if (!d.priv) return InvalidArgumentError(path + " has no private function");
    private_side = true;
  } else if (side != "mock") {
    return InvalidArgumentError("'side' must be 'auto', 'mock' or 'private'");
  }
  auto result = RunSide(caller, e, d, private_side, kwargs, failure);
  Status audited = Audit(
      caller, "api_endpoint.call", path,
      std::string("side=") + (private_side ? "private" : "mock") + " kwargs=" +
          Cut(kwargs.dump(-1, ' ', false, json::error_handler_t::replace), kAuditedArgumentChars) +
          (result.ok() ? "" : " failed: " + Cut(result.status().message(), 200)));
  if (!audited.ok())
    spdlog::error("API endpoint {}: the call's audit entry: {}", path, audited.ToString());
  if (!result.ok()) return result.status();
  if (!caller.IsDataOwner()) result->stderr_text.clear();
  return result;
}

sandbox::EndpointAnswer EndpointService::CallFromJob(JobCallContext& context,
                                                     const sandbox::EndpointCall& call) {
  sandbox::EndpointAnswer answer;
  const bool owner = context.user.IsDataOwner();
  if (std::find(context.bound_paths.begin(), context.bound_paths.end(), call.path) ==
      context.bound_paths.end()) {
    answer.error = "'" + call.path + "' is not an endpoint this code took as an input";
    return answer;
  }
  auto e = store_.GetApiEndpoint(call.path);
  auto d = e.ok() ? ReadDefinition(*e) : Result<Definition>(e.status());
  if (!d.ok()) {
    answer.error = "the endpoint '" + call.path + "' no longer exists";
    return answer;
  }
  bool private_side = false;
  if (call.side == "private" && !context.private_run) {
    answer.error =
        "the private function is not called in a run on mocks (call the endpoint, or "
        ".mock())";
    return answer;
  }
  if (call.side == "private" && !d->priv) {
    answer.error = call.path + " has no private function";
    return answer;
  }
  if (call.side == "private" || (call.side == "auto" && context.private_run && d->priv))
    private_side = true;
  EndpointFailure failure;
  auto result = RunSide(context.user, *e, *d, private_side, call.kwargs, &failure, call.time_left);
  // What the private function printed, and why it failed, are its owner's: in a data scientist's
  // job they go only into the call's audit entry (data owners read it; no release of the job's
  // logs or error reaches it).
  const bool owners_only = private_side && !owner;
  const std::string printed = result.ok() ? result->stdout_text : failure.stdout_text;
  std::string detail =
      std::string("side=") + (private_side ? "private" : "mock") + " job=" + context.job_id +
      " kwargs=" +
      Cut(call.kwargs.dump(-1, ' ', false, json::error_handler_t::replace), kAuditedArgumentChars) +
      (result.ok() ? "" : " failed: " + Cut(result.status().message(), 2000));
  if (owners_only) {
    if (!printed.empty()) detail += " printed: " + Cut(printed, kAuditedOutputChars);
    if (result.ok() && !result->stderr_text.empty())
      detail += " stderr: " + Cut(result->stderr_text, kAuditedOutputChars);
  }
  Status audited = Audit(context.user, "api_endpoint.call", call.path, detail);
  if (!audited.ok())
    spdlog::error("API endpoint {}: the call's audit entry: {}", call.path, audited.ToString());
  if (!owners_only) {
    answer.stdout_text = printed;
    if (result.ok() && owner) answer.stderr_text = result->stderr_text;
  }
  if (!result.ok()) {
    if (owners_only && !d->output_checks.is_null()) {
      // Whether a private call fails can depend on the private data (arguments chosen to fail on
      // some rows): with output checks, a failure holds and stops the run as a held result does.
      if (context.held_reason.empty())
        context.held_reason = "endpoint " + call.path + ": its private function failed";
      answer.stop_job = true;
      return answer;
    }
    answer.error = owners_only ? "the private function failed (data owners can read why in the "
                                 "audit log, api_endpoint.call)"
                               : result.status().message();
    return answer;
  }
  std::string bytes = std::move(result->bytes);
  std::string meta = std::move(result->meta);
  if (owners_only && !d->output_checks.is_null()) {
    // The result goes to code whose output reaches a data scientist: the endpoint's output
    // checks apply to it as to a checked run's result; a held one holds the whole job.
    auto rules = ParseOutputRules(d->output_checks);
    if (!rules.ok()) {
      answer.error = "the endpoint's output checks could not be read";
      return answer;
    }
    const Verdict v = CheckOutput(*rules, result->format, bytes, meta, 0, {});
    if (!v.held.empty()) {
      // Held: the job is held for review and stopped here, given nothing of the result (going
      // on, it could still signal what it had seen through its other calls).
      if (context.held_reason.empty())
        context.held_reason = "endpoint " + call.path + ": " + v.held;
      answer.stop_job = true;
      return answer;
    } else {
      if (v.result) bytes = *v.result;
      if (v.meta) meta = *v.meta;
    }
  }
  int fd = memfd_create("endpoint-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    answer.error = "the server could not pass the result on";
    return answer;
  }
  sandbox::UniqueFd file(fd);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      answer.error = "the server could not pass the result on";
      return answer;
    }
    done += static_cast<size_t>(n);
  }
  // Sealed: the job reads the result and can change nothing of it.
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  answer.format = result->format;
  answer.meta = std::move(meta);
  answer.result = std::move(file);
  return answer;
}

Result<EndpointService::Definition> EndpointService::ReadDefinition(const store::ApiEndpoint& e) {
  ASSIGN_OR_RETURN(json j, StoredDefinition(e));
  Definition d;
  ASSIGN_OR_RETURN(d.mock, Side::Parse(j["mock"], "mock_function"));
  if (j.contains("private") && !j["private"].is_null()) {
    ASSIGN_OR_RETURN(d.priv, Side::Parse(j["private"], "private_function"));
  }
  if (j["description"].is_string()) d.description = j["description"].get<std::string>();
  d.timeout_ms = j.value("timeout_ms", int64_t{60'000});
  d.hide_mock_definition = j.value("hide_mock_definition", false);
  d.output_checks = j.contains("output_checks") ? j["output_checks"] : json(nullptr);
  return d;
}

}  // namespace datasite::services
