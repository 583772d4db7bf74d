#include "services/dp.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/random.h"
#include "dp/accountant.h"
#include "dp/random_bits.h"
#include "dp/table.h"

namespace datasite::services {
namespace {

using nlohmann::json;

constexpr size_t kCachedTables = 4;
// Delta is kept in integer units of 1e-18: costs round up, limits down.
constexpr double kDeltaUnitsPerDelta = 1e18;

int64_t DeltaCostUnits(double delta) {
  return static_cast<int64_t>(std::ceil(delta * kDeltaUnitsPerDelta));
}
int64_t DeltaLimitUnits(double delta) {
  return static_cast<int64_t>(std::floor(delta * kDeltaUnitsPerDelta));
}

// A budget's limits in the ledger's units: rho at half its delta, and the other half for what
// zCDP does not cover (dp::ConversionDelta).
Result<store::DpLimits> LimitsOf(const dp::PolicyBudget& b) {
  ASSIGN_OR_RETURN(int64_t rho, dp::RhoForEpsilonDeltaRemembered(b.epsilon, b.delta / 2));
  return store::DpLimits{rho, DeltaLimitUnits(b.delta / 2)};
}

double Round6(double x) { return std::round(x * 1e6) / 1e6; }

std::string Text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

}  // namespace

struct DpService::Loaded {
  store::Dataset dataset;
  store::Asset asset;
  store::DpPolicyRecord record;
  dp::DpPolicy policy;
};

DpService::DpService(store::Store& store, blob::BlobStore& blobs, const Clock& clock)
    : store_(store), blobs_(blobs), clock_(clock) {}

Status DpService::Audit(const Principal& actor, const std::string& action,
                        const std::string& target, const std::string& detail) {
  return store_.AppendAudit({clock_.NowSeconds(), actor.AuditName(), action, target, detail});
}

Result<DpService::Loaded> DpService::Load(const std::string& asset_id) {
  auto dataset = store_.GetDatasetByAsset(asset_id);
  if (!dataset.ok()) return NotFoundError("asset not found");
  Loaded out;
  for (const auto& a : dataset->assets)
    if (a.id == asset_id) out.asset = a;
  out.dataset = std::move(*dataset);
  auto record = store_.GetDpPolicy(asset_id);
  if (!record.ok() && record.status().code() == StatusCode::kNotFound)
    return FailedPreconditionError("asset '" + out.asset.name +
                                   "' has no DP policy: its data owner has not allowed DP queries "
                                   "on it");
  RETURN_IF_ERROR(record.status());
  out.record = std::move(*record);
  json doc = json::parse(out.record.policy, nullptr, false);
  ASSIGN_OR_RETURN(out.policy, dp::ParseDpPolicy(doc));
  return out;
}

Result<std::shared_ptr<const dp::Table>> DpService::TableOf(const Loaded& l, bool mock) {
  const auto& blob = mock ? l.asset.mock_blob : l.asset.data_blob;
  if (!blob)
    return FailedPreconditionError(mock ? "the asset has no mock"
                                        : "the asset's private data is not on this server");
  // The policy itself is in the key (not only its update time, in milliseconds): a copy read under
  // one policy is never used under another set within the same millisecond.
  const std::string key =
      blob->id + "@" + std::to_string(l.record.updated_at) + "@" + l.record.policy;
  {
    std::lock_guard lock(cache_mu_);
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->first != key) continue;
      cache_.splice(cache_.begin(), cache_, it);
      return cache_.front().second;
    }
  }
  ASSIGN_OR_RETURN(blob::LocalFile file, blobs_.Materialize(blob->id));
  ASSIGN_OR_RETURN(dp::Table table, dp::LoadCsvTable(file.path(), l.policy,
                                                     static_cast<uint64_t>(l.record.bounding_key)));
  auto shared = std::make_shared<const dp::Table>(std::move(table));
  Remember(key, shared);
  return shared;
}

