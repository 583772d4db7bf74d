// Routes for the audit log (docs/API.md, "Audit log"): data owners and admins only.
#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/route_table.h"
#include "core/clock.h"
#include "services/audit.h"

namespace datasite::api {
namespace {

using auth::Role;
using internal::QueryInt;
using internal::Reply;
using nlohmann::json;
using services::Principal;

}  // namespace

void AddAuditRoutes(http::Router& router, ApiContext& ctx) {
  auto routes = std::make_shared<internal::Routes>(router, ctx);
  services::AuditService& audit = ctx.audit;

  routes->Add("GET", "/api/v1/audit/verify", Role::kDataOwner, "audit",
              "Verify the audit log's hash chain: the first wrong entry and why, and the head "
              "(?head=HASH: also that a head saved earlier is still in the chain).",
              [&audit](http::Request& req, const Principal& caller) -> Result<Reply> {
                std::optional<std::string> head;
                if (auto it = req.query.find("head"); it != req.query.end()) head = it->second;
                ASSIGN_OR_RETURN(auto verdict, audit.Verify(caller, head));
                return Reply{200, store::AuditVerdictJson(verdict), {}};
              });
  routes->Add("GET", "/api/v1/audit", Role::kDataOwner, "audit",
              "Audit log entries after `after_seq`, oldest first, as JSON lines (one entry per "
              "line; at most `limit`, 1000).",
              [&audit](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(int64_t after, QueryInt(req, "after_seq", 0));
                ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", 100));
                ASSIGN_OR_RETURN(auto events, audit.List(caller, after, limit));
                std::string lines;
                for (const auto& e : events)
                  lines += internal::Dump(store::AuditEntryJson(e)) + "\n";
                Reply reply;
                reply.raw_body = std::move(lines);
                reply.content_type = "application/jsonl";
                return reply;
              });
}

}  // namespace datasite::api
