// Worker pools (docs/API.md, "Worker pools"): named Python environments ("images", after PySyft's
// worker images; no Docker) and pools of warm sandbox slots running one of them.
//
// An image is an environment the data owner names by path (a virtualenv, a conda prefix, a system
// Python) or has the server build (a virtualenv with --system-site-packages under the data
// directory, filled by pip from the owner's package index or a wheel folder). Checking one starts a
// sandbox over it: the modules it claims are imported there, and what it holds (its packages,
// "name==version") is recorded with their hash. A pool runs an image in its own sandbox (its own
// bubblewrap, binding only its environment, read-only), with its own slots and limits. The pool
// "default" is the server's own sandbox (CodeService's); it can't be changed here.
//
// Code names its pool when submitted; approving its request binds the pool's package hash: a run
// finds the hash changed (the image rebuilt, the pool relaunched on another image) and refuses,
// asking for a new review.
//
// Safe for concurrent use.
#ifndef DATASITE_SERVICES_POOLS_H_
#define DATASITE_SERVICES_POOLS_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/status.h"
#include "sandbox/sandbox.h"
#include "services/principal.h"
#include "store/store.h"

namespace datasite::services {

inline constexpr const char* kDefaultPool = "default";

struct PoolOptions {
  std::string python = "/usr/bin/python3";  // the default image's, and what builds virtualenvs
  std::string envs_dir;                     // where built environments go (<data>/envs)
  sandbox::Limits limits;                   // a pool's limits unless it sets its own
  int64_t max_timeout_ms = 60'000;
  // Whether this process runs the pools' jobs. When not (an API server whose jobs `datasite worker
  // --pool NAME` processes run), a pool is only recorded here, and its environment is what its
  // workers published (PoolRecord "pool_env").
  bool local = true;
};

// What a run in a pool needs.
struct PoolRun {
  // Null for the default pool: the caller's own. Held by the run (a pool deleted meanwhile ends
  // when its last run does).
  std::shared_ptr<sandbox::Sandbox> sandbox;
  std::string packages_hash;
  sandbox::Limits limits;
  int64_t timeout_ms = 0;  // 0: the job's own
};

class PoolService {
 public:
  PoolService(store::Store& store, const Clock& clock, PoolOptions options);
  ~PoolService();

  // The default pool's sandbox, once it has started (not owned; may stay unset).
  void SetDefaultSandbox(sandbox::Sandbox* sandbox);

  // Images. Submit: {"name", "worker_config": {...}} (docs/API.md); a path or python is checked at
  // once. Build: builds a requirements image's environment (or re-checks a path image).
  Result<nlohmann::json> SubmitImage(const Principal& caller, const nlohmann::json& body);
  Result<nlohmann::json> BuildImage(const Principal& caller, const std::string& id);
  // Data scientists see what each holds, not where it came from (paths, index URLs, errors).
  Result<nlohmann::json> ListImages(const Principal& caller);
  Result<nlohmann::json> GetImage(const Principal& caller, const std::string& id);
  Status RemoveImage(const Principal& caller, const std::string& id);

  // Pools. Launch: {"name", "image_id", "num_workers"?, "memory_bytes"?, "cpu_seconds"?,
  // "timeout_seconds"?}; returns once its slots are warm.
  Result<nlohmann::json> LaunchPool(const Principal& caller, const nlohmann::json& body);
  Result<nlohmann::json> ScalePool(const Principal& caller, const std::string& name, int workers);
  Status DeletePool(const Principal& caller, const std::string& name);
  // Data scientists see a pool without why it is down or who launched it.
  Result<nlohmann::json> ListPools(const Principal& caller);
  Result<nlohmann::json> GetPool(const Principal& caller, const std::string& name);

  // At start: Load lists the pools the store holds, as "starting", before the server serves (so
  // that code may name them and owners manage them at once); Restore, once the default pool's
  // sandbox runs, starts them (a pool that fails stays listed as failed). With external workers
  // there is nothing to start.
  void Load();
  void Restore();

  // Code: kInvalidArgument naming the pools there are when `name` is none of them.
  Status CheckPoolName(const std::string& name);
  // The record that names code's pool, to write with the code (nullopt for the default pool).
  std::optional<store::PoolRecord> CodePoolRecord(const std::string& code_id,
                                                  const std::string& pool);
  // Binds the code's pool's current environment hash, in the approval's transaction `tx`;
  // kFailedPrecondition when that pool (not the default) is not running. The default pool's is
  // bound when it is known (the server's sandbox has started, or, with external workers, one has
  // published it); until then nothing is, and its runs are not held to one.
  Status BindApproval(store::Store& tx, const std::string& code_id);
  // Whether the environment the code's approval bound (code.approved_environment) is not the one
  // its pool runs now, which is known: its private runs are then refused until it is approved
  // again (CodeService::Approve binds the one there is then). A default-pool approval that bound
  // none (made before the environment was known) has not changed.
  bool EnvironmentChanged(const store::UserCode& code);
  // What a run of `code` in its pool (code.worker_pool_name) needs; kFailedPrecondition (saying so)
  // when the pool is gone or down, or (`private_run`) its environment is not the one approved.
  // A default-pool run needs nothing: its caller checks the default sandbox's environment
  // (EnvironmentHash) against the approved one.
  Result<PoolRun> ForRun(const store::UserCode& code, bool private_run);
  // The pools whose environment has top-level module `module`.
  std::vector<std::string> PoolsWithModule(const std::string& module);

 private:
  struct Pool;
  Result<nlohmann::json> CheckImage(nlohmann::json image);
  Result<nlohmann::json> LoadImage(const std::string& id);
  Status StartPool(Pool& pool, const nlohmann::json& image);
  nlohmann::json PoolJson(const Pool& pool);
  nlohmann::json DefaultImage();
  // kFailedPrecondition when a pool runs the image.
  Status NotInUse(const std::string& image_id);
  nlohmann::json RemoteEnvironment(const std::string& name);
  // The environment hash pool `name` runs now; '' when it is not known (not running, or the
  // server's sandbox not started yet).
  std::string CurrentHash(const std::string& name);
  // Writes (`doc`) or deletes (null) a record by an owner's request, and its audit entry `action`
  // (target worker_image:KEY or worker_pool:KEY), in one transaction.
  Status Audited(const Principal& caller, const std::string& action, const std::string& kind,
                 const std::string& key, const nlohmann::json* doc, const std::string& detail);

  store::Store& store_;
  const Clock& clock_;
  const PoolOptions options_;
  std::mutex mu_;  // guards what follows; not held while a sandbox starts
  sandbox::Sandbox* default_sandbox_ = nullptr;
  std::map<std::string, std::shared_ptr<Pool>> pools_;  // by name, not "default"
  std::mutex build_mu_;                                 // one build or check at a time
};

// The hash of an environment's package list, as recorded: SHA-256 hex of its JSON with the Python
// version and the environment's path.
std::string PackagesHash(const nlohmann::json& environment, const std::string& path);
// What an approval in the default pool binds: the PackagesHash of the environment `sandbox` (the
// server's or a worker's own, of no path) runs.
std::string EnvironmentHash(const sandbox::Sandbox& sandbox);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_POOLS_H_
