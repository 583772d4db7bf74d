#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/operations.h"
#include "api/route_table.h"
#include "core/clock.h"
#include "core/random.h"
#include "obs/metrics.h"

namespace datasite::api {
namespace {

using auth::Role;
using internal::Dump;
using internal::Handler;
using internal::QueryInt;
using internal::Reply;
using internal::Routes;
using internal::Schema;
using internal::SecretReply;
using nlohmann::json;
using services::Principal;

// A development server's warning about a weak password it accepted, added to the answer as
// "warning" (see auth::PasswordRules).
void AddPasswordWarning(json& answer, const services::Accounts& accounts,
                        const std::string& password, const std::string& email) {
  std::string warning = accounts.PasswordWarning(password, email);
  if (!warning.empty()) answer["warning"] = warning;
}

json UserJson(const store::User& u) {
  return {{"id", u.id},
          {"email", u.email},
          {"name", u.name},
          {"role", auth::RoleName(auth::RoleFromInt(u.role))},
          {"institution", u.institution},
          {"website", u.website},
          {"is_root", u.is_root},
          {"created_at", FormatIsoTime(u.created_at)},
          {"updated_at", FormatIsoTime(u.updated_at)}};
}

json GuestJson() {
  return {{"id", nullptr},     {"email", nullptr}, {"name", "Guest"}, {"role", "guest"},
          {"institution", ""}, {"website", ""},    {"is_root", false}};
}

json SettingsJson(const store::Settings& s, bool admin) {
  json j = {{"id", s.id},
            {"name", s.name},
            {"organization", s.organization},
            {"description", s.description},
            {"deployed_on", s.deployed_on},
            {"signup_enabled", s.signup_enabled},
            {"notifications_enabled", s.notifications_enabled},
            {"admin_email", s.admin_email},
            {"server_type", s.server_type},
            {"server_side_type", s.server_side_type},
            {"welcome_markdown", services::SettingsService::WelcomeMarkdown(s)},
            {"output_review", s.output_review},
            {"version", services::kVersion}};
  // Policy switches are for admins' eyes.
  if (admin) {
    j["association_request_auto_approval"] = s.association_request_auto_approval;
    j["allow_guest_sessions"] = s.allow_guest_sessions;
  }
  return j;
}

// The rendered settings documents (one for admins, one for everyone else) of one settings
// version; a change of the settings makes the next request render them anew. Safe for concurrent
// use.
class SettingsDocuments {
 public:
  explicit SettingsDocuments(const services::SettingsService& settings) : settings_(settings) {}

  std::string Get(bool admin) {
    // Read the version before the settings: a change after this makes the next reader miss, and a
    // document is never older than the version it is kept under.
    const int64_t version = settings_.version();
    if (auto doc = Kept(version, admin)) return *std::move(doc);
    std::string doc = Dump(SettingsJson(settings_.Get(), admin));
    std::lock_guard lock(mu_);
    if (version < version_) return doc;  // a newer version is already kept
    if (version > version_) {
      docs_[0].clear();
      docs_[1].clear();
    }
    version_ = version;
    docs_[admin] = doc;
    return doc;
  }

  // The current document if it is already rendered; never blocks.
  std::optional<std::string> GetRendered(bool admin) { return Kept(settings_.version(), admin); }

 private:
  std::optional<std::string> Kept(int64_t version, bool admin) {
    std::lock_guard lock(mu_);
    if (version_ != version || docs_[admin].empty()) return std::nullopt;
    return docs_[admin];
  }

