// Routes for projects (docs/API.md, "Projects").
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"
#include "core/clock.h"

namespace datasite::api {
namespace {

using auth::Role;
using internal::QueryInt;
using internal::Reply;
using internal::Schema;
using nlohmann::json;
using services::Principal;

json Person(const std::string& id, const std::string& name, const std::string& email) {
  return {{"id", id}, {"name", name}, {"email", email}};
}

json ProjectJson(const store::Project& p) {
  json members = json::array();
  for (const auto& m : p.members) members.push_back(Person(m.user_id, m.name, m.email));
  return {{"id", p.id},
          {"name", p.name},
          {"description", p.description},
          {"created_by", Person(p.created_by, p.creator_name, p.creator_email)},
          {"created_at", FormatIsoTime(p.created_at)},
          {"members", std::move(members)}};
}

json EventJson(const store::ProjectEvent& e) {
  return {{"id", e.id},
          {"seq", e.seq},
          {"kind", e.kind},
          {"created_by", Person(e.actor_id, e.actor_name, e.actor_email)},
          {"at", FormatIsoTime(e.at)},
          {"text", e.text},
          {"request_id", e.request_id ? json(*e.request_id) : json(nullptr)},
          {"status", e.status ? json(*e.status) : json(nullptr)}};
}

Result<std::vector<std::string>> Strings(const JsonBody& body, const char* field) {
  std::vector<std::string> out;
  auto value = body.Field(field);
  if (!value) return out;
  if (!value->is_array())
    return InvalidArgumentError(std::string("'") + field + "' must be a list");
  for (const auto& v : *value) {
    if (!v.is_string()) {
      return InvalidArgumentError(std::string("'") + field + "' must be a list of strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

void AddProjectRoutes(http::Router& router, ApiContext& ctx) {
  auto routes = std::make_shared<internal::Routes>(router, ctx);
  services::ProjectService& projects = ctx.projects;
  services::CodeService& code = ctx.code;

  routes->Add(
      "POST", "/api/v1/projects", Role::kDataScientist, "projects",
      "Create a project, with its first code requests (the caller is a member; data owners and "
      "admins may name other users).",
      [&projects](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"name", "description", "members", "requests"}));
        services::NewProject in;
        ASSIGN_OR_RETURN(in.name, body.RequiredString("name"));
        ASSIGN_OR_RETURN(auto description, body.OptionalString("description"));
        in.description = description.value_or("");
        ASSIGN_OR_RETURN(in.members, Strings(body, "members"));
        ASSIGN_OR_RETURN(auto requests,
                         body.OptionalObjects("requests", {"code_id", "request_id", "reason"}));
        for (const auto& r : requests.value_or(std::vector<JsonBody>{})) {
          services::ProjectCodeRequest one;
          ASSIGN_OR_RETURN(auto code_id, r.OptionalString("code_id"));
          ASSIGN_OR_RETURN(auto request_id, r.OptionalString("request_id"));
          if (code_id.has_value() == request_id.has_value()) {
            return InvalidArgumentError("each request gives either 'code_id' or 'request_id'");
          }
          one.code_id = code_id.value_or("");
          one.request_id = request_id.value_or("");
          ASSIGN_OR_RETURN(auto reason, r.OptionalString("reason"));
          one.reason = reason.value_or("");
          in.requests.push_back(std::move(one));
        }
        ASSIGN_OR_RETURN(auto p, projects.Create(caller, in));
        return Reply{201, ProjectJson(p), {}};
      },
      Schema({{"name", "string"},
              {"description", "string"},
              {"members", "array"},
              {"requests", "array"}},
             {"name"}));
  routes->Add("GET", "/api/v1/projects", Role::kDataScientist, "projects",
              "Projects the caller sees (data owners and admins: all), oldest first (?name= exact; "
              "?page=&page_size=, at most 1000 a page).",
              [&projects](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
                ASSIGN_OR_RETURN(int64_t page_size,
                                 QueryInt(req, "page_size", services::kMaxListPageSize));
                std::optional<std::string> name;
                if (auto it = req.query.find("name"); it != req.query.end()) name = it->second;
                ASSIGN_OR_RETURN(auto list, projects.List(caller, name, page, page_size));
                json items = json::array();
                for (const auto& p : list.items) items.push_back(ProjectJson(p));
                return Reply{200,
                             {{"items", std::move(items)},
                              {"total", list.total},
                              {"page", page},
                              {"page_size", page_size}},
                             {}};
              });
  // Before /{id}/...: the first matching pattern wins.
  routes->Add("GET", "/api/v1/projects/by_name/{name}", Role::kDataScientist, "projects",
              "The oldest project of this name the caller sees.",
              [&projects](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto list, projects.List(caller, req.path_params["name"], 1, 1));
                if (list.items.empty()) return NotFoundError("project not found");
                return Reply{200, ProjectJson(list.items.front()), {}};
              });
  routes->Add("GET", "/api/v1/projects/{id}", Role::kDataScientist, "projects", "One project.",
              [&projects](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto p, projects.Get(caller, req.path_params["id"]));
                return Reply{200, ProjectJson(p), {}};
              });
  routes->Add(
      "GET", "/api/v1/projects/{id}/events", Role::kDataScientist, "projects",
      "A project's events (messages, requests, decisions) with a seq above `after_seq`, "
      "oldest first, at most `limit` (1000) and about 1 MiB of text; while `more`, ask again "
      "with after_seq=next_after_seq.",
      [&projects](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(int64_t after, QueryInt(req, "after_seq", 0));
        ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", services::kMaxListPageSize));
        ASSIGN_OR_RETURN(auto page, projects.Events(caller, req.path_params["id"], after, limit));
        const int64_t next = page.items.empty() ? after : page.items.back().seq;
        json items = json::array();
        for (const auto& e : page.items) items.push_back(EventJson(e));
        return Reply{200,
                     {{"items", std::move(items)},
                      {"limit", limit},
                      {"more", page.more},
                      {"next_after_seq", next}},
                     {}};
      });
  routes->Add(
      "POST", "/api/v1/projects/{id}/requests", Role::kDataScientist, "projects",
      "Add a code request to a project (members only): new for submitted code (code_id), or "
      "the caller's request made outside any project (request_id).",
      [&projects, &code](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"code_id", "request_id", "reason"}));
        ASSIGN_OR_RETURN(auto code_id, body.OptionalString("code_id"));
        ASSIGN_OR_RETURN(auto request_id, body.OptionalString("request_id"));
        ASSIGN_OR_RETURN(auto reason, body.OptionalString("reason"));
        if (code_id.has_value() == request_id.has_value()) {
          return InvalidArgumentError("give either 'code_id' or 'request_id'");
        }
        store::CodeRequest r;
        if (code_id) {
          ASSIGN_OR_RETURN(r, projects.AddCodeRequest(caller, req.path_params["id"],
                                                      {*code_id, reason.value_or("")}));
        } else {
          if (reason) return InvalidArgumentError("'reason' goes with 'code_id' only");
          ASSIGN_OR_RETURN(r,
                           projects.AddExistingRequest(caller, req.path_params["id"], *request_id));
        }
        ASSIGN_OR_RETURN(auto doc, internal::RenderRequestJson(code, caller, r));
        return Reply{201, doc, {}};
      },
      Schema({{"code_id", "string"}, {"request_id", "string"}, {"reason", "string"}}));
  routes->Add(
      "POST", "/api/v1/projects/{id}/messages", Role::kDataScientist, "projects",
      "Post a message to a project (members only).",
      [&projects](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"message"}));
        ASSIGN_OR_RETURN(auto message, body.RequiredString("message"));
        ASSIGN_OR_RETURN(auto e, projects.AddMessage(caller, req.path_params["id"], message));
        return Reply{201, EventJson(e), {}};
      },
      Schema({{"message", "string"}}, {"message"}));
}

}  // namespace datasite::api