void DpService::Remember(const std::string& key, std::shared_ptr<const dp::Table> table) {
  std::lock_guard lock(cache_mu_);
  cache_.emplace_front(key, std::move(table));
  if (cache_.size() > kCachedTables) cache_.pop_back();
}

Result<json> DpService::SetPolicy(const Principal& caller, const std::string& asset_id,
                                  const json& document) {
  if (!caller.IsDataOwner()) return PermissionDeniedError("only data owners set DP policies");
  ASSIGN_OR_RETURN(dp::DpPolicy policy, dp::ParseDpPolicy(document));
  auto dataset = store_.GetDatasetByAsset(asset_id);
  if (!dataset.ok()) return NotFoundError("asset not found");
  const store::Asset* asset = nullptr;
  for (const auto& a : dataset->assets)
    if (a.id == asset_id) asset = &a;
  if (asset == nullptr) return NotFoundError("asset not found");
  if (asset->format != "csv")
    return FailedPreconditionError("DP queries are on tabular (CSV) assets; '" + asset->name +
                                   "' is " + asset->format);
  for (bool mock : {false, true}) {
    const auto& blob = mock ? asset->mock_blob : asset->data_blob;
    if (!blob) continue;
    ASSIGN_OR_RETURN(blob::LocalFile file, blobs_.Materialize(blob->id));
    ASSIGN_OR_RETURN(std::string missing, dp::MissingPolicyColumns(file.path(), policy));
    if (!missing.empty())
      return InvalidArgumentError(std::string("DP policy: the asset") + (mock ? "'s mock" : "") +
                                  " has no column " + missing);
  }
  // The key that picks each unit's rows is fixed when a policy is first set (Store::SetDpPolicy
  // keeps it on a replace): the table is read once, with it, both to check the policy fits and as
  // the copy the first query would otherwise read again.
  int64_t key = 0;
  if (auto existing = store_.GetDpPolicy(asset_id); existing.ok()) {
    key = existing->bounding_key;
  } else {
    dp::SystemRandom().Fill({reinterpret_cast<uint8_t*>(&key), sizeof key});
    key &= INT64_MAX;
  }
  std::shared_ptr<const dp::Table> table;
  if (asset->data_blob) {
    // A table the policy does not fit (an unlisted column with more distinct values than its
    // max_keys) is refused to its owner now, not to every query later.
    ASSIGN_OR_RETURN(blob::LocalFile file, blobs_.Materialize(asset->data_blob->id));
    ASSIGN_OR_RETURN(dp::Table read,
                     dp::LoadCsvTable(file.path(), policy, static_cast<uint64_t>(key)));
    table = std::make_shared<const dp::Table>(std::move(read));
  }
  const json stored = dp::ToJson(policy);
  const int64_t now = clock_.NowMillis();
  RETURN_IF_ERROR(
      store_.SetDpPolicy({asset_id, stored.dump(), key, caller.user_id.value_or(""), now}));
  if (table)
    Remember(asset->data_blob->id + "@" + std::to_string(now) + "@" + stored.dump(), table);
  RETURN_IF_ERROR(Audit(caller, "dp.policy_set", "asset:" + asset_id, stored.dump()));
  return stored;
}

Result<json> DpService::GetPolicy(const Principal& caller, const std::string& asset_id) {
  if (!caller.authenticated()) return PermissionDeniedError("log in to read DP policies");
  auto record = store_.GetDpPolicy(asset_id);
  if (!record.ok()) return record.status();
  json doc = json::parse(record->policy, nullptr, false);
  ASSIGN_OR_RETURN(dp::DpPolicy policy, dp::ParseDpPolicy(doc));
  return dp::ToJson(policy);
}

Status DpService::DeletePolicy(const Principal& caller, const std::string& asset_id) {
  if (!caller.IsDataOwner()) return PermissionDeniedError("only data owners remove DP policies");
  RETURN_IF_ERROR(store_.GetDpPolicy(asset_id).status());
  RETURN_IF_ERROR(store_.DeleteDpPolicy(asset_id));
  return Audit(caller, "dp.policy_deleted", "asset:" + asset_id, "");
}

