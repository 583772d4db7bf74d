#include "cli/request_commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/http_client.h"
#include "cli/session.h"

namespace datasite::cli {
namespace {

using nlohmann::json;

constexpr size_t kReasonColumnChars = 50;
constexpr size_t kErrorColumnChars = 60;
// Items asked for a page when listing: the server's largest page, so that few calls are made.
constexpr int64_t kListPageSize = 1000;

// What the command line said; filled by CLI11 during parse. Each field belongs to the one
// subcommand that is parsed.
struct Flags {
  CLI::App* requests = nullptr;
  CLI::App* requests_list = nullptr;
  CLI::App* requests_show = nullptr;
  CLI::App* approve = nullptr;
  CLI::App* deny = nullptr;

  CLI::App* jobs = nullptr;
  CLI::App* jobs_list = nullptr;
  CLI::App* jobs_show = nullptr;
  CLI::App* logs = nullptr;
  CLI::App* kill = nullptr;
  CLI::App* release = nullptr;
  CLI::App* release_error = nullptr;

  CLI::App* grants = nullptr;
  CLI::App* grants_list = nullptr;
  CLI::App* grants_show = nullptr;
  CLI::App* revoke = nullptr;

  ConnectionFlags connection;  // on every command here

  // `requests approve`: for repeated use (a grant) when a limit is given.
  std::optional<int64_t> per_minute;
  std::optional<int64_t> per_hour;
  std::optional<int64_t> per_day;
  std::optional<double> expires_in_days;
  std::vector<std::string> grant_users;

