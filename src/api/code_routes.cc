// Routes for code, requests and jobs (docs/API.md, "Code, requests and jobs").
#include <sodium.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"
#include "core/clock.h"
#include "jobs/job_queue.h"

namespace datasite::api {
namespace {

using auth::Role;
using internal::QueryInt;
using internal::Reply;
using internal::Schema;
using nlohmann::json;
using services::Principal;

constexpr int64_t kMaxInlineBytes = 1 << 20;
// Deeper JSON results are not inlined (see InlineResult).
constexpr int kMaxInlineDepth = 256;

json Person(const std::string& id, const std::string& name, const std::string& email) {
  if (id.empty()) return nullptr;
  return {{"id", id}, {"name", name}, {"email", email}};
}

std::string IsoMillis(int64_t ms) { return ms ? FormatIsoTime(ms / 1000) : ""; }

// The code's custom policies: their source and classes (reviewed with the code), and for data
// owners what they kept (the service clears it for others); null for code without.
json PolicyCodeJson(const store::UserCode& c) {
  if (c.policy_spec.empty()) return nullptr;
  json spec = json::parse(c.policy_spec, nullptr, false);
  if (!spec.is_object()) return nullptr;
  json state = c.policy_state.empty() ? json(nullptr) : json::parse(c.policy_state, nullptr, false);
  if (state.is_discarded()) state = nullptr;
  spec["state"] = std::move(state);
  return spec;
}

json CodeJson(const store::UserCode& c) {
  json inputs = c.source_omitted ? json(nullptr) : json::parse(c.inputs, nullptr, false);
  if (inputs.is_discarded()) inputs = nullptr;
  if (inputs.is_object()) {
    for (auto& [arg, b] : inputs.items()) b.erase("format");
  }
  json request = nullptr;
  if (c.request_id) request = {{"id", *c.request_id}, {"status", c.request_status.value_or("")}};
  json out = {
      {"id", c.id},
      {"name", c.name},
      {"version", c.version},
      {"source", c.source_omitted ? json(nullptr) : json(c.source)},
      {"code_hash", c.code_hash},
      {"user", Person(c.user_id, c.user_name, c.user_email)},
      {"created_at", FormatIsoTime(c.created_at)},
      {"inputs", inputs},
      {"output_policy", {{"kind", c.output_policy}, {"limit", c.output_limit}, {"used", c.used}}},
      {"policy_code", c.source_omitted ? json(nullptr) : PolicyCodeJson(c)},
      {"worker_pool_name", c.worker_pool_name},
      {"request", request}};
  // A listing left this row's source, inputs and policies out (its page was full): GET
  // /code/{id} has them.
  if (c.source_omitted) out["source_omitted"] = true;
  return out;
}

json DecisionsJson(const std::vector<store::RequestDecision>& history) {
  json out = json::array();
  for (const auto& d : history) {
    out.push_back({{"status", d.status},
                   {"reason", d.reason ? json(*d.reason) : json(nullptr)},
                   {"reviewed_by", Person(d.reviewer_id, d.reviewer_name, d.reviewer_email)},
                   {"at", FormatIsoTime(d.at)}});
  }
  return out;
}

json RequestJson(const store::CodeRequest& r, const store::UserCode& code,
                 const std::vector<store::RequestDecision>& history) {
  return {{"id", r.id},
          {"status", r.status},
          {"reason", r.reason},
          {"deny_reason", r.deny_reason ? json(*r.deny_reason) : json(nullptr)},
          {"code", CodeJson(code)},
          {"requested_by", Person(r.user_id, r.user_name, r.user_email)},
          {"reviewed_by", r.reviewer_id ? Person(*r.reviewer_id, r.reviewer_name, r.reviewer_email)
                                        : json(nullptr)},
          {"created_at", FormatIsoTime(r.created_at)},
          {"updated_at", FormatIsoTime(r.updated_at)},
          {"history", DecisionsJson(history)},
          {"project",
           r.project_id ? json{{"id", *r.project_id}, {"name", r.project_name}} : json(nullptr)}};
}

// A request as the caller may see it: with its code and its decisions.
Result<json> RenderRequest(services::CodeService& code, const Principal& caller,
                           const store::CodeRequest& r) {
  ASSIGN_OR_RETURN(auto c, code.GetCode(caller, r.code_id));
  ASSIGN_OR_RETURN(auto history, code.RequestHistory(caller, r.id));
  return RequestJson(r, c, history);
}

Result<std::string> Base64Decode(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return InvalidArgumentError("'data' must be base64 for npy and bytes results");
  }
  out.resize(len);
  return out;
}

// A small result as a JSON value, so a blocking call needs one round trip; null when too large.
json InlineResult(const services::CodeService& code, const Principal& caller,
                  const store::Job& job) {
  auto small = code.SmallResult(caller, job, kMaxInlineBytes);
  if (!small.ok() || !*small) return nullptr;
  const std::string& bytes = **small;
  const std::string& format = job.result_format;
  if (format == "json") {
    // The bytes come from user code: a result nested thousands deep would overflow the stack when
    // copied or printed. The client then fetches it from /result, unparsed here.
    if (NestsDeeperThan(bytes, kMaxInlineDepth)) return nullptr;
    json value = json::parse(bytes, nullptr, false);
    return value.is_discarded() ? json(nullptr) : value;
  }
  if (format == "csv") {
    try {
      (void)json(bytes).dump();  // throws on invalid UTF-8: then the client fetches the bytes
    } catch (const json::exception&) {
      return nullptr;
    }
    return bytes;
  }
  return internal::Base64(bytes);
}

json JobJson(const store::Job& j, const Principal& caller, const services::CodeService& code,
             bool inline_result, bool reused = false) {
  json result = nullptr;
  const bool visible = code.MaySeeResult(caller, j);
  // What a held run produced — result format and size, stdout, error text, and when it ended (its
  // running time depends on the data) — waits for its release.
  const bool held_from_caller = j.held && !visible;
  // A run whose printout its requester may not read (a custom policy refused its output) hides
  // when it ended the same way.
  const bool ended_hidden =
      held_from_caller || (jobs::IsFinal(j.status) && !code.MaySeeStdout(caller, j));
  // A failed private run's own words go to data owners, and to its requester once released; the
  // requester otherwise reads the fixed text of its failure kind (see services/job_failure.h).
  const std::string& text =
      !j.error_detail.empty() && code.MaySeeErrorDetail(caller, j) ? j.error_detail : j.error;
  json error = text.empty() ? json(nullptr) : json(text);
  json failure = j.failure.empty() ? json(nullptr) : json(j.failure);
  if (held_from_caller && jobs::IsFinal(j.status) && j.status != "completed") {
    // The rule that held it (an endpoint's output check may stop a run) is named, never a value.
    error = j.held_reason.empty()
                ? "the run ended " + j.status + "; its error is held until a data owner releases it"
                : "the run ended " + j.status +
                      " and is held for review by an output check: " + j.held_reason;
    failure = nullptr;
  }
  if (j.status == "completed") {
    result = {
        {"format", held_from_caller ? json(nullptr) : json(j.result_format)},
        {"size", held_from_caller ? json(nullptr) : json(j.result_size)},
        {"held", j.held},
        {"held_reason", j.held && !j.held_reason.empty() ? json(j.held_reason) : json(nullptr)},
        {"expired", j.result_expired},
        {"meta", held_from_caller || j.result_meta.empty()
                     ? json(nullptr)
                     : json::parse(j.result_meta, nullptr, false)},
        {"inline", visible && inline_result ? InlineResult(code, caller, j) : json(nullptr)}};
  }
  return {{"id", j.id},
          {"code_id", j.code_id},
          {"code_name", j.code_name},
          {"kind", j.kind},
          {"status", j.status},
          {"error", error},
          {"failure", failure},
          {"error_released", j.error_released},
          {"deposited", j.deposited},
          {"user", Person(j.user_id, j.user_name, j.user_email)},
          {"created_at", IsoMillis(j.created_at)},
          {"started_at", j.started_at ? json(IsoMillis(j.started_at)) : json(nullptr)},
          {"finished_at",
           j.finished_at && !ended_hidden ? json(IsoMillis(j.finished_at)) : json(nullptr)},
          {"attempts", j.attempts},
          {"result", result},
          {"reused", reused},
          {"grant_id", j.grant_id ? json(*j.grant_id) : json(nullptr)}};
}

json OptionalInt(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

// A grant as `caller` may see it: data owners see whom it names and its runs in all; a data
// scientist sees their own use of it instead (the others it names are not theirs to know).
Result<json> GrantJson(services::CodeService& code, store::Store& store, const Principal& caller,
                       const store::Grant& g) {
  json doc = {{"id", g.id},
              {"request_id", g.request_id},
              {"code_id", g.code_id},
              {"code_name", g.code_name},
              {"code_hash", g.code_hash},
              {"created_by", g.created_by_email},
              {"created_at", IsoMillis(g.created_at)},
              {"expires_at", IsoMillis(g.expires_at)},
              {"per_minute", OptionalInt(g.per_minute)},
              {"per_hour", OptionalInt(g.per_hour)},
              {"per_day", OptionalInt(g.per_day)},
              {"status", services::GrantStatus(g, code.NowMillis())},
              {"revoked_at", g.revoked_at ? json(IsoMillis(*g.revoked_at)) : json(nullptr)}};
  if (caller.IsDataOwner()) {
    json users = json::array();
    for (const std::string& id : g.user_ids) {
      auto u = store.GetUserById(id);
      users.push_back(u.ok() ? Person(u->id, u->name, u->email) : Person(id, "", ""));
    }
    doc["users"] = std::move(users);
    doc["runs"] = g.runs;
    return doc;
  }
  ASSIGN_OR_RETURN(services::GrantUse use, code.UseOf(g, *caller.user_id));
  doc["runs_left"] = {{"minute", OptionalInt(use.minute)},
                      {"hour", OptionalInt(use.hour)},
                      {"day", OptionalInt(use.day)}};
  doc["next_run_at"] =
      use.next_run_at ? json(FormatIsoTime((*use.next_run_at + 999) / 1000)) : json(nullptr);
  return doc;
}

// The "repeat", "expires_in_days" and "users" of an approval's body; nullopt without "repeat".
Result<std::optional<services::RepeatGrant>> RepeatOf(const JsonBody& body) {
  auto repeat = body.Field("repeat");
  auto days = body.Field("expires_in_days");
  auto users = body.Field("users");
  if (!repeat || repeat->is_null()) {
    if ((days && !days->is_null()) || (users && !users->is_null())) {
      return InvalidArgumentError("'expires_in_days' and 'users' go with 'repeat'");
    }
    return std::optional<services::RepeatGrant>();
  }
  if (!repeat->is_object()) {
    return InvalidArgumentError(
        "'repeat' must be an object: {\"per_minute\", \"per_hour\", \"per_day\"}");
  }
  services::RepeatGrant out;
  for (const auto& [field, value] : repeat->items()) {
    std::optional<int64_t>* limit = field == "per_minute" ? &out.per_minute
                                    : field == "per_hour" ? &out.per_hour
                                    : field == "per_day"  ? &out.per_day
                                                          : nullptr;
    if (limit == nullptr) {
      return InvalidArgumentError("unknown field 'repeat." + field.substr(0, 100) + "'");
    }
    if (value.is_null()) continue;
    if (!value.is_number_integer()) {
      return InvalidArgumentError("'repeat." + field + "' must be a whole number of runs");
    }
    *limit = value.is_number_unsigned()
                 ? static_cast<int64_t>(std::min<uint64_t>(value.get<uint64_t>(), INT64_MAX))
                 : value.get<int64_t>();
  }
  if (days && !days->is_null()) {
    if (!days->is_number()) return InvalidArgumentError("'expires_in_days' must be a number");
    out.expires_in_days = days->get<double>();
  }
  if (users && !users->is_null()) {
    if (!users->is_array())
      return InvalidArgumentError("'users' must be an array of emails or ids");
    for (const auto& u : *users) {
      if (!u.is_string() || u.get<std::string>().empty()) {
        return InvalidArgumentError("'users' must be an array of emails or ids");
      }
      out.users.push_back(u.get<std::string>());
    }
  }
  return std::optional<services::RepeatGrant>(std::move(out));
}

// The rendered /logs documents of ended jobs, whose logs never change: polling a job's logs reads
// and escapes its megabytes once instead of on every request (which held the store's lock and a
// request thread for each poll). At most kMaxBytes are kept; the oldest rendering goes first. Safe
// for concurrent use.
class LogDocuments {
 public:
  std::shared_ptr<const std::string> Get(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = docs_.find(key);
    return it == docs_.end() ? nullptr : it->second;
  }

  void Put(const std::string& key, std::shared_ptr<const std::string> doc) {
    if (doc->size() > kMaxBytes) return;
    std::lock_guard lock(mu_);
    if (!docs_.emplace(key, doc).second) return;
    order_.push_back(key);
    bytes_ += doc->size();
    while (bytes_ > kMaxBytes) {
      auto oldest = docs_.find(order_.front());
      bytes_ -= oldest->second->size();
      docs_.erase(oldest);
      order_.pop_front();
    }
  }

 private:
  static constexpr size_t kMaxBytes = 64 << 20;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> docs_;  // guarded by mu_
  std::deque<std::string> order_;  // keys, oldest first; guarded by mu_
  size_t bytes_ = 0;               // guarded by mu_
};

// A listing page as every paged listing answers it.
json PageJson(json items, int64_t total, int64_t page, int64_t page_size) {
  return {{"items", std::move(items)}, {"total", total}, {"page", page}, {"page_size", page_size}};
}

std::optional<std::string> Query(const http::Request& req, const char* name) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace

Result<json> internal::RenderRequestJson(services::CodeService& code, const Principal& caller,
                                         const store::CodeRequest& request) {
  return RenderRequest(code, caller, request);
}

void AddCodeRoutes(http::Router& router, ApiContext& ctx) {
  auto routes = std::make_shared<internal::Routes>(router, ctx);
  services::CodeService& code = ctx.code;

  routes->Add(
      "POST", "/api/v1/code", Role::kDataScientist, "code",
      "Submit a function with its input policy (ExactMatch) and output policy; custom policies "
      "(their Python source, run in the sandbox) in policy_code.",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"name", "source", "inputs", "output_policy",
                                                    "policy_code", "worker_pool_name"}));
        services::SubmitCode in;
        if (auto pool = body.Field("worker_pool_name"); pool && !pool->is_null()) {
          if (!pool->is_string())
            return InvalidArgumentError("'worker_pool_name' must be a string");
          in.worker_pool_name = *pool;
        }
        ASSIGN_OR_RETURN(in.name, body.RequiredString("name"));
        ASSIGN_OR_RETURN(in.source, body.RequiredString("source"));
        if (auto inputs = body.Field("inputs")) in.inputs = *inputs;
        if (auto policy = body.Field("output_policy")) {
          if (!policy->is_object())
            return InvalidArgumentError("'output_policy' must be an object");
          for (const auto& [k, v] : policy->items()) {
            if (k != "kind" && k != "limit") {
              return InvalidArgumentError("unknown field 'output_policy." + k.substr(0, 64) + "'");
            }
          }
          if (policy->contains("kind")) {
            if (!(*policy)["kind"].is_string()) {
              return InvalidArgumentError("'output_policy.kind' must be a string");
            }
            in.output_policy = (*policy)["kind"];
          }
          if (policy->contains("limit")) {
            if (!(*policy)["limit"].is_number_integer()) {
              return InvalidArgumentError("'output_policy.limit' must be a whole number");
            }
            in.limit = (*policy)["limit"].get<int64_t>();
          }
        }
        if (auto policy_code = body.Field("policy_code")) in.policy_code = *policy_code;
        ASSIGN_OR_RETURN(auto c, code.Submit(caller, in));
        return Reply{201, CodeJson(c), {}};
      },
      Schema({{"name", "string"},
              {"source", "string"},
              {"inputs", "object"},
              {"output_policy", "object"},
              {"policy_code", "object"}},
             {"name", "source"}));
  routes->Add(
      "GET", "/api/v1/code", Role::kDataScientist, "code",
      "Submitted code, oldest first (?name= for one function's versions; "
      "?page=&page_size=, at most 1000 a page; past 4 Mi characters of sources, inputs and "
      "policies in a page, a row's source, inputs and policy_code are null and source_omitted "
      "is true: read it by id).",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
        ASSIGN_OR_RETURN(int64_t page_size, QueryInt(req, "page_size", services::kMaxListPageSize));
        ASSIGN_OR_RETURN(auto list, code.ListCode(caller, Query(req, "name"), page, page_size));
        json items = json::array();
        for (const auto& c : list.items) items.push_back(CodeJson(c));
        return Reply{200, PageJson(std::move(items), list.total, page, page_size), {}};
      });
  routes->Add("GET", "/api/v1/code/{id}", Role::kDataScientist, "code", "One submitted function.",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto c, code.GetCode(caller, req.path_params["id"]));
                return Reply{200, CodeJson(c), {}};
              });
  routes->Add(
      "POST", "/api/v1/code/{id}/run", Role::kDataScientist, "code",
      "Run code: on private data once approved, on the mocks without approval, as a data "
      "owner's review, or (a data owner, approved code, \"for_requester\": true) as a private "
      "run for its requester.",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        services::RunCode run;
        run.result_up_to = kMaxInlineBytes;
        if (!req.body.empty()) {
          ASSIGN_OR_RETURN(
              auto body, JsonBody::Parse(req.body, {"inputs", "mock", "blocking", "timeout_seconds",
                                                    "for_requester"}));
          run.inputs = body.Field("inputs");
          ASSIGN_OR_RETURN(auto mock, body.OptionalBool("mock"));
          run.mock = mock.value_or(false);
          ASSIGN_OR_RETURN(auto blocking, body.OptionalBool("blocking"));
          run.blocking = blocking.value_or(true);
          ASSIGN_OR_RETURN(auto for_requester, body.OptionalBool("for_requester"));
          run.for_requester = for_requester.value_or(false);
          ASSIGN_OR_RETURN(auto timeout, body.OptionalUnsigned("timeout_seconds"));
          if (timeout)
            run.timeout_seconds = static_cast<int64_t>(std::min<uint64_t>(*timeout, 1u << 30));
        }
        run.client_gone = req.client_gone;
        ASSIGN_OR_RETURN(auto out, code.Run(caller, req.path_params["id"], run));
        return Reply{
            out.created ? 201 : 200, JobJson(out.job, caller, code, true, !out.created), {}};
      },
      Schema({{"inputs", "object"},
              {"mock", "boolean"},
              {"blocking", "boolean"},
              {"timeout_seconds", "integer"},
              {"for_requester", "boolean"}}),
      http::Lane::kWait);
  // Only a run that waits for its job waits on the wait lane: a start that answers at once
  // ({"blocking": false}) must not queue behind the waits that may fill that lane.
  router.SetChooseLane("POST", "/api/v1/code/{id}/run", [](const http::Request& req) {
    return internal::AsksNotToBlock(req) ? http::Lane::kDefault : http::Lane::kWait;
  });

  routes->Add(
      "POST", "/api/v1/requests", Role::kDataScientist, "requests",
      "Ask a data owner to approve running submitted code on private data.",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"code_id", "reason"}));
        ASSIGN_OR_RETURN(auto code_id, body.RequiredString("code_id"));
        ASSIGN_OR_RETURN(auto reason, body.OptionalString("reason"));
        ASSIGN_OR_RETURN(auto r, code.CreateRequest(caller, code_id, reason.value_or("")));
        ASSIGN_OR_RETURN(auto doc, RenderRequest(code, caller, r));
        return Reply{201, doc, {}};
      },
      Schema({{"code_id", "string"}, {"reason", "string"}}, {"code_id"}));
  routes->Add("GET", "/api/v1/requests", Role::kDataScientist, "requests",
              "Requests, oldest first (?status=pending|approved|denied; ?project=<id>: only "
              "that project's; ?page=&page_size=, at most 1000 a page; past 4 MiB of code in a "
              "page, a row's code comes without source, inputs and policy_code, as in the code "
              "listing).",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
                ASSIGN_OR_RETURN(int64_t page_size,
                                 QueryInt(req, "page_size", services::kMaxListPageSize));
                ASSIGN_OR_RETURN(auto list, code.ListRequests(caller, Query(req, "status"), page,
                                                              page_size, Query(req, "project")));
                // Each request carries its code: past kMaxListSourceChars (bytes, here) of
                // sources, inputs and policies in the page, without them (read by id), as the
                // code listing does; those rows' code is not read whole.
                json items = json::array();
                int64_t bytes = 0;
                for (const auto& r : list.items) {
                  const bool whole = bytes <= services::kMaxListSourceChars;
                  ASSIGN_OR_RETURN(auto c, whole ? code.GetCode(caller, r.code_id)
                                                 : code.GetCodeSummary(caller, r.code_id));
                  if (whole) {
                    bytes += static_cast<int64_t>(c.source.size() + c.inputs.size() +
                                                  c.policy_spec.size() + c.policy_state.size());
                  }
                  if (bytes > services::kMaxListSourceChars && !c.source_omitted) {
                    c.source_omitted = true;
                    c.source.clear();
                    c.inputs.clear();
                    c.policy_spec.clear();
                  }
                  ASSIGN_OR_RETURN(auto history, code.RequestHistory(caller, r.id));
                  items.push_back(RequestJson(r, c, history));
                }
                return Reply{200, PageJson(std::move(items), list.total, page, page_size), {}};
              });
  routes->Add("GET", "/api/v1/requests/{id}", Role::kDataScientist, "requests", "One request.",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto r, code.GetRequest(caller, req.path_params["id"]));
                ASSIGN_OR_RETURN(auto doc, RenderRequest(code, caller, r));
                return Reply{200, doc, {}};
              });
  routes->Add(
      "POST", "/api/v1/requests/{id}/approve", Role::kDataOwner, "requests",
      "Approve a pending request (data owners and admins); with \"repeat\", also for repeated "
      "use: a grant lets its requester (and the data scientists in \"users\") run the same code "
      "on the same inputs again without review, at most so many times per minute, hour or day, "
      "until \"expires_in_days\" (default 30) or a revocation.",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        std::optional<services::RepeatGrant> repeat;
        if (!req.body.empty()) {
          ASSIGN_OR_RETURN(auto body,
                           JsonBody::Parse(req.body, {"repeat", "expires_in_days", "users"}));
          ASSIGN_OR_RETURN(repeat, RepeatOf(body));
        }
        ASSIGN_OR_RETURN(auto approval, code.Approve(caller, req.path_params["id"], repeat));
        ASSIGN_OR_RETURN(auto doc, RenderRequest(code, caller, approval.request));
        if (approval.grant) {
          ASSIGN_OR_RETURN(doc["grant"], GrantJson(code, code.store(), caller, *approval.grant));
        }
        return Reply{200, doc, {}};
      },
      Schema({{"repeat", "object"}, {"expires_in_days", "number"}, {"users", "array"}}));
  routes->Add(
      "POST", "/api/v1/requests/{id}/deny", Role::kDataOwner, "requests",
      "Deny a pending request with a reason the requester sees (data owners and admins).",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"reason"}));
        ASSIGN_OR_RETURN(auto reason, body.RequiredString("reason"));
        ASSIGN_OR_RETURN(auto r, code.Deny(caller, req.path_params["id"], reason));
        ASSIGN_OR_RETURN(auto doc, RenderRequest(code, caller, r));
        return Reply{200, doc, {}};
      },
      Schema({{"reason", "string"}}, {"reason"}));
  routes->Add(
      "POST", "/api/v1/requests/{id}/deposit", Role::kDataOwner, "requests",
      "Deposit a result as the request's, for its requester once approved (data owners and "
      "admins).",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"format", "data", "meta", "stdout", "stderr"}));
        services::DepositResult in;
        ASSIGN_OR_RETURN(in.format, body.RequiredString("format"));
        ASSIGN_OR_RETURN(std::string data, body.RequiredString("data"));
        if (in.format == "json") {
          if (NestsDeeperThan(data, kMaxInlineDepth) || !json::accept(data)) {
            return InvalidArgumentError("'data' of a json result must be JSON text");
          }
          in.bytes = std::move(data);
        } else if (in.format == "npy" || in.format == "bytes") {
          ASSIGN_OR_RETURN(in.bytes, Base64Decode(data));
        } else {
          in.bytes = std::move(data);
        }
        in.meta = body.Field("meta");
        if (in.meta && !in.meta->is_object()) {
          return InvalidArgumentError("'meta' must be an object (a CSV result's sidecar)");
        }
        ASSIGN_OR_RETURN(auto out, body.OptionalString("stdout"));
        in.stdout_text = out.value_or("");
        ASSIGN_OR_RETURN(auto err, body.OptionalString("stderr"));
        in.stderr_text = err.value_or("");
        ASSIGN_OR_RETURN(auto j, code.Deposit(caller, req.path_params["id"], std::move(in)));
        return Reply{201, JobJson(j, caller, code, false), {}};
      },
      Schema({{"format", "string"},
              {"data", "string"},
              {"meta", "object"},
              {"stdout", "string"},
              {"stderr", "string"}},
             {"format", "data"}));

  routes->Add("GET", "/api/v1/jobs", Role::kDataScientist, "jobs",
              "Jobs, oldest first (?code_id=&status=; ?page=&page_size=, 500 a page unless "
              "asked, at most 1000).",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
                ASSIGN_OR_RETURN(int64_t page_size,
                                 QueryInt(req, "page_size", services::kDefaultJobPageSize));
                ASSIGN_OR_RETURN(auto list, code.ListJobs(caller, Query(req, "code_id"),
                                                          Query(req, "status"), page, page_size));
                json items = json::array();
                for (const auto& j : list.items) items.push_back(JobJson(j, caller, code, false));
                return Reply{200, PageJson(std::move(items), list.total, page, page_size), {}};
              });
  routes->Add("GET", "/api/v1/jobs/{id}", Role::kDataScientist, "jobs",
              "One job, with a small result inline.",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto j,
                                 code.GetJob(caller, req.path_params["id"], kMaxInlineBytes));
                return Reply{200, JobJson(j, caller, code, true), {}};
              });
  routes->Add(
      "GET", "/api/v1/jobs/{id}/wait", Role::kDataScientist, "jobs",
      "One job, answered once it has ended or after ?timeout= seconds (default 60, at most 600), "
      "whichever comes first: a run started with \"blocking\": false is waited for here.",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(int64_t timeout, QueryInt(req, "timeout", 60));
        ASSIGN_OR_RETURN(auto j, code.WaitJob(caller, req.path_params["id"],
                                              std::chrono::seconds(std::min<int64_t>(timeout, 600)),
                                              req.client_gone, kMaxInlineBytes));
        return Reply{200, JobJson(j, caller, code, true), {}};
      },
      "", http::Lane::kWait);
  routes->Add("GET", "/api/v1/jobs/{id}/result", Role::kDataScientist, "jobs",
              "A completed job's result bytes.",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto f, code.JobResult(caller, req.path_params["id"]));
                Reply r;
                if (f.bytes) {
                  r.raw_body = std::move(*f.bytes);
                } else {
                  r.body_size = f.reader->size();
                  r.body_source = [reader = f.reader](char* buf, size_t cap) {
                    return reader->Read(buf, cap);
                  };
                }
                r.content_type = f.format == "json"  ? "application/json"
                                 : f.format == "csv" ? "text/csv"
                                                     : "application/octet-stream";
                r.headers.emplace_back("X-Datasite-Result-Format", f.format);
                return r;
              });
  auto log_documents = std::make_shared<LogDocuments>();
  routes->Add(
      "GET", "/api/v1/jobs/{id}/logs", Role::kDataScientist, "jobs",
      "A job's stdout (data owners and admins, while it runs too; its user likewise, except "
      "a private run of code with custom policies, whose stdout its user reads only once it "
      "completed or its error was released, and a held run, until released) and stderr (data "
      "owners and admins; its user once a mock run ended or a private run's error was "
      "released). ?since=N: stdout from byte N on; next_since is the N to ask for next.",
      [&code, log_documents](http::Request& req, const Principal& caller) -> Result<Reply> {
        int64_t since = 0;
        if (auto text = Query(req, "since")) {
          if (text->size() > 12 || text->find_first_not_of("0123456789") != std::string::npos)
            return InvalidArgumentError("'since' must be a byte offset (a whole number >= 0)");
          since = std::stoll(*text);
        }
        ASSIGN_OR_RETURN(auto job, code.GetJob(caller, req.path_params["id"]));
        // What the caller may read depends only on these two (see CodeService::Logs), so callers
        // alike share one rendering; a mock run's logs change once more, when they expire.
        auto key = [&](bool out) {
          return job.id + (out ? "+out" : "-out") +
                 (code.MaySeeErrorDetail(caller, job) ? "+err" : "-err") +
                 (job.result_expired ? "+expired" : "");
        };
        const bool cacheable = since == 0 && jobs::IsFinal(job.status);
        Reply reply;
        if (cacheable &&
            (reply.shared_json = log_documents->Get(key(code.MaySeeStdout(caller, job)))))
          return reply;
        ASSIGN_OR_RETURN(auto logs, code.Logs(caller, job.id, since));
        auto doc = std::make_shared<const std::string>(
            internal::Dump({{"stdout", logs.stdout_text ? json(*logs.stdout_text) : json()},
                            {"stderr", logs.stderr_text ? json(*logs.stderr_text) : json()},
                            {"next_since", logs.next_since},
                            {"ended", logs.ended}}));
        if (since == 0 && logs.ended) log_documents->Put(key(logs.stdout_text.has_value()), doc);
        reply.shared_json = std::move(doc);
        return reply;
      });
  routes->Add(
      "POST", "/api/v1/jobs/{id}/kill", Role::kDataScientist, "jobs",
      "Kill a queued or running job (its user, or a data owner).",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        if (!req.body.empty()) RETURN_IF_ERROR(JsonBody::Parse(req.body, {}).status());
        ASSIGN_OR_RETURN(auto j, code.Kill(caller, req.path_params["id"]));
        return Reply{200, JobJson(j, caller, code, false), {}};
      },
      // It waits a moment for the job to stop: on the request pool (the wait pool may be full of
      // a user's waits), and without a key (see Keys).
      "", http::Lane::kDefault, internal::Keys::kIgnore);
  routes->Add(
      "GET", "/api/v1/account/quota", Role::kDataScientist, "account",
      "The caller's own job results and logs (the bytes of those they may read), "
      "submitted code, projects and project messages, unfinished jobs, and their limits.",
      [&code](http::Request&, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto q, code.Quota(caller));
        auto limit = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
        return Reply{200,
                     {{"results_bytes", q.result_bytes},
                      {"logs_bytes", q.log_bytes},
                      {"code_bytes", q.code_bytes},
                      {"project_bytes", q.project_bytes},
                      {"used_bytes", q.result_bytes + q.log_bytes + q.code_bytes + q.project_bytes},
                      {"quota_bytes", limit(q.max_kept_bytes)},
                      {"queued_jobs", q.unfinished_jobs},
                      {"max_queued_jobs", limit(q.max_unfinished_jobs)},
                      {"code_versions", q.code_versions},
                      {"max_code_versions", limit(q.max_code_versions)},
                      {"projects", q.projects},
                      {"max_projects", limit(q.max_projects)},
                      {"project_messages", q.project_messages},
                      {"max_project_messages", limit(q.max_project_messages)},
                      {"mock_results_kept", q.mock_outputs_kept}},
                     {}};
      });
  routes->Add("GET", "/api/v1/datasets/{id}/output_checks", Role::kDataScientist, "datasets",
              "A dataset's output checks: the rules the output of a run nobody reviews (one "
              "admitted under a grant) must pass before its requester reads it; null for none.",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto rules, code.GetOutputChecks(caller, req.path_params["id"]));
                return Reply{200, std::move(rules), {}};
              });
  routes->Add(
      "PUT", "/api/v1/datasets/{id}/output_checks", Role::kDataOwner, "datasets",
      "Set a dataset's output checks (data owners and admins): {min_cell_count?, small_cells?: "
      "suppress|hold, round_to?, no_row_level?, max_result_bytes?}; {} removes them.",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        // Strict parsing (unknown fields refused), then the rules read the document.
        RETURN_IF_ERROR(JsonBody::Parse(req.body, {"min_cell_count", "small_cells", "round_to",
                                                   "no_row_level", "max_result_bytes"})
                            .status());
        ASSIGN_OR_RETURN(
            auto rules, code.SetOutputChecks(caller, req.path_params["id"], json::parse(req.body)));
        return Reply{200, std::move(rules), {}};
      },
      Schema({{"min_cell_count", "integer"},
              {"small_cells", "string"},
              {"round_to", "integer"},
              {"no_row_level", "boolean"},
              {"max_result_bytes", "integer"}}));
  routes->Add(
      "GET", "/api/v1/grants", Role::kDataScientist, "grants",
      "Grants (requests approved for repeated use), newest first: all of them for data "
      "owners, those naming the caller for a data scientist, with the runs they have "
      "left (?status=active|revoked|expired; ?page=&page_size=, at most 1000 a page).",
      [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
        ASSIGN_OR_RETURN(int64_t page_size, QueryInt(req, "page_size", services::kMaxListPageSize));
        ASSIGN_OR_RETURN(auto list, code.ListGrants(caller, Query(req, "status"), page, page_size));
        json items = json::array();
        for (const auto& g : list.items) {
          ASSIGN_OR_RETURN(json doc, GrantJson(code, code.store(), caller, g));
          items.push_back(std::move(doc));
        }
        return Reply{200, PageJson(std::move(items), list.total, page, page_size), {}};
      });
  routes->Add("GET", "/api/v1/grants/{id}", Role::kDataScientist, "grants",
              "One grant (a data scientist: only one that names them).",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto g, code.GetGrant(caller, req.path_params["id"]));
                ASSIGN_OR_RETURN(json doc, GrantJson(code, code.store(), caller, g));
                return Reply{200, std::move(doc), {}};
              });
  routes->Add("POST", "/api/v1/grants/{id}/revoke", Role::kDataOwner, "grants",
              "Revoke a grant (data owners and admins): no run is admitted under it after this "
              "answers, and its runs still queued or running are stopped.",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                if (!req.body.empty()) RETURN_IF_ERROR(JsonBody::Parse(req.body, {}).status());
                ASSIGN_OR_RETURN(auto g, code.RevokeGrant(caller, req.path_params["id"]));
                ASSIGN_OR_RETURN(json doc, GrantJson(code, code.store(), caller, g));
                return Reply{200, std::move(doc), {}};
              });
  routes->Add("POST", "/api/v1/jobs/{id}/release_error", Role::kDataOwner, "jobs",
              "Show a failed private run's error text and stderr to its requester (data owners "
              "and admins).",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                if (!req.body.empty()) RETURN_IF_ERROR(JsonBody::Parse(req.body, {}).status());
                ASSIGN_OR_RETURN(auto j, code.ReleaseError(caller, req.path_params["id"]));
                return Reply{200, JobJson(j, caller, code, false), {}};
              });
  routes->Add("POST", "/api/v1/jobs/{id}/release", Role::kDataOwner, "jobs",
              "Release a held result to its requester (data owners and admins).",
              [&code](http::Request& req, const Principal& caller) -> Result<Reply> {
                if (!req.body.empty()) RETURN_IF_ERROR(JsonBody::Parse(req.body, {}).status());
                ASSIGN_OR_RETURN(auto j, code.Release(caller, req.path_params["id"]));
                return Reply{200, JobJson(j, caller, code, false), {}};
              });
}

}  // namespace datasite::api