Result<store::DpBudgetRow> DpService::RowOf(const std::string& asset_id,
                                            const std::string& user_id) {
  ASSIGN_OR_RETURN(auto rows, store_.ListDpBudgets(asset_id, user_id));
  for (auto& row : rows)
    if (row.user_id == user_id) return row;
  return store::DpBudgetRow{asset_id, user_id};
}

json DpService::BudgetView(const dp::DpPolicy& policy, const store::DpBudgetRow& row) const {
  const bool all = row.user_id == store::kDpAllScientists;
  const dp::PolicyBudget& b = all ? policy.total : policy.per_scientist;
  const double conversion = b.delta / 2;
  auto limits = LimitsOf(b);
  json view = {{"asset_id", row.asset_id},
               {"user_id", all ? json(nullptr) : json(row.user_id)},
               {"scope", all ? "all_scientists" : "scientist"}};
  if (!limits.ok()) return view;
  const int64_t rho_limit = limits->rho + row.rho_extra;
  const int64_t rho_left = std::max<int64_t>(0, rho_limit - row.rho_spent);
  auto eps = [&](int64_t rho) -> double {
    if (rho <= 0) return 0;
    auto e = dp::EpsilonForRho(rho, conversion);
    return e.ok() ? Round6(*e) : 0;
  };
  const int64_t delta_limit = limits->delta + row.delta_extra;
  view["epsilon_total"] = eps(rho_limit);
  view["epsilon_spent"] = eps(row.rho_spent);
  // The largest epsilon one more query may ask for (zCDP budgets do not subtract as epsilons).
  view["epsilon_left"] = eps(rho_left);
  view["delta"] = b.delta;
  view["delta_spent"] = conversion + static_cast<double>(row.delta_spent) / kDeltaUnitsPerDelta;
  view["rho_total"] = static_cast<double>(rho_limit) / dp::kRhoUnitsPerRho;
  view["rho_spent"] = static_cast<double>(row.rho_spent) / dp::kRhoUnitsPerRho;
  view["rho_left"] = static_cast<double>(rho_left) / dp::kRhoUnitsPerRho;
  view["delta_left"] = static_cast<double>(std::max<int64_t>(0, delta_limit - row.delta_spent)) /
                       kDeltaUnitsPerDelta;
  return view;
}

Result<json> DpService::Cost(const Principal& caller, const std::string& asset_id,
                             const json& request) {
  if (!caller.authenticated() || !caller.user_id)
    return PermissionDeniedError("log in to ask DP queries");
  ASSIGN_OR_RETURN(Loaded l, Load(asset_id));
  json query_doc = request;
  query_doc.erase("mock");
  ASSIGN_OR_RETURN(dp::Query q, dp::ParseQuery(query_doc, l.policy));
  ASSIGN_OR_RETURN(dp::Cost cost, dp::CostOf(l.policy, q));
  ASSIGN_OR_RETURN(store::DpBudgetRow row, RowOf(asset_id, *caller.user_id));
  ASSIGN_OR_RETURN(store::DpBudgetRow all, RowOf(asset_id, store::kDpAllScientists));
  json out = {{"epsilon", q.epsilon},
              {"delta", cost.delta},
              {"rho", static_cast<double>(cost.rho_units) / dp::kRhoUnitsPerRho},
              {"budget", BudgetView(l.policy, row)},
              {"all_scientists", BudgetView(l.policy, all)}};
  return out;
}

