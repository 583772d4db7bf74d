// Routes for sync between a low and a high side (docs/API.md, "Sync"): admins only. Without a
// sync service (ctx.sync null: a fuzzer's or a test's API) every one answers 503.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"
#include "core/clock.h"
#include "services/sync.h"

namespace datasite::api {
namespace {

using auth::Role;
using internal::Reply;
using nlohmann::json;
using services::Principal;

Result<services::SyncService*> Service(ApiContext& ctx) {
  if (ctx.sync == nullptr) return UnavailableError("sync is not available on this server");
  return ctx.sync;
}

json PeerJson(const store::SyncPeer& p) {
  return {{"name", p.name},
          {"verify_key", p.verify_key},
          {"side", p.side.empty() ? json(nullptr) : json(p.side)},
          {"added_at", FormatIsoTime(p.added_at)},
          {"revoked_at", p.revoked_at ? json(FormatIsoTime(p.revoked_at)) : json(nullptr)},
          {"last_sent_seq", p.last_sent_seq},
          {"last_applied_seq", p.last_applied_seq}};
}

Result<std::vector<std::string>> StringList(const JsonBody& body, const char* field) {
  std::vector<std::string> out;
  auto v = body.Field(field);
  if (!v) return out;
  if (!v->is_array()) return InvalidArgumentError(std::string("'") + field + "' must be a list");
  for (const json& s : *v) {
    if (!s.is_string()) {
      return InvalidArgumentError(std::string("'") + field + "' must list batch ids");
    }
    out.push_back(s.get<std::string>());
  }
  return out;
}

class ImportSink : public http::BodySink {
 public:
  explicit ImportSink(std::unique_ptr<services::SyncImportSink> sink) : sink_(std::move(sink)) {}
  Status Write(std::string_view chunk) override { return sink_->Write(chunk); }
  http::Response Finish() override {
    auto diff = sink_->Finish();
    if (!diff.ok()) return http::ErrorResponse(diff.status());
    Reply reply{201, {}, {}};
    reply.raw_json = std::move(*diff);
    return internal::Render(std::move(reply));
  }