  bool json = false;
  std::string id;  // the request or job
  std::string status;
  std::string reason;
  std::string code_id;
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

std::string Target(const char* collection, const std::string& id, const char* action = nullptr) {
  std::string target = std::string("/api/v1/") + collection + "/" + UrlEncode(id);
  if (action != nullptr) target += std::string("/") + action;
  return target;
}

// "census/table" for an asset binding, the JSON value for a constant.
std::string DescribeInput(const json& input) {
  if (Field(input, "asset_id").is_string()) {
    std::string text = Str(input, "dataset") + "/" + Str(input, "asset");
    return "asset " + text + " (" + Str(input, "asset_id") + ")";
  }
  return "constant " + Field(input, "value").dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string DescribeOutputPolicy(const json& policy, const json& policy_code) {
  if (Str(policy, "kind") == "custom") {
    // The scientist chose its constructor's arguments: reviewed with its source.
    const json& kwargs = Field(Field(policy_code, "output"), "init_kwargs");
    std::string made =
        kwargs.is_object() && !kwargs.empty()
            ? ", made with " + kwargs.dump(-1, ' ', false, json::error_handler_t::replace)
            : "";
    return "custom: " + Str(Field(policy_code, "output"), "class") + made +
           " (its source is below)";
  }
  std::string text = Str(policy, "kind") + ", limit " + std::to_string(Int(policy, "limit"));
  if (Field(policy, "used").is_number_integer()) {
    text += ", used " + std::to_string(Int(policy, "used"));
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// requests

std::string CodeLabel(const json& code) {
  if (!code.is_object()) return "";
  return Str(code, "name") + " v" + std::to_string(Int(code, "version"));
}

Status ListRequests(Session& s, const Flags& f) {
  std::string query;
  if (!f.status.empty()) query = "status=" + UrlEncode(f.status);
  ASSIGN_OR_RETURN(json answer, s.ListAll("/api/v1/requests", query, kListPageSize));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  const json& items = Field(answer, "items");
  if (!items.is_array()) return InternalError("the request list has no items");
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : items) {
    rows.push_back({Str(r, "id"), Str(r, "status"), CodeLabel(Field(r, "code")),
                    Person(Field(r, "requested_by")), Str(r, "created_at"),
                    OneLine(Str(r, "reason"), kReasonColumnChars)});
  }
  PrintTable({"ID", "STATUS", "CODE", "REQUESTED BY", "CREATED", "REASON"}, rows);
  return Status::Ok();
}

void PrintRequest(const json& r) {
  const json& code = Field(r, "code");
  PrintField("Request:", Str(r, "id"));
  PrintField("Status:", Str(r, "status"));
  PrintField("Requested by:", Person(Field(r, "requested_by")));
  PrintField("Reason:", Str(r, "reason"));
  if (!Str(r, "deny_reason").empty()) PrintField("Deny reason:", Str(r, "deny_reason"));
  if (Field(r, "reviewed_by").is_object()) {
    PrintField("Reviewed by:", Person(Field(r, "reviewed_by")));
  }
  PrintField("Created:", Str(r, "created_at"));
  PrintField("Updated:", Str(r, "updated_at"));
  const json& history = Field(r, "history");
  if (history.is_array() && history.size() > 1) {
    std::printf("Decisions:\n");
    for (const auto& d : history) {
      std::string line =
          Str(d, "at") + "  " + Str(d, "status") + " by " + Person(Field(d, "reviewed_by"));
      if (!Str(d, "reason").empty()) line += ": " + Str(d, "reason");
      std::printf("  %s\n", Printable(line).c_str());
    }
  }
  PrintField("Code:", CodeLabel(code) + " (" + Str(code, "id") + ")");
  PrintField("Code hash:", Str(code, "code_hash"));
  PrintField("Output policy:",
             DescribeOutputPolicy(Field(code, "output_policy"), Field(code, "policy_code")));
  // The worker pool it runs in (issue 19); servers from before pools name none.
  std::string pool = Str(r, "worker_pool_name");
  if (pool.empty()) pool = Str(code, "worker_pool_name");
  if (!pool.empty()) PrintField("Worker pool:", pool);
  const json& inputs = Field(code, "inputs");
  std::printf("Inputs:\n");
  if (!inputs.is_object() || inputs.empty()) std::printf("  (none)\n");
  if (inputs.is_object()) {
    for (auto it = inputs.begin(); it != inputs.end(); ++it) {
      std::printf("  %s: %s\n", Printable(it.key()).c_str(),
                  Printable(DescribeInput(it.value())).c_str());
    }
  }
  std::printf("Source:\n");
  std::istringstream in(Str(code, "source"));
  for (std::string line; std::getline(in, line);) {
    std::printf("  %s\n", Printable(line).c_str());
  }
  // Custom policies are code that runs with the function: reviewed with it.
  const json& policy_code = Field(code, "policy_code");
  if (policy_code.is_object()) {
    std::printf("Custom policies (run with the code in the sandbox):\n");
    std::istringstream policies(Str(policy_code, "source"));
    for (std::string line; std::getline(policies, line);) {
      std::printf("  %s\n", Printable(line).c_str());
    }
  }
  std::fflush(stdout);
}

Status ShowRequest(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json r, s.Call("GET", Target("requests", f.id)));
  if (f.json) {
    std::cout << Dump(r) << std::endl;
  } else {
    PrintRequest(r);
  }
  return Status::Ok();
}

// "2 per minute, 10 per hour" for a grant's limits.
std::string GrantLimits(const json& g) {
  std::string out;
  for (const char* window : {"minute", "hour", "day"}) {
    const json& limit = Field(g, (std::string("per_") + window).c_str());
    if (!limit.is_number_integer()) continue;
    if (!out.empty()) out += ", ";
    out += std::to_string(limit.get<int64_t>()) + " per " + window;
  }
  return out;
}

// "1 this minute, 9 this hour" for what a data scientist has left under a grant.
std::string RunsLeft(const json& g) {
  const json& left = Field(g, "runs_left");
  std::string out;
  for (const char* window : {"minute", "hour", "day"}) {
    const json& n = Field(left, window);
    if (!n.is_number_integer()) continue;
    if (!out.empty()) out += ", ";
    out += std::to_string(n.get<int64_t>()) + " this " + window;
  }
  return out;
}

Status Approve(Session& s, const Flags& f) {
  json body = json::object();
  const bool repeat = f.per_minute || f.per_hour || f.per_day;
  if (!repeat && (f.expires_in_days || !f.grant_users.empty())) {
    return InvalidArgumentError(
        "--expires-in-days and --grant-user go with --repeat-per-minute, --repeat-per-hour or "
        "--repeat-per-day");
  }
  if (repeat) {
    json limits = json::object();
    if (f.per_minute) limits["per_minute"] = *f.per_minute;
    if (f.per_hour) limits["per_hour"] = *f.per_hour;
    if (f.per_day) limits["per_day"] = *f.per_day;
    body["repeat"] = std::move(limits);
    if (f.expires_in_days) body["expires_in_days"] = *f.expires_in_days;
    if (!f.grant_users.empty()) body["users"] = f.grant_users;
  }
  ASSIGN_OR_RETURN(json r, s.Call("POST", Target("requests", f.id, "approve"), &body));
  std::printf("Approved request %s: %s may run %s on private data\n",
              Printable(Str(r, "id")).c_str(), Printable(Person(Field(r, "requested_by"))).c_str(),
              Printable(CodeLabel(Field(r, "code"))).c_str());
  const json& grant = Field(r, "grant");
  if (grant.is_object()) {
    std::printf("Grant %s: repeated runs without review, at most %s, until %s\n",
                Printable(Str(grant, "id")).c_str(), Printable(GrantLimits(grant)).c_str(),
                Printable(Str(grant, "expires_at")).c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

Status ListGrants(Session& s, const Flags& f) {
  std::string query;
  if (!f.status.empty()) query = "status=" + UrlEncode(f.status);
  ASSIGN_OR_RETURN(json answer, s.ListAll("/api/v1/grants", query, kListPageSize));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  const json& items = Field(answer, "items");
  if (!items.is_array()) return InternalError("the grant list has no items");
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : items) {
    // Data owners see whom it names and its runs; a data scientist what they have left.
    std::string use;
    if (Field(g, "users").is_array()) {
      use = std::to_string(Field(g, "users").size()) + " users, " + std::to_string(Int(g, "runs")) +
            " runs";
    } else {
      use = RunsLeft(g) + " left";
    }
    rows.push_back({Str(g, "id"), Str(g, "status"), Str(g, "code_name"), GrantLimits(g), use,
                    Str(g, "expires_at")});
  }
  PrintTable({"ID", "STATUS", "CODE", "LIMITS", "USE", "EXPIRES"}, rows);
  return Status::Ok();
}

void PrintGrant(const json& g) {
  PrintField("Grant:", Str(g, "id"));
  PrintField("Status:", Str(g, "status"));
  PrintField("Code:", Str(g, "code_name") + " (" + Str(g, "code_id") + ")");
  PrintField("Code hash:", Str(g, "code_hash"));
  PrintField("Request:", Str(g, "request_id"));
  PrintField("Limits:", GrantLimits(g));
  PrintField("Created:", Str(g, "created_at") + " by " + Str(g, "created_by"));
  PrintField("Expires:", Str(g, "expires_at"));
  if (Field(g, "revoked_at").is_string()) PrintField("Revoked:", Str(g, "revoked_at"));
  const json& users = Field(g, "users");
  if (users.is_array()) {
    std::string names;
    for (const auto& u : users) names += (names.empty() ? "" : ", ") + Person(u);
    PrintField("Users:", names);
    PrintField("Runs:", std::to_string(Int(g, "runs")));
  } else {
    PrintField("Runs left:", RunsLeft(g));
    if (Field(g, "next_run_at").is_string()) PrintField("Next run at:", Str(g, "next_run_at"));
  }
  std::fflush(stdout);
}

Status ShowGrant(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json g, s.Call("GET", Target("grants", f.id)));
  if (f.json) {
    std::cout << Dump(g) << std::endl;
  } else {
    PrintGrant(g);
  }
  return Status::Ok();
}

Status Revoke(Session& s, const Flags& f) {
  json body = json::object();
  ASSIGN_OR_RETURN(json g, s.Call("POST", Target("grants", f.id, "revoke"), &body));
  std::printf("Revoked grant %s (%s) at %s\n", Printable(Str(g, "id")).c_str(),
              Printable(Str(g, "code_name")).c_str(), Printable(Str(g, "revoked_at")).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

Status Deny(Session& s, const Flags& f) {
  if (Trim(f.reason).empty()) return InvalidArgumentError("--reason must not be empty");
  json body = {{"reason", f.reason}};
  ASSIGN_OR_RETURN(json r, s.Call("POST", Target("requests", f.id, "deny"), &body));
  std::printf("Denied request %s (%s): %s\n", Printable(Str(r, "id")).c_str(),
              Printable(CodeLabel(Field(r, "code"))).c_str(),
              Printable(Str(r, "deny_reason")).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// jobs

std::string ResultText(const json& result) {
  if (!result.is_object()) return "";
  std::string text = Str(result, "format") + ", " + std::to_string(Int(result, "size")) + " bytes";
  if (Field(result, "held").is_boolean() && Field(result, "held").get<bool>()) {
    text += ", held for review";
  }
  return text;
}

Status ListJobs(Session& s, const Flags& f) {
  std::string query;
  if (!f.code_id.empty()) query += "&code_id=" + UrlEncode(f.code_id);
  if (!f.status.empty()) query += "&status=" + UrlEncode(f.status);
  if (!query.empty()) query = query.substr(1);
  ASSIGN_OR_RETURN(json answer, s.ListAll("/api/v1/jobs", query, kListPageSize));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  const json& items = Field(answer, "items");
  if (!items.is_array()) return InternalError("the job list has no items");
  std::vector<std::vector<std::string>> rows;
  for (const auto& j : items) {
    rows.push_back({Str(j, "id"), Str(j, "status"), Str(j, "kind"), Str(j, "code_name"),
                    Person(Field(j, "user")), Str(j, "created_at"),
                    OneLine(Str(j, "error"), kErrorColumnChars)});
  }
  PrintTable({"ID", "STATUS", "KIND", "CODE", "USER", "CREATED", "ERROR"}, rows);
  return Status::Ok();
}

void PrintJob(const json& j) {
  PrintField("Job:", Str(j, "id"));
  PrintField("Status:", Str(j, "status"));
  PrintField("Kind:", Str(j, "kind"));
  PrintField("Code:", Str(j, "code_name") + " (" + Str(j, "code_id") + ")");
  PrintField("User:", Person(Field(j, "user")));
  PrintField("Created:", Str(j, "created_at"));
  PrintField("Started:", Str(j, "started_at"));
  PrintField("Finished:", Str(j, "finished_at"));
  PrintField("Attempts:", std::to_string(Int(j, "attempts")));
  if (!Str(j, "failure").empty()) PrintField("Failure:", Str(j, "failure"));
  if (!Str(j, "error").empty()) PrintField("Error:", Str(j, "error"));
  if (Field(j, "result").is_object()) PrintField("Result:", ResultText(Field(j, "result")));
  std::fflush(stdout);
}

Status ShowJob(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json j, s.Call("GET", Target("jobs", f.id)));
  if (f.json) {
    std::cout << Dump(j) << std::endl;
  } else {
    PrintJob(j);
  }
  return Status::Ok();
}

// The job's stdout to stdout and its stderr (shown to data owners and admins only) to stderr, so
// either can be redirected alone.
Status Logs(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json logs, s.Call("GET", Target("jobs", f.id, "logs")));
  if (f.json) {
    std::cout << Dump(logs) << std::endl;
    return Status::Ok();
  }
  std::string out = Str(logs, "stdout"), err = Str(logs, "stderr");
  // Raw bytes into a pipe or file; on a terminal the job's output must not drive it.
  if (::isatty(STDOUT_FILENO)) out = Printable(out, /*keep_newlines=*/true);
  if (::isatty(STDERR_FILENO)) err = Printable(err, /*keep_newlines=*/true);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  std::fwrite(err.data(), 1, err.size(), stderr);
  std::fflush(stderr);
  return Status::Ok();
}

Status Kill(Session& s, const Flags& f) {
  json body = json::object();
  ASSIGN_OR_RETURN(json j, s.Call("POST", Target("jobs", f.id, "kill"), &body));
  std::printf("Killed job %s (%s): %s\n", Printable(Str(j, "id")).c_str(),
              Printable(Str(j, "code_name")).c_str(), Printable(Str(j, "status")).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

Status Release(Session& s, const Flags& f) {
  json body = json::object();
  ASSIGN_OR_RETURN(json j, s.Call("POST", Target("jobs", f.id, "release"), &body));
  std::printf("Released the result of job %s (%s) to %s\n", Printable(Str(j, "id")).c_str(),
              Printable(Str(j, "code_name")).c_str(), Printable(Person(Field(j, "user"))).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

Status ReleaseError(Session& s, const Flags& f) {
  json body = json::object();
  ASSIGN_OR_RETURN(json j, s.Call("POST", Target("jobs", f.id, "release_error"), &body));
  std::printf("Released the error of job %s (%s) to %s\n", Printable(Str(j, "id")).c_str(),
              Printable(Str(j, "code_name")).c_str(), Printable(Person(Field(j, "user"))).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace

void AddRequestCommands(CLI::App& app) {
  Flags& f = GetFlags();
  f.requests = app.add_subcommand("requests", "List, show, approve and deny code requests");
  f.requests->require_subcommand(1);

  f.requests_list = f.requests->add_subcommand("list", "List code requests, oldest first");
  f.requests_list->add_option("--status", f.status, "Only requests in this status")
      ->check(CLI::IsMember({"pending", "approved", "denied"}));
  f.requests_list->add_flag("--json", f.json, "Print the server's JSON");

  f.requests_show =
      f.requests->add_subcommand("show", "Show a request: its code, inputs and policies");
  f.requests_show->add_option("id", f.id, "Request id")->required();
  f.requests_show->add_flag("--json", f.json, "Print the server's JSON");

  f.approve = f.requests->add_subcommand("approve", "Approve a request (data owners and admins)");
  f.approve->add_option("id", f.id, "Request id")->required();
  // For repeated use: any of the three limits makes a grant.
  f.approve
      ->add_option("--repeat-per-minute", f.per_minute,
                   "Approve for repeated use: at most N runs per user in any minute")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  f.approve
      ->add_option("--repeat-per-hour", f.per_hour,
                   "Approve for repeated use: at most N runs per user in any hour")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  f.approve
      ->add_option("--repeat-per-day", f.per_day,
                   "Approve for repeated use: at most N runs per user in any day")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  f.approve->add_option("--expires-in-days", f.expires_in_days,
                        "When the grant ends (default 30 days)");
  f.approve->add_option("--grant-user", f.grant_users,
                        "Another data scientist (email or id) who may run the same code on the "
                        "same inputs; repeatable");

  f.deny = f.requests->add_subcommand("deny", "Deny a request (data owners and admins)");
  f.deny->add_option("id", f.id, "Request id")->required();
  f.deny->add_option("--reason", f.reason, "Why: the data scientist reads it")->required();

  f.jobs = app.add_subcommand("jobs", "List jobs, read their logs, kill and release them");
  f.jobs->require_subcommand(1);

  f.jobs_list = f.jobs->add_subcommand("list", "List jobs, oldest first");
  f.jobs_list->add_option("--code-id", f.code_id, "Only jobs of this code");
  f.jobs_list->add_option("--status", f.status, "Only jobs in this status")
      ->check(CLI::IsMember(
          {"queued", "running", "completed", "errored", "timed_out", "killed", "interrupted"}));
  f.jobs_list->add_flag("--json", f.json, "Print the server's JSON");

  f.jobs_show = f.jobs->add_subcommand("show", "Show a job");
  f.jobs_show->add_option("id", f.id, "Job id")->required();
  f.jobs_show->add_flag("--json", f.json, "Print the server's JSON");

  f.logs = f.jobs->add_subcommand("logs", "Print a job's stdout (and, to owners, its stderr)");
  f.logs->add_option("id", f.id, "Job id")->required();
  f.logs->add_flag("--json", f.json, "Print the server's JSON");

  f.kill = f.jobs->add_subcommand("kill", "Stop a queued or running job");
  f.kill->add_option("id", f.id, "Job id")->required();

  f.release = f.jobs->add_subcommand(
      "release", "Release a held result to its requester (data owners and admins)");
  f.release->add_option("id", f.id, "Job id")->required();

  f.release_error = f.jobs->add_subcommand(
      "release-error",
      "Show a failed private run's error and stderr to its requester (data owners and admins)");
  f.release_error->add_option("id", f.id, "Job id")->required();

  f.grants = app.add_subcommand("grants", "List, show and revoke grants (repeated use)");
  f.grants->require_subcommand(1);
  f.grants_list = f.grants->add_subcommand("list", "List grants, newest first");
  f.grants_list->add_option("--status", f.status, "Only grants in this status")
      ->check(CLI::IsMember({"active", "revoked", "expired"}));
  f.grants_list->add_flag("--json", f.json, "Print the server's JSON");
  f.grants_show = f.grants->add_subcommand("show", "Show a grant");
  f.grants_show->add_option("id", f.id, "Grant id")->required();
  f.grants_show->add_flag("--json", f.json, "Print the server's JSON");
  f.revoke = f.grants->add_subcommand("revoke", "Revoke a grant (data owners and admins)");
  f.revoke->add_option("id", f.id, "Grant id")->required();

  for (CLI::App* c :
       {f.requests_list, f.requests_show, f.approve, f.deny, f.jobs_list, f.jobs_show, f.logs,
        f.kill, f.release, f.release_error, f.grants_list, f.grants_show, f.revoke}) {
    AddConnectionOptions(c, f.connection);
  }
}

int RunRequestCommand() {
  Flags& f = GetFlags();
  bool requests = f.requests != nullptr && f.requests->parsed();
  bool jobs = f.jobs != nullptr && f.jobs->parsed();
  bool grants = f.grants != nullptr && f.grants->parsed();
  if (!requests && !jobs && !grants) return -1;
  using Command = Status (*)(Session&, const Flags&);
  std::vector<Subcommand> commands;
  for (auto [app, run] : {std::pair<CLI::App*, Command>{f.requests_list, ListRequests},
                          {f.requests_show, ShowRequest},
                          {f.approve, Approve},
                          {f.deny, Deny},
                          {f.jobs_list, ListJobs},
                          {f.jobs_show, ShowJob},
                          {f.logs, Logs},
                          {f.kill, Kill},
                          {f.release, Release},
                          {f.release_error, ReleaseError},
                          {f.grants_list, ListGrants},
                          {f.grants_show, ShowGrant},
                          {f.revoke, Revoke}}) {
    commands.emplace_back(app, [&f, run = run](Session& s) { return run(s, f); });
  }
  return RunParsedSubcommand(f.connection, commands, "requests, jobs or grants");
}

}  // namespace datasite::cli