Result<json> DpService::Query(const Principal& caller, const std::string& asset_id,
                              const json& request) {
  if (!caller.authenticated() || !caller.user_id)
    return PermissionDeniedError("log in to ask DP queries");
  if (!request.is_object()) return InvalidArgumentError("DP query: must be a JSON object");
  if (request.contains("mock") && !request["mock"].is_boolean())
    return InvalidArgumentError("DP query: 'mock' is true or false");
  const bool mock = request.value("mock", false);
  json query_doc = request;
  query_doc.erase("mock");
  ASSIGN_OR_RETURN(Loaded l, Load(asset_id));
  ASSIGN_OR_RETURN(dp::Query q, dp::ParseQuery(query_doc, l.policy));
  ASSIGN_OR_RETURN(dp::Cost cost, dp::CostOf(l.policy, q));
  const bool charged = !mock && !caller.IsDataOwner();
  const int64_t delta_units = DeltaCostUnits(cost.delta);
  ASSIGN_OR_RETURN(store::DpLimits user_limit, LimitsOf(l.policy.per_scientist));
  ASSIGN_OR_RETURN(store::DpLimits total_limit, LimitsOf(l.policy.total));
  auto refuse = [&](const store::DpBudgetRow& row, const char* whose) -> Status {
    json left = BudgetView(l.policy, row);
    return FailedPreconditionError(
        std::string("DP budget: this query (epsilon ") + Text(q.epsilon) + ") costs more than " +
        whose + " left on this asset: epsilon " + Text(left.value("epsilon_left", 0.0)) +
        " (delta " + Text(left.value("delta_left", 0.0)) + ") of " +
        Text(left.value("epsilon_total", 0.0)));
  };
  if (charged) {
    // A first check, so that a query nobody can pay for reads no data.
    ASSIGN_OR_RETURN(store::DpBudgetRow row, RowOf(asset_id, *caller.user_id));
    ASSIGN_OR_RETURN(store::DpBudgetRow all, RowOf(asset_id, store::kDpAllScientists));
    if (row.rho_spent + cost.rho_units > user_limit.rho + row.rho_extra ||
        row.delta_spent + delta_units > user_limit.delta + row.delta_extra)
      return refuse(row, "you have");
    if (all.rho_spent + cost.rho_units > total_limit.rho + all.rho_extra ||
        all.delta_spent + delta_units > total_limit.delta + all.delta_extra)
      return refuse(all, "all data scientists have");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const dp::Table> table, TableOf(l, mock));
  ASSIGN_OR_RETURN(dp::Answer answer,
                   dp::RunQuery(*table, l.policy, q, cost, dp::SystemRandom(), !mock));
  json estimates = json::array();
  for (const dp::Estimate& e : answer.estimates) {
    json item = {{"value", e.value}};
    if (e.group) item["group"] = *e.group;
    if (e.quantile) item["quantile"] = *e.quantile;
    if (e.noise_std) {
      item["noise_std"] = *e.noise_std;
      item["ci95"] = {e.value - 1.96 * *e.noise_std, e.value + 1.96 * *e.noise_std};
    } else {
      item["noise_std"] = nullptr;
    }
    estimates.push_back(std::move(item));
  }
  json out = {{"asset_id", asset_id}, {"query", query_doc},  {"estimates", estimates},
              {"epsilon", q.epsilon}, {"delta", cost.delta}, {"mock", mock},
              {"charged", charged}};
  if (!mock) {
    // Recorded (and, for a data scientist, paid) in one transaction before the answer leaves.
    store::DpRelease release{NewUuid(),
                             asset_id,
                             *caller.user_id,
                             query_doc.dump(),
                             estimates.dump(),
                             charged ? cost.rho_units : 0,
                             charged ? delta_units : 0,
                             clock_.NowMillis()};
    // The charge, the release and its audit entry commit together (one commit: SQLite syncs it).
    bool paid = false;
    RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
      ASSIGN_OR_RETURN(paid, tx.ChargeDpRelease(release, user_limit, total_limit));
      if (!paid) return Status::Ok();
      return tx.AppendAudit({clock_.NowSeconds(), caller.AuditName(), "dp.query",
                             "asset:" + asset_id,
                             query_doc.dump() + " rho=" + std::to_string(release.rho) +
                                 " delta_units=" + std::to_string(release.delta)});
    }));
    if (!paid) {
      // Another query of the caller's (or another scientist's) spent it meanwhile.
      ASSIGN_OR_RETURN(store::DpBudgetRow row, RowOf(asset_id, *caller.user_id));
      return refuse(row, "you have");
    }
  }
  if (!mock) {
    ASSIGN_OR_RETURN(store::DpBudgetRow row, RowOf(asset_id, *caller.user_id));
    out["budget"] = BudgetView(l.policy, row);
  }
  return out;
}