 private:
  std::unique_ptr<services::SyncImportSink> sink_;
};

}  // namespace

void AddSyncRoutes(http::Router& router, ApiContext& ctx) {
  auto routes = std::make_shared<internal::Routes>(router, ctx);

  routes->Add("GET", "/api/v1/sync/identity", Role::kAdmin, "sync",
              "This server's sync identity: name, ed25519 verify key, server id and side.",
              [&ctx](http::Request&, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto* sync, Service(ctx));
                ASSIGN_OR_RETURN(json id, sync->Identity(caller));
                return Reply{200, id, {}};
              });
  routes->Add("GET", "/api/v1/sync/peers", Role::kAdmin, "sync",
              "The registered peers (the other side of the pair), revoked ones included.",
              [&ctx](http::Request&, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto* sync, Service(ctx));
                ASSIGN_OR_RETURN(auto peers, sync->ListPeers(caller));
                json list = json::array();
                for (const auto& p : peers) list.push_back(PeerJson(p));
                return Reply{200, {{"peers", list}}, {}};
              });
  routes->Add(
      "POST", "/api/v1/sync/peers", Role::kAdmin, "sync",
      "Register a peer by name and verify key (exchanged out of band). 409 when either is taken.",
      [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto* sync, Service(ctx));
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"name", "verify_key"}));
        ASSIGN_OR_RETURN(std::string name, body.RequiredString("name"));
        ASSIGN_OR_RETURN(std::string key, body.RequiredString("verify_key"));
        ASSIGN_OR_RETURN(auto peer, sync->AddPeer(caller, name, key));
        return Reply{201, PeerJson(peer), {}};
      },
      internal::Schema({{"name", "string"}, {"verify_key", "string"}}, {"name", "verify_key"}));
  routes->Add(
      "PUT", "/api/v1/sync/peers/{name}", Role::kAdmin, "sync",
      "Rotate a peer's key: the old key becomes revoked; sequence state is kept.",
      [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto* sync, Service(ctx));
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"verify_key"}));
        ASSIGN_OR_RETURN(std::string key, body.RequiredString("verify_key"));
        ASSIGN_OR_RETURN(auto peer, sync->RotatePeer(caller, req.path_params["name"], key));
        return Reply{200, PeerJson(peer), {}};
      },
      internal::Schema({{"verify_key", "string"}}, {"verify_key"}));
  routes->Add("DELETE", "/api/v1/sync/peers/{name}", Role::kAdmin, "sync",
              "Revoke a peer: its bundles are refused from now on ('revoked key').",
              [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto* sync, Service(ctx));
                RETURN_IF_ERROR(sync->RevokePeer(caller, req.path_params["name"]));
                return Reply{200, {{"message", "Peer revoked"}}, {}};
              });
  routes->Add("GET", "/api/v1/sync/export", Role::kAdmin, "sync",
              "The next signed bundle for ?peer=NAME: what it lacks, with the blobs it needs "
              "(application/octet-stream; its sequence number in X-Datasite-Bundle-Seq).",
              [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto* sync, Service(ctx));
                auto it = req.query.find("peer");
                if (it == req.query.end()) return InvalidArgumentError("add ?peer=NAME");
                ASSIGN_OR_RETURN(services::SyncExport out, sync->Export(caller, it->second));
                // Streamed: pulled from the bundle source a piece at a time, never whole in memory.
                std::shared_ptr<sync::BundleSource> source = std::move(out.source);
                Reply reply;
                reply.body_size = source->size();
                reply.body_source = [source](char* buf, size_t cap) {
                  return source->Read(buf, cap);
                };
                reply.content_type = "application/octet-stream";
                reply.headers.push_back({"X-Datasite-Bundle-Seq", std::to_string(out.seq)});
                return reply;
              });
  routes->AddUpload(
      "POST", "/api/v1/sync/imports", Role::kAdmin, "sync",
      "Load a peer's bundle (the body, streamed): verified as it arrives, kept pending; answers "
      "its diff (201). Nothing changes until an apply.",
      [&ctx](http::Request&, const Principal& caller) -> Result<std::unique_ptr<http::BodySink>> {
        ASSIGN_OR_RETURN(auto* sync, Service(ctx));
        ASSIGN_OR_RETURN(auto sink, sync->BeginImport(caller));
        return std::unique_ptr<http::BodySink>(new ImportSink(std::move(sink)));
      });
  routes->Add("GET", "/api/v1/sync/imports/{id}", Role::kAdmin, "sync",
              "A pending import's diff, as it stands now: the summary and each batch's objects "
              "(kind, id, status). ?fields=1 adds each object's hash, version, incoming and "
              "local fields; ?offset=N&limit=M page the batches.",
              [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto* sync, Service(ctx));
                services::SyncDiffView view;
                auto fields = req.query.find("fields");
                view.fields = fields != req.query.end() &&
                              (fields->second == "1" || fields->second == "true");
                ASSIGN_OR_RETURN(view.offset, internal::QueryInt(req, "offset", 0));
                ASSIGN_OR_RETURN(view.limit, internal::QueryInt(req, "limit", -1));
                ASSIGN_OR_RETURN(json diff, sync->Diff(caller, req.path_params["id"], view));
                return Reply{200, std::move(diff), {}};
              });
  routes->Add("GET", "/api/v1/sync/imports/{id}/batches/{kind}/{batch_id}", Role::kAdmin, "sync",
              "One batch of a pending import (kind:batch_id) with its objects' fields, incoming "
              "and local side by side.",
              [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto* sync, Service(ctx));
                ASSIGN_OR_RETURN(json batch, sync->Batch(caller, req.path_params["id"],
                                                         req.path_params["kind"] + ":" +
                                                             req.path_params["batch_id"]));
                return Reply{200, std::move(batch), {}};
              });
  routes->Add(
      "POST", "/api/v1/sync/imports/{id}/apply", Role::kAdmin, "sync",
      "Apply decisions on an import's batches (accept, overwrite, ignore, deny), all in one "
      "transaction or none. 409 for an accepted batch in conflict not in 'overwrite'.",
      [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto* sync, Service(ctx));
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"accept", "overwrite", "ignore", "deny"}));
        services::SyncDecisions d;
        ASSIGN_OR_RETURN(d.accept, StringList(body, "accept"));
        ASSIGN_OR_RETURN(d.overwrite, StringList(body, "overwrite"));
        ASSIGN_OR_RETURN(d.ignore, StringList(body, "ignore"));
        ASSIGN_OR_RETURN(auto denies, body.OptionalObjects("deny", {"batch", "reason"}));
        if (denies) {
          for (const JsonBody& one : *denies) {
            ASSIGN_OR_RETURN(std::string batch, one.RequiredString("batch"));
            ASSIGN_OR_RETURN(std::string reason, one.RequiredString("reason"));
            d.deny.emplace_back(std::move(batch), std::move(reason));
          }
        }
        ASSIGN_OR_RETURN(std::string out, sync->Apply(caller, req.path_params["id"], d));
        Reply reply{200, {}, {}};
        reply.raw_json = std::move(out);
        return reply;
      },
      internal::Schema(
          {{"accept", "array"}, {"overwrite", "array"}, {"ignore", "array"}, {"deny", "array"}}));
  routes->Add("GET", "/api/v1/sync/ignored", Role::kAdmin, "sync",
              "The ignored batches, per peer: left out of diffs until unignored.",
              [&ctx](http::Request&, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto* sync, Service(ctx));
                ASSIGN_OR_RETURN(auto pairs, sync->Ignored(caller));
                json list = json::array();
                for (const auto& [peer, batch] : pairs) {
                  list.push_back({{"peer", peer}, {"batch", batch}});
                }
                return Reply{200, {{"ignored", list}}, {}};
              });
  routes->Add(
      "DELETE", "/api/v1/sync/ignored/{peer}/{kind}/{id}", Role::kAdmin, "sync",
      "Unignore a batch: it shows in the next diffs again.",
      [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto* sync, Service(ctx));
        RETURN_IF_ERROR(sync->Unignore(caller, req.path_params["peer"],
                                       req.path_params["kind"] + ":" + req.path_params["id"]));
        return Reply{200, {{"message", "Batch unignored"}}, {}};
      });
}

}  // namespace datasite::api
