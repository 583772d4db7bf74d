// Routes for worker pools and their images (docs/API.md, "Worker pools"; services/pools.h).
#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"
#include "services/pools.h"

namespace datasite::api {

using auth::Role;
using internal::Reply;
using nlohmann::json;
using services::Principal;

void AddPoolRoutes(http::Router& router, ApiContext& ctx) {
  auto routes = std::make_shared<internal::Routes>(router, ctx);
  services::PoolService* pools = ctx.pools;
  auto available = [pools]() -> Status {
    if (pools == nullptr) return UnavailableError("this server has no worker pools");
    return Status::Ok();
  };
  routes->Add(
      "POST", "/api/v1/worker_images", Role::kDataOwner, "worker_image",
      "Register a Python environment (data owners): {name, worker_config: {path?, python?, "
      "imports?} | {requirements, find_links? | index_url?, imports?}}. A path is checked at once "
      "(its imports imported in a sandbox); requirements are built by POST .../build.",
      [pools, available](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        RETURN_IF_ERROR(JsonBody::Parse(req.body, {"name", "worker_config"}).status());
        ASSIGN_OR_RETURN(json image, pools->SubmitImage(caller, json::parse(req.body)));
        return Reply{201, std::move(image), {}};
      });
  routes->Add("GET", "/api/v1/worker_images", Role::kDataScientist, "worker_image",
              "The environments, 'default' (the server's own Python) first, each with the exact "
              "package list it holds.",
              [pools, available](http::Request&, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json list, pools->ListImages(caller));
                return Reply{200, std::move(list), {}};
              });
  routes->Add("GET", "/api/v1/worker_images/{id}", Role::kDataScientist, "worker_image",
              "One environment.",
              [pools, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json image, pools->GetImage(caller, req.path_params["id"]));
                return Reply{200, std::move(image), {}};
              });
  routes->Add("POST", "/api/v1/worker_images/{id}/build", Role::kDataOwner, "worker_image",
              "Build a requirements environment (a virtualenv over the system's packages, by pip "
              "from find_links or index_url), or check a path environment again.",
              [pools, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json image, pools->BuildImage(caller, req.path_params["id"]));
                return Reply{200, std::move(image), {}};
              });
  routes->Add("DELETE", "/api/v1/worker_images/{id}", Role::kDataOwner, "worker_image",
              "Remove an environment no pool runs (a built one's directory goes with it).",
              [pools, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                RETURN_IF_ERROR(pools->RemoveImage(caller, req.path_params["id"]));
                return Reply{200, {{"deleted", req.path_params["id"]}}, {}};
              });
  routes->Add(
      "POST", "/api/v1/worker_pools", Role::kDataOwner, "worker_pool",
      "Launch a pool (data owners): {name, image_id, num_workers?, memory_bytes?, cpu_seconds?, "
      "timeout_seconds?}; answers once its slots are warm.",
      [pools, available](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        RETURN_IF_ERROR(
            JsonBody::Parse(req.body, {"name", "image_id", "num_workers", "memory_bytes",
                                       "cpu_seconds", "timeout_seconds"})
                .status());
        ASSIGN_OR_RETURN(json pool, pools->LaunchPool(caller, json::parse(req.body)));
        return Reply{201, std::move(pool), {}};
      });
  routes->Add("GET", "/api/v1/worker_pools", Role::kDataScientist, "worker_pool",
              "The worker pools, 'default' first.",
              [pools, available](http::Request&, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json list, pools->ListPools(caller));
                return Reply{200, std::move(list), {}};
              });
  routes->Add("GET", "/api/v1/worker_pools/{name}", Role::kDataScientist, "worker_pool",
              "One worker pool.",
              [pools, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json pool, pools->GetPool(caller, req.path_params["name"]));
                return Reply{200, std::move(pool), {}};
              });
  routes->Add(
      "POST", "/api/v1/worker_pools/{name}/scale", Role::kDataOwner, "worker_pool",
      "Set a pool's number of warm slots: {num_workers}. New slots are forked from a warm one.",
      [pools, available](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"num_workers"}));
        auto n = body.Field("num_workers");
        if (!n || !n->is_number_integer())
          return InvalidArgumentError("num_workers must be a whole number");
        const int64_t workers = n->get<int64_t>();
        if (workers < 1 || workers > 64)
          return InvalidArgumentError("num_workers must be from 1 to 64");
        ASSIGN_OR_RETURN(json pool, pools->ScalePool(caller, req.path_params["name"],
                                                     static_cast<int>(workers)));
        return Reply{200, std::move(pool), {}};
      });
  routes->Add("DELETE", "/api/v1/worker_pools/{name}", Role::kDataOwner, "worker_pool",
              "Delete a pool (its running jobs finish; code bound to it needs another review).",
              [pools, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                RETURN_IF_ERROR(pools->DeletePool(caller, req.path_params["name"]));
                return Reply{200, {{"deleted", req.path_params["name"]}}, {}};
              });
}

}  // namespace datasite::api