  const services::SettingsService& settings_;
  std::mutex mu_;
  int64_t version_ = -1;  // guarded by mu_
  std::string docs_[2];   // [admin]; guarded by mu_; empty when not rendered yet
};

json LoginJson(const services::LoginResult& r) {
  return {{"token", r.token},
          {"expires_at", FormatIsoTime(r.expires_at)},
          {"user", r.user ? UserJson(*r.user) : GuestJson()},
          {"default_password", r.default_password}};
}

Result<std::optional<Role>> OptionalRole(const JsonBody& body, const char* field) {
  ASSIGN_OR_RETURN(auto name, body.OptionalString(field));
  if (!name) return std::optional<Role>();
  auto role = auth::ParseRole(*name);
  if (!role) {
    return InvalidArgumentError(
        "role must be one of guest, data_scientist, data_owner, admin; not '" +
        name->substr(0, 32) + "'");
  }
  return role;
}

}  // namespace

void AddRoutes(http::Router& router, ApiContext& ctx) {
  Routes table(router, ctx);
  auto* routes = &table;
  auto& accounts = ctx.accounts;
  auto& settings = ctx.settings;
  const auto kHeavy = http::Lane::kHeavy;
  auto settings_documents = std::make_shared<SettingsDocuments>(settings);
  // A route that needs a role reads a body into memory only for a live session with that role
  // (a guest session is anyone's for the asking): a remembered one is known on the I/O thread;
  // any other token costs the database read its handler would make (and then is remembered), so
  // neither a made-up token nor a lesser role holds any body memory.
  auto min_role_of = [](const std::string& name) {
    return auth::ParseRole(name).value_or(Role::kAdmin);
  };
  http::TokenCheck token_check;
  token_check.in_memory = [&accounts, min_role_of](
                              const http::Request& req,
                              const std::string& min_role) -> std::optional<Status> {
    auto principal = accounts.RememberedPrincipal(req.authorization);
    if (!principal) return std::nullopt;
    return internal::RoleAllows(*principal, req, min_role_of(min_role));
  };
  token_check.check = [&accounts, min_role_of](const http::Request& req,
                                               const std::string& min_role) {
    auto caller = accounts.Authenticate(req.authorization);
    if (!caller.ok()) return caller.status();
    return internal::RoleAllows(*caller, req, min_role_of(min_role));
  };
  router.SetTokenCheck(std::move(token_check));

  routes->Add("GET", "/healthz", Role::kNone, "health", "Liveness: the process answers.",
              [](http::Request&, const Principal&) -> Result<Reply> {
                return Reply{200, {{"status", "ok"}}, {}};
              });
  routes->Add("GET", "/readyz", Role::kNone, "health", "Readiness: the server takes requests.",
              [&ctx](http::Request&, const Principal&) -> Result<Reply> {
                if (!ctx.ready.load()) return UnavailableError("not ready");
                if (ctx.database_ready) {
                  Status db = ctx.database_ready();
                  if (!db.ok()) return UnavailableError("not ready: " + db.message());
                }
                return Reply{200, {{"status", "ready"}}, {}};
              });
  routes->Add("GET", "/api/v1/metadata", Role::kNone, "metadata",
              "Public metadata a client shows on connect.",
              [&settings](http::Request&, const Principal&) -> Result<Reply> {
                store::Settings s = settings.Get();
                json j = {{"id", s.id},
                          {"name", s.name},
                          {"server_type", s.server_type},
                          {"server_side_type", s.server_side_type},
                          {"version", services::kVersion},
                          {"api_version", kApiVersion},
                          {"organization", s.organization},
                          {"description", s.description},
                          {"signup_enabled", s.signup_enabled},
                          {"admin_email", s.admin_email},
                          {"verify_key", HexEncode(settings.identity().verify_key)}};
                return Reply{200, j, {}};
              });
  routes->Add("GET", "/api/v1/openapi.json", Role::kNone, "metadata", "This document.",
              [&router](http::Request&, const Principal&) -> Result<Reply> {
                return Reply{200, json::parse(OpenApiDocument(router)), {}};
              });

  // --- Sessions ---
  routes->Add(
      "POST", "/api/v1/auth/login", Role::kNone, "auth", "Exchange email and password for a token.",
      [&accounts](http::Request& req, const Principal&) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"email", "password"}));
        ASSIGN_OR_RETURN(std::string email, body.RequiredString("email"));
        ASSIGN_OR_RETURN(std::string password, body.RequiredString("password"));
        auto result = accounts.Login(email, password, req.remote_address);
        // Wrong credentials and throttled attempts are both failures.
        obs::Logins(result.ok()).Add();
        if (!result.ok()) return result.status();
        return SecretReply(LoginJson(*result));
      },
      Schema({{"email", "string"}, {"password", "string"}}, {"email", "password"}), kHeavy);
  routes->Add("POST", "/api/v1/auth/guest", Role::kNone, "auth", "Start a guest session.",
              [&accounts, &settings](http::Request& req, const Principal&) -> Result<Reply> {
                if (!req.body.empty()) {  // no body needed; if one is sent it must be {}
                  ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {}));
                  (void)body;
                }
                ASSIGN_OR_RETURN(
                    auto result,
                    accounts.LoginAsGuest(settings.Get().allow_guest_sessions, req.remote_address));
                return SecretReply(LoginJson(result));
              });
  routes->Add("POST", "/api/v1/auth/logout", Role::kGuest, "auth", "Revoke the calling token.",
              [&accounts](http::Request&, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(accounts.Logout(caller));
                return Reply{200, {{"message", "Logged out"}}, {}};
              });
  routes->Add(
      "POST", "/api/v1/auth/register", Role::kNone, "auth",
      "Register a data scientist account (sign-up must be enabled unless a data owner calls).",
      [&accounts, &settings](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"name", "email", "password", "password_verify",
                                                    "institution", "website"}));
        services::NewUser u;
        ASSIGN_OR_RETURN(u.name, body.RequiredString("name"));
        ASSIGN_OR_RETURN(u.email, body.RequiredString("email"));
        ASSIGN_OR_RETURN(u.password, body.RequiredString("password"));
        ASSIGN_OR_RETURN(u.password_verify, body.RequiredString("password_verify"));
        ASSIGN_OR_RETURN(auto institution, body.OptionalString("institution"));
        ASSIGN_OR_RETURN(auto website, body.OptionalString("website"));
        u.institution = institution.value_or("");
        u.website = website.value_or("");
        ASSIGN_OR_RETURN(auto result, accounts.Register(caller, u, settings.Get().signup_enabled,
                                                        req.remote_address));
        json j = {{"message", result.message}};
        if (result.user) j["user"] = UserJson(*result.user);
        AddPasswordWarning(j, accounts, u.password, u.email);
        return Reply{201, j, {}};
      },
      Schema({{"name", "string"},
              {"email", "string"},
              {"password", "string"},
              {"password_verify", "string"},
              {"institution", "string"},
              {"website", "string"}},
             {"name", "email", "password", "password_verify"}),
      kHeavy);

  // --- The caller's own account ---
  routes->Add("GET", "/api/v1/account", Role::kGuest, "account", "The calling user.",
              [&accounts](http::Request&, const Principal& caller) -> Result<Reply> {
                if (!caller.user_id) return Reply{200, GuestJson(), {}};
                ASSIGN_OR_RETURN(auto user, accounts.GetUser(caller, *caller.user_id));
                return Reply{200, UserJson(user), {}};
              });
  routes->Add(
      "PATCH", "/api/v1/account", Role::kDataScientist, "account",
      "Update the calling user's profile.",
      [&accounts, &settings](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"name", "email", "institution", "website"}));
        services::UserPatch patch;
        ASSIGN_OR_RETURN(patch.name, body.OptionalString("name"));
        ASSIGN_OR_RETURN(patch.email, body.OptionalString("email"));
        ASSIGN_OR_RETURN(patch.institution, body.OptionalString("institution"));
        ASSIGN_OR_RETURN(patch.website, body.OptionalString("website"));
        std::optional<std::string> root_email;
        ASSIGN_OR_RETURN(auto user,
                         accounts.UpdateUser(caller, *caller.user_id, patch, &root_email));
        if (root_email) RETURN_IF_ERROR(settings.SetAdminEmail(*root_email));
        return Reply{200, UserJson(user), {}};
      },
      Schema({{"name", "string"},
              {"email", "string"},
              {"institution", "string"},
              {"website", "string"}}));
  routes->Add(
      "POST", "/api/v1/account/password", Role::kDataScientist, "account",
      "Change the calling user's password (the old one is required); revokes the user's other "
      "sessions.",
      [&accounts](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"old_password", "new_password"}));
        ASSIGN_OR_RETURN(std::string old_password, body.RequiredString("old_password"));
        ASSIGN_OR_RETURN(std::string new_password, body.RequiredString("new_password"));
        RETURN_IF_ERROR(
            accounts.ChangePassword(caller, old_password, new_password, req.remote_address));
        json j = {{"message", "Password changed"}};
        AddPasswordWarning(j, accounts, new_password, "");
        return Reply{200, j, {}};
      },
      Schema({{"old_password", "string"}, {"new_password", "string"}},
             {"old_password", "new_password"}),
      kHeavy);

  // --- Users ---
  routes->Add(
      "GET", "/api/v1/users", Role::kDataOwner, "users",
      "List users, paginated (?page=&page_size=&search=; or ?page_index= counting from 0).",
      [&accounts](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
        ASSIGN_OR_RETURN(int64_t page_size, QueryInt(req, "page_size", 50));
        ASSIGN_OR_RETURN(int64_t page_index, QueryInt(req, "page_index", -1));  // PySyft's, from 0
        if (page_index >= 0) page = page_index + 1;
        auto it = req.query.find("search");
        std::string search = it == req.query.end() ? "" : it->second;
        ASSIGN_OR_RETURN(auto result, accounts.ListUsers(caller, search, page, page_size));
        json items = json::array();
        for (const auto& u : result.items) items.push_back(UserJson(u));
        return Reply{
            200,
            {{"items", items}, {"total", result.total}, {"page", page}, {"page_size", page_size}},
            {}};
      });
  routes->Add(
      "POST", "/api/v1/users", Role::kDataOwner, "users",
      "Create a user (a data owner: guests and data scientists only).",
      [&accounts](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"name", "email", "password", "password_verify",
                                                    "role", "institution", "website"}));
        services::NewUser u;
        ASSIGN_OR_RETURN(u.name, body.RequiredString("name"));
        ASSIGN_OR_RETURN(u.email, body.RequiredString("email"));
        ASSIGN_OR_RETURN(u.password, body.RequiredString("password"));
        ASSIGN_OR_RETURN(u.password_verify, body.OptionalString("password_verify"));
        ASSIGN_OR_RETURN(u.role, OptionalRole(body, "role"));
        ASSIGN_OR_RETURN(auto institution, body.OptionalString("institution"));
        ASSIGN_OR_RETURN(auto website, body.OptionalString("website"));
        u.institution = institution.value_or("");
        u.website = website.value_or("");
        ASSIGN_OR_RETURN(auto user, accounts.CreateUser(caller, u));
        json j = UserJson(user);
        AddPasswordWarning(j, accounts, u.password, user.email);
        return Reply{201, j, {}};
      },
      Schema({{"name", "string"},
              {"email", "string"},
              {"password", "string"},
              {"password_verify", "string"},
              {"role", "string"},
              {"institution", "string"},
              {"website", "string"}},
             {"name", "email", "password"}),
      kHeavy);
  routes->Add("GET", "/api/v1/users/{id}", Role::kDataScientist, "users",
              "One user (a data scientist: only themselves).",
              [&accounts](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto user, accounts.GetUser(caller, req.path_params["id"]));
                return Reply{200, UserJson(user), {}};
              });
  routes->Add(
      "PATCH", "/api/v1/users/{id}", Role::kDataScientist, "users",
      "Update a user (rules in docs/API.md).",
      [&accounts, &settings](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"name", "email", "institution",
                                                               "website", "role", "password"}));
        services::UserPatch patch;
        ASSIGN_OR_RETURN(patch.name, body.OptionalString("name"));
        ASSIGN_OR_RETURN(patch.email, body.OptionalString("email"));
        ASSIGN_OR_RETURN(patch.institution, body.OptionalString("institution"));
        ASSIGN_OR_RETURN(patch.website, body.OptionalString("website"));
        ASSIGN_OR_RETURN(patch.role, OptionalRole(body, "role"));
        ASSIGN_OR_RETURN(patch.password, body.OptionalString("password"));
        std::optional<std::string> root_email;
        ASSIGN_OR_RETURN(auto user,
                         accounts.UpdateUser(caller, req.path_params["id"], patch, &root_email));
        if (root_email) RETURN_IF_ERROR(settings.SetAdminEmail(*root_email));
        json j = UserJson(user);
        if (patch.password) AddPasswordWarning(j, accounts, *patch.password, user.email);
        return Reply{200, j, {}};
      },
      Schema({{"name", "string"},
              {"email", "string"},
              {"institution", "string"},
              {"website", "string"},
              {"role", "string"},
              {"password", "string"}}),
      kHeavy);
  routes->Add("DELETE", "/api/v1/users/{id}", Role::kDataOwner, "users",
              "Delete a user (rules in docs/API.md).",
              [&accounts](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(accounts.DeleteUser(caller, req.path_params["id"]));
                return Reply{200, {{"message", "User deleted"}}, {}};
              });

  // --- Settings ---
  routes->Add("GET", "/api/v1/settings", Role::kGuest, "settings", "The server's settings.",
              [settings_documents](http::Request&, const Principal& caller) -> Result<Reply> {
                Reply reply;
                reply.raw_json = settings_documents->Get(caller.role == Role::kAdmin);
                return reply;
              });
  // The same answer without leaving the I/O thread, for a caller whose session is remembered and
  // settings already rendered (the common case); anything else takes the route above.
  router.SetAnswerInline(
      "GET", "/api/v1/settings",
      [&accounts, settings_documents](http::Request& req) -> std::optional<http::Response> {
        auto caller = accounts.RememberedPrincipal(req.authorization);
        if (!caller || !auth::AtLeast(caller->role, Role::kGuest)) return std::nullopt;
        auto doc = settings_documents->GetRendered(caller->role == Role::kAdmin);
        if (!doc) return std::nullopt;
        http::Response res;
        res.body = std::move(*doc);
        return res;
      });
  routes->Add(
      "PATCH", "/api/v1/settings", Role::kAdmin, "settings", "Change settings (admins).",
      [&settings](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(
            auto body,
            JsonBody::Parse(req.body, {"name", "organization", "description", "signup_enabled",
                                       "notifications_enabled", "admin_email",
                                       "association_request_auto_approval", "allow_guest_sessions",
                                       "welcome_markdown", "output_review"}));
        services::SettingsPatch p;
        ASSIGN_OR_RETURN(p.name, body.OptionalString("name"));
        ASSIGN_OR_RETURN(p.organization, body.OptionalString("organization"));
        ASSIGN_OR_RETURN(p.description, body.OptionalString("description"));
        ASSIGN_OR_RETURN(p.signup_enabled, body.OptionalBool("signup_enabled"));
        ASSIGN_OR_RETURN(p.notifications_enabled, body.OptionalBool("notifications_enabled"));
        ASSIGN_OR_RETURN(p.admin_email, body.OptionalString("admin_email"));
        ASSIGN_OR_RETURN(p.association_request_auto_approval,
                         body.OptionalBool("association_request_auto_approval"));
        ASSIGN_OR_RETURN(p.allow_guest_sessions, body.OptionalBool("allow_guest_sessions"));
        ASSIGN_OR_RETURN(p.welcome_markdown, body.OptionalString("welcome_markdown"));
        ASSIGN_OR_RETURN(p.output_review, body.OptionalBool("output_review"));
        ASSIGN_OR_RETURN(auto updated, settings.Update(caller, p));
        return Reply{200, SettingsJson(updated, true), {}};
      },
      Schema({{"name", "string"},
              {"organization", "string"},
              {"description", "string"},
              {"signup_enabled", "boolean"},
              {"notifications_enabled", "boolean"},
              {"admin_email", "string"},
              {"association_request_auto_approval", "boolean"},
              {"allow_guest_sessions", "boolean"},
              {"welcome_markdown", "string"},
              {"output_review", "boolean"}}));
  routes->Add(
      "GET", "/api/v1/settings/welcome", Role::kGuest, "settings",
      "The welcome message (markdown).",
      [&settings](http::Request&, const Principal&) -> Result<Reply> {
        return Reply{
            200, {{"markdown", services::SettingsService::WelcomeMarkdown(settings.Get())}}, {}};
      });

  AddDatasetRoutes(router, ctx);
  AddCodeRoutes(router, ctx);
  AddProjectRoutes(router, ctx);
  AddNotificationRoutes(router, ctx);
  AddAuditRoutes(router, ctx);
  AddSyncRoutes(router, ctx);
  AddEndpointRoutes(router, ctx);
  AddDpRoutes(router, ctx);
  AddPoolRoutes(router, ctx);
}

