// The HTTP API: routes, their role requirements, JSON rendering and the OpenAPI document.
#ifndef DATASITE_API_API_H_
#define DATASITE_API_API_H_

#include <atomic>
#include <functional>
#include <string>

#include "http/router.h"
#include "services/accounts.h"
#include "services/audit.h"
#include "services/code.h"
#include "services/datasets.h"
#include "services/dp.h"
#include "services/endpoints.h"
#include "services/notifications.h"
#include "services/password_reset.h"
#include "services/pools.h"
#include "services/projects.h"
#include "services/settings.h"
#include "services/sync.h"

namespace datasite::api {

// The version of the HTTP API, "major.minor", in /api/v1/metadata and the OpenAPI document: a
// client refuses a server of another major version. 1.0: servers before this field; 1.1: operation
// names (operationId) and query parameters in the OpenAPI document.
inline constexpr const char* kApiVersion = "1.2";

struct ApiContext {
  services::Accounts& accounts;
  services::SettingsService& settings;
  services::Datasets& datasets;
  services::CodeService& code;
  services::ProjectService& projects;
  services::AuditService& audit;
  // /readyz answers 200 only while this is true.
  const std::atomic<bool>& ready;
  // Null where a test or fuzzer builds the API without them: their routes answer 503.
  services::Notifications* notifications = nullptr;
  services::PasswordResets* resets = nullptr;
  services::SyncService* sync = nullptr;
  services::EndpointService* endpoints = nullptr;
  services::DpService* dp = nullptr;
  services::PoolService* pools = nullptr;
  // /readyz answers 503 while this fails (the database is unreachable). Null: not checked.
  std::function<Status()> database_ready;
  // Keeps the answers of changes sent with an Idempotency-Key. Null: the header is ignored.
  store::Store* idempotency_store = nullptr;
};

// Adds every route of the API to `router`. `context` must outlive the router.
void AddRoutes(http::Router& router, ApiContext& context);
// The dataset, asset and blob routes (part of AddRoutes).
void AddDatasetRoutes(http::Router& router, ApiContext& context);

// The custom API endpoint routes (part of AddRoutes).
void AddEndpointRoutes(http::Router& router, ApiContext& context);
// Differential privacy (routes for services/dp.h).
void AddDpRoutes(http::Router& router, ApiContext& context);
// Worker pools and their images (routes for services/pools.h).
void AddPoolRoutes(http::Router& router, ApiContext& context);

// The code, request and job routes (part of AddRoutes).
void AddCodeRoutes(http::Router& router, ApiContext& context);

// The project routes (part of AddRoutes).
void AddProjectRoutes(http::Router& router, ApiContext& context);
// The notification, mail settings and password reset routes (part of AddRoutes).
void AddNotificationRoutes(http::Router& router, ApiContext& context);
// The audit log routes (part of AddRoutes).
void AddAuditRoutes(http::Router& router, ApiContext& context);
// The sync routes (part of AddRoutes).
void AddSyncRoutes(http::Router& router, ApiContext& context);

// The OpenAPI 3.0 document describing every route of `router`.
std::string OpenApiDocument(const http::Router& router);

}  // namespace datasite::api

#endif  // DATASITE_API_API_H_
