#include "cli/dp_commands.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/http_client.h"
#include "cli/session.h"

namespace datasite::cli {
namespace {

using nlohmann::json;

// A policy is a few kilobytes; a larger file is a mistake.
constexpr int64_t kMaxPolicyFileBytes = int64_t{1} << 20;
// The server's largest page of users.
constexpr int64_t kUserPageSize = 1000;

const std::vector<std::string> kQueryKinds = {"count", "sum", "mean", "variance", "quantile"};

// What the command line said; filled by CLI11 during parse. Each field belongs to the one
// subcommand that is parsed.
struct Flags {
  CLI::App* dp = nullptr;
  CLI::App* policy = nullptr;
  CLI::App* policy_set = nullptr;
  CLI::App* policy_show = nullptr;
  CLI::App* policy_delete = nullptr;
  CLI::App* query = nullptr;
  CLI::App* cost = nullptr;
  CLI::App* budget = nullptr;
  CLI::App* raise = nullptr;
  CLI::App* reset = nullptr;

  ConnectionFlags connection;  // on every command here

  bool json = false;
  std::string asset;  // an asset id, or DATASET/ASSET
  std::string file;   // policy set: the policy document ('-': stdin)

  // query and cost
  std::string kind;
  std::string column;
  double epsilon = 0;  // also budget raise's new total
  std::optional<double> delta;
  std::vector<std::string> where;
  std::string group_by;
  std::vector<double> quantiles;
  bool mock = false;

