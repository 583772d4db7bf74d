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

json AuditEventJson(const store::AuditEvent& e) {
  return {{"seq", e.seq},
          {"at", FormatIsoTime(e.at)},
          {"actor", e.actor},
          {"action", e.action},
          {"target", e.target},
          {"detail", e.detail},
          {"prev_hash", e.prev_hash},
          {"hash", e.hash}};
}

json AuditVerdictJson(const store::AuditVerdict& v) {
  json j = {{"ok", v.ok},
            {"entries", v.entries},
            {"head_seq", v.head_seq},
            {"head", v.head},
            {"checkpoint_seq", v.checkpoint_seq ? json(*v.checkpoint_seq) : json(nullptr)}};
  if (!v.ok) {
    j["first_bad_seq"] = v.first_bad_seq ? json(v.first_bad_seq) : json(nullptr);
    j["reason"] = v.reason;
  }
  return j;
}

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
                return Reply{200, AuditVerdictJson(verdict), {}};
              });
  routes->Add("GET", "/api/v1/audit", Role::kDataOwner, "audit",
              "Audit log entries after `after_seq`, oldest first, as JSON lines (one entry per "
              "line; at most `limit`, 1000).",
              [&audit](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(int64_t after, QueryInt(req, "after_seq", 0));
                ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", 100));
                ASSIGN_OR_RETURN(auto events, audit.List(caller, after, limit));
                std::string lines;
                for (const auto& e : events) lines += internal::Dump(AuditEventJson(e)) + "\n";
                Reply reply;
                reply.raw_body = std::move(lines);
                reply.content_type = "application/jsonl";
                return reply;
              });
}

}  // namespace datasite::api
