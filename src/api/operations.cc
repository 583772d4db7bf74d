#include "api/operations.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace datasite::api {
namespace {

struct BuiltIn {
  const char* method;
  const char* pattern;
  const char* service;
  const char* name;
  std::vector<std::string> query;
};

// PySyft 0.9's service and method names where it has the operation; names in its style where it
// has none (account, auth, blob_storage.upload ...). One row per route; a route missing here gets a
// derived name (see Derive).
const std::vector<BuiltIn>& Table() {
  static const std::vector<BuiltIn> table = {
      {"GET", "/healthz", "metadata", "health", {}},
      {"GET", "/readyz", "metadata", "ready", {}},
      {"GET", "/api/v1/metadata", "metadata", "get_metadata", {}},
      {"GET", "/api/v1/openapi.json", "metadata", "get_api_schema", {}},
      {"POST", "/api/v1/auth/login", "auth", "login", {}},
      {"POST", "/api/v1/auth/guest", "auth", "login_as_guest", {}},
      {"POST", "/api/v1/auth/logout", "auth", "logout", {}},
      {"POST", "/api/v1/auth/register", "auth", "register", {}},
      {"GET", "/api/v1/account", "user", "get_current_user", {}},
      {"PATCH", "/api/v1/account", "account", "update", {}},
      {"POST", "/api/v1/account/password", "account", "set_password", {}},
      {"GET", "/api/v1/account/quota", "account", "get_quota", {}},
      {"GET", "/api/v1/users", "user", "get_all", {"page", "page_size", "page_index", "search"}},
      {"POST", "/api/v1/users", "user", "create", {}},
      {"GET", "/api/v1/users/{id}", "user", "view", {}},
      {"PATCH", "/api/v1/users/{id}", "user", "update", {}},
      {"DELETE", "/api/v1/users/{id}", "user", "delete", {}},
      {"GET", "/api/v1/settings", "settings", "get", {}},
      {"PATCH", "/api/v1/settings", "settings", "update", {}},
      {"GET", "/api/v1/settings/welcome", "settings", "welcome_show", {}},
      {"GET", "/api/v1/settings/notifications", "notifications", "settings", {}},
      {"PUT", "/api/v1/settings/notifications", "settings", "enable_notifications", {}},
      {"DELETE", "/api/v1/settings/notifications", "settings", "disable_notifications", {}},
      {"POST", "/api/v1/settings/notifications/test", "settings", "send_test_email", {}},
      {"GET", "/api/v1/settings/notifications/outbox", "settings", "get_outbox", {"limit"}},
      {"GET", "/api/v1/notifications", "notifications", "get_all", {"page", "page_size"}},
      {"GET", "/api/v1/notifications/{id}", "notifications", "get_by_uid", {}},
      {"POST", "/api/v1/notifications/{id}/read", "notifications", "mark_as_read", {}},
      {"POST", "/api/v1/notifications/{id}/unread", "notifications", "mark_as_unread", {}},
      {"GET", "/api/v1/account/notifications", "notifications", "user_settings", {}},
      {"POST", "/api/v1/account/notifications/activate", "notifications", "activate", {}},
      {"POST", "/api/v1/account/notifications/deactivate", "notifications", "deactivate", {}},
      {"POST", "/api/v1/auth/forgot_password", "auth", "forgot_password", {}},
      {"POST", "/api/v1/auth/reset_password", "auth", "reset_password", {}},
      {"POST", "/api/v1/users/{id}/password_reset", "user", "request_password_reset", {}},
      {"GET", "/api/v1/password_resets", "user", "get_pending_password_resets", {}},
      {"POST", "/api/v1/blobs", "blob_storage", "upload", {"format"}},
      {"GET", "/api/v1/blobs/{id}", "blob_storage", "read", {}},
      {"DELETE", "/api/v1/blobs/{id}", "blob_storage", "delete", {}},
      {"POST", "/api/v1/blobs/{id}/mock", "blob_storage", "generate_mock", {}},
      {"POST", "/api/v1/datasets", "dataset", "add", {}},
      {"GET", "/api/v1/datasets", "dataset", "get_all", {"page", "page_size", "search"}},
      {"GET", "/api/v1/datasets/{id}", "dataset", "get_by_id", {}},
      {"PATCH", "/api/v1/datasets/{id}", "dataset", "update", {}},
      {"DELETE", "/api/v1/datasets/{id}", "dataset", "delete", {}},
      {"GET", "/api/v1/datasets/{id}/assets/{name}/mock", "dataset", "get_asset_mock", {}},
      {"GET", "/api/v1/datasets/{id}/assets/{name}/data", "dataset", "get_asset_data", {}},
      {"POST", "/api/v1/datasets/{id}/assets/{name}/mock", "dataset", "regenerate_asset_mock", {}},
      {"POST", "/api/v1/data_subjects", "data_subject", "add_data_subject", {}},
      {"GET", "/api/v1/data_subjects", "data_subject", "get_all", {}},
      {"POST", "/api/v1/code", "code", "submit", {}},
      {"GET", "/api/v1/code", "code", "get_all", {"name", "page", "page_size"}},
      {"GET", "/api/v1/code/{id}", "code", "get_by_id", {}},
      {"POST", "/api/v1/code/{id}/run", "code", "call", {}},
      {"POST", "/api/v1/requests", "request", "submit", {}},
      {"GET", "/api/v1/requests", "request", "get_all", {"status", "project", "page", "page_size"}},
      {"GET", "/api/v1/requests/{id}", "request", "get_by_uid", {}},
      {"POST", "/api/v1/requests/{id}/approve", "request", "apply", {}},
      {"POST", "/api/v1/requests/{id}/deny", "request", "undo", {}},
      {"GET", "/api/v1/jobs", "job", "get_all", {"code_id", "status", "page", "page_size"}},
      {"GET", "/api/v1/jobs/{id}", "job", "get", {}},
      {"GET", "/api/v1/jobs/{id}/result", "job", "get_result", {}},
      {"GET", "/api/v1/jobs/{id}/logs", "job", "get_logs", {}},
      {"POST", "/api/v1/jobs/{id}/kill", "job", "kill", {}},
      {"POST", "/api/v1/jobs/{id}/release", "job", "release", {}},
      {"POST", "/api/v1/projects", "project", "create_project", {}},
      {"GET", "/api/v1/projects", "project", "get_all", {"name", "page", "page_size"}},
      {"GET", "/api/v1/projects/{id}", "project", "get_by_uid", {}},
      {"GET", "/api/v1/projects/by_name/{name}", "project", "get_by_name", {}},
      {"GET", "/api/v1/projects/{id}/events", "project", "get_events", {"after_seq", "limit"}},
      {"POST", "/api/v1/projects/{id}/requests", "project", "add_request", {}},
      {"POST", "/api/v1/projects/{id}/messages", "project", "send_message", {}},
      {"GET", "/api/v1/audit", "audit", "get_all", {"after_seq", "limit"}},
      {"GET", "/api/v1/audit/verify", "audit", "verify", {"head"}},
      {"POST", "/api/v1/api_endpoints", "api", "add", {}},
      {"GET", "/api/v1/api_endpoints", "api", "api_endpoints", {}},
      {"GET", "/api/v1/api_endpoints/{path}", "api", "get", {}},
      {"PATCH", "/api/v1/api_endpoints/{path}", "api", "update", {}},
      {"DELETE", "/api/v1/api_endpoints/{path}", "api", "delete", {}},
      {"POST", "/api/v1/api_endpoints/{path}/call", "api", "call", {}},
      {"PUT", "/api/v1/assets/{id}/dp_policy", "dp", "set_policy", {}},
      {"GET", "/api/v1/assets/{id}/dp_policy", "dp", "get_policy", {}},
      {"DELETE", "/api/v1/assets/{id}/dp_policy", "dp", "delete_policy", {}},
      {"POST", "/api/v1/assets/{id}/dp/query", "dp", "query", {}},
      {"POST", "/api/v1/assets/{id}/dp/cost", "dp", "cost", {}},
      {"POST", "/api/v1/assets/{id}/dp/budget", "dp", "adjust_budget", {}},
      {"GET", "/api/v1/dp/budget", "dp", "budget", {"asset_id"}},
  };
  return table;
}

// Services the Python client defines itself on top of the routes (client.code_history ...).
// And the services whose routes are named from their tags (grants, sync, ...), which a custom
// endpoint's path would shadow in the client as well.
constexpr const char* kClientServices[] = {"code_history", "grant", "grants", "sync",
                                           "notifications"};

std::string Identifier(std::string_view text) {
  std::string out;
  for (char c : text) {
    out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  }
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(0, "_");
  return out;
}

std::string ServiceOfTag(std::string_view tag) {
  if (tag == "blobs") return "blob_storage";
  if (tag == "users" || tag == "datasets" || tag == "requests" || tag == "jobs") {
    return Identifier(tag.substr(0, tag.size() - 1));
  }
  return Identifier(tag.empty() ? "misc" : tag);
}

// "GET /api/v1/jobs/{id}/logs" -> job.get_logs; "POST .../{id}/deposit" -> .deposit;
// "GET /api/v1/things" -> .get_all; "POST /api/v1/things" -> .create; "GET .../{id}" -> .get.
OperationName Derive(std::string_view method, std::string_view pattern, std::string_view tag) {
  std::vector<std::string_view> segments;
  for (size_t i = 0; i < pattern.size();) {
    size_t j = pattern.find('/', i);
    if (j == std::string_view::npos) j = pattern.size();
    if (j > i) segments.push_back(pattern.substr(i, j - i));
    i = j + 1;
  }
  const bool versioned = segments.size() >= 2 && segments[0] == "api";
  const size_t first = versioned ? 3 : 0;  // after /api/v1/<collection>
  std::string last_literal;
  bool ends_with_param = false;
  bool has_param = false;
  for (size_t k = first; k < segments.size(); ++k) {
    if (!segments[k].empty() && segments[k].front() == '{') {
      has_param = true;
      ends_with_param = true;
      last_literal.clear();
    } else {
      ends_with_param = false;
      last_literal = Identifier(segments[k]);
    }
  }
  std::string verb = Identifier(method);
  std::string name;
  if (!last_literal.empty()) {
    if (verb == "post") {
      name = last_literal;
    } else if (verb == "patch" || verb == "put") {
      name = "update_" + last_literal;
    } else {
      name = verb + "_" + last_literal;
    }
  } else if (ends_with_param || has_param) {
    name = verb == "patch" || verb == "put" ? "update" : verb == "post" ? "post" : verb;
  } else {
    name = verb == "get" ? "get_all" : verb == "post" ? "create" : verb;
  }
  std::string service = versioned && segments.size() >= 3 && tag.empty() ? Identifier(segments[2])
                                                                         : ServiceOfTag(tag);
  return {service, name, {}};
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

OperationName NameOperation(std::string_view method, std::string_view pattern,
                            std::string_view tag) {
  for (const auto& row : Table()) {
    if (method == row.method && pattern == row.pattern) return {row.service, row.name, row.query};
  }
  return Derive(method, pattern, tag);
}

std::vector<std::string> BuiltInServices() {
  std::set<std::string> services(std::begin(kClientServices), std::end(kClientServices));
  for (const auto& row : Table()) services.insert(row.service);
  return {services.begin(), services.end()};
}

Status CheckCustomEndpointPath(std::string_view path) {
  const size_t dot = path.find('.');
  if (dot == std::string_view::npos || path.find('.', dot + 1) != std::string_view::npos ||
      !IsIdentifier(path.substr(0, dot)) || !IsIdentifier(path.substr(dot + 1)) ||
      path.size() > 128) {
    return InvalidArgumentError(
        "an endpoint path is 'service.method', two Python identifiers, e.g. "
        "'bigquery.test_query'");
  }
  const std::string service(path.substr(0, dot));
  // Python's keywords are identifiers the attribute syntax can't reach (client.api.services.class).
  static const std::set<std::string_view> kKeywords = {
      "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
      "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
      "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
      "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield"};
  if (kKeywords.count(path.substr(0, dot)) || kKeywords.count(path.substr(dot + 1))) {
    return InvalidArgumentError("an endpoint path's parts may not be Python keywords: '" +
                                std::string(path.substr(0, 64)) + "'");
  }
  for (const auto& builtin : BuiltInServices()) {
    if (builtin == service) {
      return InvalidArgumentError("'" + service +
                                  "' is a built-in service of client.api.services; choose "
                                  "another first part for '" +
                                  std::string(path.substr(0, 64)) + "'");
    }
  }
  return Status::Ok();
}

}  // namespace datasite::api