  // budget raise and reset
  std::string user;  // an id, an email, or "all"
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

// A number as people read it: whole numbers without decimals, others with 6 significant digits.
std::string Num(const json& v) {
  if (!v.is_number()) return "-";
  const double d = v.get<double>();
  char buf[64];
  if (d == std::trunc(d) && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", d);
  } else if (std::fabs(d) >= 1e5 && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.1f", d);
  } else {
    std::snprintf(buf, sizeof(buf), "%.6g", d);
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------
// What can be checked before connecting (kInvalidArgument: a usage error).

// The policy document in `path` ('-': standard input): one JSON object.
Result<json> ReadPolicyFile(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return InvalidArgumentError("cannot read the policy from standard input");
  } else {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return InvalidArgumentError("cannot read " + path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path + " is not a regular file");
    if (st.st_size > kMaxPolicyFileBytes) {
      return InvalidArgumentError(path + " is too large for a DP policy");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return InvalidArgumentError("cannot read " + path + ": " + std::strerror(errno));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return InvalidArgumentError("cannot read " + path);
  }
  const std::string what = path == "-" ? "standard input" : path;
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string message = e.what();
    if (size_t end = message.find("] "); end != std::string::npos) message.erase(0, end + 2);
    return InvalidArgumentError(what + " is not JSON: " + message);
  }
  if (!doc.is_object()) {
    return InvalidArgumentError(what +
                                " must hold one JSON object: {privacy_unit, max_rows_per_unit, "
                                "columns, budget, queries}");
  }
  return doc;
}

// The body of POST .../dp/query or .../dp/cost.
Result<json> QueryBody(const Flags& f, bool with_mock) {
  if (!std::isfinite(f.epsilon)) return InvalidArgumentError("--epsilon must be a number");
  json body = {{"query", f.kind}, {"epsilon", f.epsilon}};
  if (!f.column.empty()) body["column"] = f.column;
  if (f.delta) {
    if (!std::isfinite(*f.delta)) return InvalidArgumentError("--delta must be a number");
    body["delta"] = *f.delta;
  }
  if (!f.where.empty()) {
    json where = json::object();
    for (const auto& text : f.where) {
      size_t eq = text.find('=');
      if (eq == std::string::npos || eq == 0) {
        return InvalidArgumentError("bad --where '" + text +
                                    "': expected COLUMN=VALUE (repeat it for more values or "
                                    "columns)");
      }
      std::string column = text.substr(0, eq);
      std::string value = text.substr(eq + 1);
      // One value is sent as it is, several for the same column as a list (any of them).
      if (!where.contains(column)) {
        where[column] = value;
      } else {
        if (!where[column].is_array()) where[column] = json::array({where[column]});
        where[column].push_back(value);
      }
    }
    body["where"] = std::move(where);
  }
  if (!f.group_by.empty()) body["group_by"] = f.group_by;
  if (!f.quantiles.empty()) {
    if (f.kind != "quantile") {
      return InvalidArgumentError("--quantile is for a quantile query, not " + f.kind);
    }
    for (double q : f.quantiles) {
      if (!std::isfinite(q)) return InvalidArgumentError("--quantile must be a number");
    }
    body["quantiles"] = f.quantiles;
  }
  if (with_mock && f.mock) body["mock"] = true;
  try {
    (void)body.dump();
  } catch (const json::exception&) {
    return InvalidArgumentError("column names and --where values must be UTF-8");
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Names to ids

// The id of the asset `text` names: an id as it is, or DATASET/ASSET looked up (names contain
// no '/').
Result<std::string> AssetId(Session& s, const std::string& text) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) return text;
  const std::string dataset = text.substr(0, slash);
  const std::string asset = text.substr(slash + 1);
  ASSIGN_OR_RETURN(json d, s.Call("GET", "/api/v1/datasets/" + UrlEncode(dataset)));
  std::string names;
  const json& assets = Field(d, "assets");
  if (assets.is_array()) {
    for (const auto& a : assets) {
      if (Str(a, "name") == asset) return Str(a, "id");
      names += (names.empty() ? "" : ", ") + Str(a, "name");
    }
  }
  return NotFoundError("dataset '" + dataset + "' has no asset '" + asset +
                       "' (its assets: " + (names.empty() ? "none" : names) + ")");
}

std::string AssetTarget(const std::string& id, const char* rest) {
  return "/api/v1/assets/" + UrlEncode(id) + rest;
}

// The server's name for the budget `user` names: "*" for "all", an email looked up among the
// users, else the id as it is.
Result<std::string> BudgetUser(Session& s, const std::string& user) {
  if (user == "all" || user == "*") return std::string("*");
  if (user.find('@') == std::string::npos) return user;
  ASSIGN_OR_RETURN(json answer,
                   s.ListAll("/api/v1/users", "search=" + UrlEncode(user), kUserPageSize));
  for (const auto& u : Field(answer, "items")) {
    if (Str(u, "email") == user) return Str(u, "id");
  }
  return NotFoundError("no user with the email " + user);
}

// ---------------------------------------------------------------------------------------------
// Printing

// "epsilon 1.2 of 5 (delta 9e-07)" for a budget view of the server.
std::string Left(const json& b) {
  return "epsilon " + Num(Field(b, "epsilon_left")) + " of " + Num(Field(b, "epsilon_total")) +
         " (delta " + Num(Field(b, "delta_left")) + ")";
}

std::string Whose(const json& b) {
  return Str(b, "scope") == "all_scientists" ? "all scientists" : Str(b, "user_id");
}

void PrintPolicy(const std::string& asset_id, const json& p) {
  PrintField("Asset:", asset_id);
  const json& unit = Field(p, "privacy_unit");
  const std::string rows = Num(Field(p, "max_rows_per_unit"));
  const std::string each_unit =
      " (at most " + rows + (rows == "1" ? " row" : " rows") + " of each in a query)";
  PrintField("Privacy unit:", unit.is_string() ? unit.get<std::string>() + each_unit : "each row");
  const json& budget = Field(p, "budget");
  const json& each = Field(budget, "per_scientist");
  const json& total = Field(budget, "total");
  PrintField("Per scientist:",
             "epsilon " + Num(Field(each, "epsilon")) + ", delta " + Num(Field(each, "delta")));
  PrintField("All scientists:",
             "epsilon " + Num(Field(total, "epsilon")) + ", delta " + Num(Field(total, "delta")));
  std::string queries;
  for (const auto& q : Field(p, "queries")) {
    if (q.is_string()) queries += (queries.empty() ? "" : ", ") + q.get<std::string>();
  }
  PrintField("Queries:", queries);
  std::printf("Columns:\n");
  std::vector<std::vector<std::string>> rows_out;
  const json& columns = Field(p, "columns");
  if (columns.is_object()) {
    for (auto it = columns.begin(); it != columns.end(); ++it) {
      const json& c = it.value();
      std::string type = Str(c, "type");
      std::string values;
      if (type == "category") {
        const json& categories = Field(c, "categories");
        if (categories.is_array()) {
          for (const auto& v : categories) {
            if (v.is_string()) values += (values.empty() ? "" : ", ") + v.get<std::string>();
          }
        } else {
          values = "(not listed: groups by DP partition selection)";
        }
      } else {
        values = Num(Field(c, "lower")) + " to " + Num(Field(c, "upper"));
      }
      rows_out.push_back({"  " + it.key(), type, OneLine(values, 200)});
    }
  }
  PrintTable({"  NAME", "TYPE", "BOUNDS OR CATEGORIES"}, rows_out);
}

void PrintEstimates(const json& answer) {
  const json& estimates = Field(answer, "estimates");
  bool grouped = false, quantiles = false;
  if (estimates.is_array()) {
    for (const auto& e : estimates) {
      grouped = grouped || Field(e, "group").is_string();
      quantiles = quantiles || Field(e, "quantile").is_number();
    }
  }
  std::vector<std::string> header;
  if (grouped) header.push_back("GROUP");
  if (quantiles) header.push_back("QUANTILE");
  for (const char* h : {"VALUE", "NOISE_STD", "CI95"}) header.push_back(h);
  std::vector<std::vector<std::string>> rows;
  if (estimates.is_array()) {
    for (const auto& e : estimates) {
      std::vector<std::string> row;
      if (grouped) row.push_back(Str(e, "group"));
      if (quantiles) row.push_back(Num(Field(e, "quantile")));
      row.push_back(Num(Field(e, "value")));
      row.push_back(Num(Field(e, "noise_std")));
      const json& ci = Field(e, "ci95");
      row.push_back(ci.is_array() && ci.size() == 2 ? "[" + Num(ci[0]) + ", " + Num(ci[1]) + "]"
                                                    : "-");
      rows.push_back(std::move(row));
    }
  }
  PrintTable(header, rows);
}

// ---------------------------------------------------------------------------------------------
// The commands

Status SetPolicy(Session& s, const Flags& f, const json& policy) {
  ASSIGN_OR_RETURN(std::string id, AssetId(s, f.asset));
  ASSIGN_OR_RETURN(json stored, s.Call("PUT", AssetTarget(id, "/dp_policy"), &policy));
  if (f.json) {
    std::cout << Dump(stored) << std::endl;
    return Status::Ok();
  }
  std::printf("Set the DP policy of asset %s\n", Printable(id).c_str());
  PrintPolicy(id, stored);
  return Status::Ok();
}

Status ShowPolicy(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(std::string id, AssetId(s, f.asset));
  ASSIGN_OR_RETURN(json policy, s.Call("GET", AssetTarget(id, "/dp_policy")));
  if (f.json) {
    std::cout << Dump(policy) << std::endl;
    return Status::Ok();
  }
  PrintPolicy(id, policy);
  return Status::Ok();
}

Status DeletePolicy(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(std::string id, AssetId(s, f.asset));
  ASSIGN_OR_RETURN(json answer, s.Call("DELETE", AssetTarget(id, "/dp_policy")));
  std::printf("Deleted the DP policy of asset %s: no more DP queries on it\n",
              Printable(id).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

Status Query(Session& s, const Flags& f, const json& body) {
  ASSIGN_OR_RETURN(std::string id, AssetId(s, f.asset));
  ASSIGN_OR_RETURN(json answer, s.Call("POST", AssetTarget(id, "/dp/query"), &body));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  PrintEstimates(answer);
  std::string cost =
      "epsilon " + Num(Field(answer, "epsilon")) + ", delta " + Num(Field(answer, "delta"));
  const bool mock = Field(answer, "mock").is_boolean() && Field(answer, "mock").get<bool>();
  const bool charged =
      Field(answer, "charged").is_boolean() && Field(answer, "charged").get<bool>();
  if (mock) {
    cost += ", on the mock: not charged";
  } else if (!charged) {
    cost += ", not charged (a data owner's own query)";
  }
  PrintField("Cost:", cost);
  const json& budget = Field(answer, "budget");
  if (budget.is_object() && charged) PrintField("Left:", Left(budget));
  std::fflush(stdout);
  return Status::Ok();
}

Status Cost(Session& s, const Flags& f, const json& body) {
  ASSIGN_OR_RETURN(std::string id, AssetId(s, f.asset));
  ASSIGN_OR_RETURN(json answer, s.Call("POST", AssetTarget(id, "/dp/cost"), &body));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  PrintField("Cost:", "epsilon " + Num(Field(answer, "epsilon")) + ", delta " +
                          Num(Field(answer, "delta")) + " (zCDP rho " + Num(Field(answer, "rho")) +
                          ")");
  PrintField("You have left:", Left(Field(answer, "budget")));
  PrintField("All scientists:", Left(Field(answer, "all_scientists")));
  return Status::Ok();
}

Status ListBudgets(Session& s, const Flags& f) {
  std::string target = "/api/v1/dp/budget";
  if (!f.asset.empty()) {
    ASSIGN_OR_RETURN(std::string id, AssetId(s, f.asset));
    target += "?asset_id=" + UrlEncode(id);
  }
  ASSIGN_OR_RETURN(json answer, s.Call("GET", target));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : Field(answer, "items")) {
    rows.push_back({Str(b, "asset_id"),
                    Str(b, "scope") == "all_scientists" ? "all" : Str(b, "user_id"),
                    Num(Field(b, "epsilon_spent")), Num(Field(b, "epsilon_left")),
                    Num(Field(b, "epsilon_total")), Num(Field(b, "delta_left"))});
  }
  PrintTable({"ASSET", "USER", "EPSILON_SPENT", "EPSILON_LEFT", "EPSILON_TOTAL", "DELTA_LEFT"},
             rows);
  return Status::Ok();
}

Status AdjustBudget(Session& s, const Flags& f, bool reset) {
  ASSIGN_OR_RETURN(std::string id, AssetId(s, f.asset));
  ASSIGN_OR_RETURN(std::string user, BudgetUser(s, f.user));
  json body = {{"user_id", user}};
  if (reset) {
    body["reset"] = true;
  } else {
    body["epsilon"] = f.epsilon;
  }
  ASSIGN_OR_RETURN(json view, s.Call("POST", AssetTarget(id, "/dp/budget"), &body));
  if (f.json) {
    std::cout << Dump(view) << std::endl;
    return Status::Ok();
  }
  std::printf("%s the DP budget of %s on asset %s: %s left\n", reset ? "Reset" : "Raised",
              Printable(Whose(view)).c_str(), Printable(id).c_str(), Printable(Left(view)).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

// Adds what query and cost share to `c`.
void AddQueryOptions(CLI::App* c, Flags& f) {
  c->add_option("asset", f.asset, "The asset: its id, or DATASET/ASSET")->required();
  c->add_option("query", f.kind, "count, sum, mean, variance or quantile")
      ->required()
      ->check(CLI::IsMember(kQueryKinds));
  c->add_option("--column", f.column, "The column (all but count)");
  c->add_option("--epsilon", f.epsilon, "The privacy loss to spend on it")->required();
  c->add_option("--delta", f.delta, "Its delta (default: the policy's)");
  c->add_option("--where", f.where,
                "COLUMN=VALUE: only rows with that category; repeat for more values of a column "
                "(any of them) or more columns (all of them)");
  c->add_option("--group-by", f.group_by, "A category column: one estimate per group");
  c->add_option("--quantile", f.quantiles,
                "A quantile from 0 to 1 (quantile queries; default 0.5); repeat for more");
  c->add_flag("--json", f.json, "Print the server's JSON");
}

}  // namespace

void AddDpCommands(CLI::App& app) {
  Flags& f = GetFlags();
  f.dp = app.add_subcommand(
      "dp", "Differential privacy: asset policies, queries answered with noise, and budgets");
  f.dp->require_subcommand(1);

  f.policy = f.dp->add_subcommand("policy", "Set, show and delete an asset's DP policy");
  f.policy->require_subcommand(1);
  f.policy_set = f.policy->add_subcommand("set", "Set (or replace) an asset's DP policy (owners)");
  f.policy_set->add_option("asset", f.asset, "The asset: its id, or DATASET/ASSET")->required();
  f.policy_set
      ->add_option("--file", f.file,
                   "The policy, a JSON object {privacy_unit, max_rows_per_unit, columns, budget, "
                   "queries} ('-': stdin)")
      ->required();
  f.policy_set->add_flag("--json", f.json, "Print the server's JSON");
  f.policy_show = f.policy->add_subcommand("show", "Show an asset's DP policy");
  f.policy_show->add_option("asset", f.asset, "The asset: its id, or DATASET/ASSET")->required();
  f.policy_show->add_flag("--json", f.json, "Print the server's JSON");
  f.policy_delete = f.policy->add_subcommand(
      "delete", "Remove an asset's DP policy: no more DP queries (owners)");
  f.policy_delete->add_option("asset", f.asset, "The asset: its id, or DATASET/ASSET")->required();

  f.query = f.dp->add_subcommand(
      "query", "Ask a DP query of an asset's private data, charged to your budget");
  AddQueryOptions(f.query, f);
  f.query->add_flag("--mock", f.mock, "Ask it of the mock instead (free)");
  f.cost = f.dp->add_subcommand("cost",
                                "What a DP query would cost, and what you have left; runs nothing");
  AddQueryOptions(f.cost, f);

  f.budget = f.dp->add_subcommand(
      "budget", "List your DP budgets (owners: every scientist's), or raise or reset one");
  f.budget->require_subcommand(0, 1);
  f.budget->add_option("--asset", f.asset, "Only this asset: its id, or DATASET/ASSET");
  f.budget->add_flag("--json", f.json, "Print the server's JSON");
  f.raise = f.budget->add_subcommand(
      "raise", "Raise a budget to a new total epsilon (owners; never lowers it)");
  f.raise->add_option("asset", f.asset, "The asset: its id, or DATASET/ASSET")->required();
  f.raise->add_option("--user", f.user, "A data scientist (id or email), or all")->required();
  f.raise->add_option("--epsilon", f.epsilon, "The new total")->required();
  f.raise->add_flag("--json", f.json, "Print the server's JSON");
  f.reset = f.budget->add_subcommand("reset", "Forget what was spent from a budget (owners)");
  f.reset->add_option("asset", f.asset, "The asset: its id, or DATASET/ASSET")->required();
  f.reset->add_option("--user", f.user, "A data scientist (id or email), or all")->required();
  f.reset->add_flag("--json", f.json, "Print the server's JSON");

  for (CLI::App* c : {f.policy_set, f.policy_show, f.policy_delete, f.query, f.cost, f.budget,
                      f.raise, f.reset}) {
    AddConnectionOptions(c, f.connection);
  }
}

int RunDpCommand() {
  Flags& f = GetFlags();
  if (f.dp == nullptr || !f.dp->parsed()) return -1;
  // What needs no server is checked first: a usage error exits 2 before connecting.
  json body;
  if (f.policy_set->parsed()) {
    auto policy = ReadPolicyFile(f.file);
    if (!policy.ok()) return Fail(policy.status(), kExitUsage);
    body = std::move(*policy);
  } else if (f.query->parsed() || f.cost->parsed()) {
    auto query = QueryBody(f, /*with_mock=*/f.query->parsed());
    if (!query.ok()) return Fail(query.status(), kExitUsage);
    body = std::move(*query);
  } else if (f.raise->parsed() && !std::isfinite(f.epsilon)) {
    return Fail(InvalidArgumentError("--epsilon must be a number"), kExitUsage);
  }
  std::vector<Subcommand> commands = {
      {f.policy_set, [&](Session& s) { return SetPolicy(s, f, body); }},
      {f.policy_show, [&](Session& s) { return ShowPolicy(s, f); }},
      {f.policy_delete, [&](Session& s) { return DeletePolicy(s, f); }},
      {f.query, [&](Session& s) { return Query(s, f, body); }},
      {f.cost, [&](Session& s) { return Cost(s, f, body); }},
      // Before budget: a parsed raise or reset has a parsed parent.
      {f.raise, [&](Session& s) { return AdjustBudget(s, f, /*reset=*/false); }},
      {f.reset, [&](Session& s) { return AdjustBudget(s, f, /*reset=*/true); }},
      {f.budget, [&](Session& s) { return ListBudgets(s, f); }},
  };
  return RunParsedSubcommand(f.connection, commands, "dp");
}

}  // namespace datasite::cli