std::string OpenApiDocument(const http::Router& router) {
  json paths = json::object();
  std::set<std::string> operation_ids;
  for (const auto& r : router.routes()) {
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    OperationName name = NameOperation(r.method, r.pattern, r.tag);
    // A derived name may meet another route's: the method keeps them apart.
    if (operation_ids.count(name.Id())) name.method += "_" + method;
    operation_ids.insert(name.Id());
    json op = {
        {"operationId", name.Id()},
        {"summary", r.summary},
        {"tags", json::array({r.tag})},
        {"x-min-role", r.min_role.empty() ? "anyone" : r.min_role},
        {"responses",
         {{"200", {{"description", "OK"}}},
          {"default",
           {{"description", "Error"},
            {"content",
             {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}}}}}};
    if (!r.min_role.empty()) op["security"] = json::array({{{"bearer", json::array()}}});
    if (!r.request_schema.empty()) {
      json schema = json::parse(r.request_schema);
      const char* type =
          schema.value("format", "") == "binary" ? "application/octet-stream" : "application/json";
      op["requestBody"] = {{"required", true}, {"content", {{type, {{"schema", schema}}}}}};
    }
    json params = json::array();
    for (size_t i = r.pattern.find('{'); i != std::string::npos; i = r.pattern.find('{', i + 1)) {
      size_t j = r.pattern.find('}', i);
      params.push_back({{"name", r.pattern.substr(i + 1, j - i - 1)},
                        {"in", "path"},
                        {"required", true},
                        {"schema", {{"type", "string"}}}});
    }
    for (const auto& q : name.query) {
      params.push_back(
          {{"name", q}, {"in", "query"}, {"required", false}, {"schema", {{"type", "string"}}}});
    }
    if (!params.empty()) op["parameters"] = params;
    paths[r.pattern][method] = op;
  }
  json doc = {
      {"openapi", "3.0.3"},
      {"info",
       {{"title", "datasite"}, {"version", services::kVersion}, {"x-api-version", kApiVersion}}},
      {"paths", paths},
      {"components",
       {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}},
        {"schemas",
         {{"Error",
           {{"type", "object"},
            {"properties",
             {{"error",
               {{"type", "object"},
                {"properties",
                 {{"code", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}}}}}}}}};
  return doc.dump();
}

}  // namespace datasite::api
