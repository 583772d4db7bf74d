// Differential privacy on tabular assets (docs/PRIVACY.md): a data owner's policy per asset, and
// queries answered on the private data without review, each charged to a budget the server keeps.
//
// Budgets: per asset, for each data scientist and for all of them together (an asset's people are
// its privacy units; assets that share people do not share a budget: see docs/PRIVACY.md). Kept in
// zCDP rho (dp/accountant.h) converted at half the policy's delta, reported as (epsilon, delta).
// A query's cost is charged in the same database transaction that records its release, before the
// answer leaves; concurrent queries never jointly overspend (Store::ChargeDpRelease). Queries on
// the mock are free and answered the same way. Data owners' own queries are answered and recorded
// without charge (they may read the private data anyway).
//
// Safe for concurrent use.
#ifndef DATASITE_SERVICES_DP_H_
#define DATASITE_SERVICES_DP_H_

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "blob/blob_store.h"
#include "core/clock.h"
#include "core/status.h"
#include "dp/engine.h"
#include "dp/policy.h"
#include "services/principal.h"
#include "store/store.h"

namespace datasite::services {

class DpService {
 public:
  DpService(store::Store& store, blob::BlobStore& blobs, const Clock& clock);

  // Data owners: sets (or replaces) the asset's policy, checked against the asset's columns; the
  // policy as stored. Audited ("dp.policy_set").
  Result<nlohmann::json> SetPolicy(const Principal& caller, const std::string& asset_id,
                                   const nlohmann::json& policy);
  // Anyone who may list datasets: the asset's policy (its bounds and categories are public).
  // kNotFound when the asset has none.
  Result<nlohmann::json> GetPolicy(const Principal& caller, const std::string& asset_id);
  Status DeletePolicy(const Principal& caller, const std::string& asset_id);

  // Answers a query (dp::ParseQuery's document, plus "mock": true for the mock). The answer:
  // {"estimates": [{"group"?, "quantile"?, "value", "noise_std"?}], "epsilon", "delta", "mock",
  // "charged", "budget": what is left}. kFailedPrecondition (409; not a rate that a wait would
  // help, nor a size), saying what is left, for a query the caller's budget (or all scientists')
  // can't pay.
  Result<nlohmann::json> Query(const Principal& caller, const std::string& asset_id,
                               const nlohmann::json& request);
  // What a query would cost and what would be left, without running it.
  Result<nlohmann::json> Cost(const Principal& caller, const std::string& asset_id,
                              const nlohmann::json& request);
  // The caller's budgets (data owners: every scientist's, and all scientists'), on `asset_id` or
  // on every asset with a policy when it is empty: {"items": [...]}.
  Result<nlohmann::json> Budgets(const Principal& caller, const std::string& asset_id);
  // Data owners: {"user_id": ID | "*", "epsilon": E} raises that budget to E in all (never
  // lowers it), {"user_id", "reset": true} forgets what was spent. Audited ("dp.budget_raised",
  // "dp.budget_reset").
  Result<nlohmann::json> AdjustBudget(const Principal& caller, const std::string& asset_id,
                                      const nlohmann::json& request);

 private:
  struct Loaded;  // an asset, its policy and its record
  Result<Loaded> Load(const std::string& asset_id);
  Result<std::shared_ptr<const dp::Table>> TableOf(const Loaded& loaded, bool mock);
  // Keeps `table` as the copy for `key` (blob id "@" policy update time "@" policy), newest first.
  void Remember(const std::string& key, std::shared_ptr<const dp::Table> table);
  nlohmann::json BudgetView(const dp::DpPolicy& policy, const store::DpBudgetRow& row) const;
  Result<store::DpBudgetRow> RowOf(const std::string& asset_id, const std::string& user_id);
  Status Audit(const Principal& actor, const std::string& action, const std::string& target,
               const std::string& detail);

  store::Store& store_;
  blob::BlobStore& blobs_;
  const Clock& clock_;
  // The column-oriented copies of recently queried assets (key: blob id, policy update time,
  // policy), newest first; at most kCachedTables.
  std::mutex cache_mu_;
  std::list<std::pair<std::string, std::shared_ptr<const dp::Table>>> cache_;
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_DP_H_