Result<json> DpService::Budgets(const Principal& caller, const std::string& asset_id) {
  if (!caller.authenticated() || !caller.user_id)
    return PermissionDeniedError("log in to read DP budgets");
  const std::string who = caller.IsDataOwner() ? "" : *caller.user_id;
  ASSIGN_OR_RETURN(auto rows, store_.ListDpBudgets(asset_id, who));
  if (!asset_id.empty() && !caller.IsDataOwner()) {
    bool mine = false;
    for (const auto& r : rows) mine = mine || r.user_id == *caller.user_id;
    if (!mine) rows.push_back({asset_id, *caller.user_id});  // nothing spent yet
  }
  std::map<std::string, std::optional<dp::DpPolicy>> policies;
  json items = json::array();
  for (const auto& row : rows) {
    auto& policy = policies[row.asset_id];
    if (!policy) {
      auto record = store_.GetDpPolicy(row.asset_id);
      if (!record.ok()) continue;  // the policy was removed: nothing to spend
      auto parsed = dp::ParseDpPolicy(json::parse(record->policy, nullptr, false));
      if (!parsed.ok()) continue;
      policy = std::move(*parsed);
    }
    items.push_back(BudgetView(*policy, row));
  }
  return json{{"items", std::move(items)}};
}

Result<json> DpService::AdjustBudget(const Principal& caller, const std::string& asset_id,
                                     const json& request) {
  if (!caller.IsDataOwner()) return PermissionDeniedError("only data owners change DP budgets");
  if (!request.is_object() || !request.contains("user_id") || !request["user_id"].is_string())
    return InvalidArgumentError("give 'user_id' (a data scientist's id, or '*' for all of them)");
  const std::string user = request["user_id"];
  ASSIGN_OR_RETURN(Loaded l, Load(asset_id));
  const bool all = user == store::kDpAllScientists;
  if (!all && !store_.GetUserById(user).ok()) return NotFoundError("user not found");
  const bool reset = request.value("reset", false);
  if (reset == request.contains("epsilon"))
    return InvalidArgumentError("give either 'epsilon' (the new total) or 'reset': true");
  if (reset) {
    RETURN_IF_ERROR(store_.AdjustDpBudget(asset_id, user, 0, 0, true));
    RETURN_IF_ERROR(Audit(caller, "dp.budget_reset", "asset:" + asset_id, "user=" + user));
  } else {
    if (!request["epsilon"].is_number()) return InvalidArgumentError("'epsilon' is a number");
    const double epsilon = request["epsilon"];
    const dp::PolicyBudget& base = all ? l.policy.total : l.policy.per_scientist;
    if (!std::isfinite(epsilon) || epsilon > 1000)
      return InvalidArgumentError("'epsilon' must be at most 1000");
    ASSIGN_OR_RETURN(int64_t wanted, dp::RhoForEpsilonDeltaRemembered(epsilon, base.delta / 2));
    ASSIGN_OR_RETURN(store::DpLimits limits, LimitsOf(base));
    ASSIGN_OR_RETURN(store::DpBudgetRow row, RowOf(asset_id, user));
    const int64_t add = wanted - (limits.rho + row.rho_extra);
    if (add <= 0)
      return InvalidArgumentError("DP budget: epsilon " + Text(epsilon) +
                                  " is not above the budget's total now (a budget is raised, "
                                  "never lowered below what it allowed)");
    RETURN_IF_ERROR(store_.AdjustDpBudget(asset_id, user, add, 0, false));
    RETURN_IF_ERROR(Audit(caller, "dp.budget_raised", "asset:" + asset_id,
                          "user=" + user + " epsilon=" + Text(epsilon)));
  }
  ASSIGN_OR_RETURN(store::DpBudgetRow row, RowOf(asset_id, user));
  return BudgetView(l.policy, row);
}

}  // namespace datasite::services
