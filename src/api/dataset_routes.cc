// Routes for blobs, datasets and assets (docs/API.md, "Datasets, assets and blobs").
#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"
#include "core/clock.h"
#include "core/random.h"
#include "data/format.h"

#include <cstring>

namespace datasite::api {
namespace {

using auth::Role;
using internal::QueryInt;
using internal::Reply;
using internal::Schema;
using nlohmann::json;
using services::Principal;

bool SeesPrivate(const Principal& p) { return auth::AtLeast(p.role, Role::kDataOwner); }

json BlobJson(const store::Blob& b) {
  return {{"id", b.id},
          {"size", b.size},
          {"sha256", b.sha256},
          {"format", b.format},
          {"schema", json::parse(b.schema, nullptr, false)},
          {"created_at", FormatIsoTime(b.created_at)}};
}

// The structure of private data without how much of it there is, for an asset with an empty mock.
json StructureOnly(json schema) {
  if (schema.is_object()) {
    schema.erase("rows");
    schema.erase("shape");
    schema.erase("length");
  }
  return schema;
}

Result<json> AssetJson(services::Datasets& datasets, const store::Asset& a,
                       const Principal& caller) {
  json j = {{"name", a.name},
            {"description", a.description},
            {"format", a.format},
            {"mock_is_real", a.mock_is_real},
            {"has_mock", a.mock_blob_id.has_value()}};
  std::optional<store::Blob> data;
  if (a.data_blob_id) {
    ASSIGN_OR_RETURN(data, datasets.BlobInfo(*a.data_blob_id));
  }
  if (a.mock_blob_id) {
    ASSIGN_OR_RETURN(store::Blob mock, datasets.BlobInfo(*a.mock_blob_id));
    j["mock_size"] = mock.size;
    j["mock_sha256"] = mock.sha256;
    j["schema"] = json::parse(mock.schema, nullptr, false);
  } else if (data) {
    j["schema"] = StructureOnly(json::parse(data->schema, nullptr, false));
  } else {
    j["schema"] = nullptr;
  }
  if (SeesPrivate(caller) && data) {
    j["data_size"] = data->size;
    j["data_sha256"] = data->sha256;
    j["data_schema"] = json::parse(data->schema, nullptr, false);
  }
  return j;
}

Result<json> DatasetJson(ApiContext& ctx, const store::Dataset& d, const Principal& caller) {
  json contributors = json::array();
  for (const auto& c : d.contributors) {
    contributors.push_back({{"name", c.name}, {"email", c.email}, {"role", c.role}});
  }
  json uploader = {{"id", d.uploader_id}, {"name", nullptr}, {"email", nullptr}};
  if (auto u = ctx.accounts.UserSummary(d.uploader_id); u.ok()) {
    uploader["name"] = u->name;
    uploader["email"] = u->email;
  }
  json assets = json::array();
  for (const auto& a : d.assets) {
    ASSIGN_OR_RETURN(json aj, AssetJson(ctx.datasets, a, caller));
    assets.push_back(std::move(aj));
  }
  return json{{"id", d.id},
              {"name", d.name},
              {"summary", d.summary},
              {"description", d.description},
              {"citation", d.citation},
              {"url", d.url},
              {"contributors", contributors},
              {"uploader", uploader},
              {"created_at", FormatIsoTime(d.created_at)},
              {"updated_at", FormatIsoTime(d.updated_at)},
              {"assets", assets}};
}

Result<std::vector<store::Contributor>> ReadContributors(const std::vector<JsonBody>& items) {
  std::vector<store::Contributor> out;
  for (const auto& c : items) {
    store::Contributor k;
    ASSIGN_OR_RETURN(k.name, c.RequiredString("name"));
    ASSIGN_OR_RETURN(auto email, c.OptionalString("email"));
    ASSIGN_OR_RETURN(auto role, c.OptionalString("role"));
    k.email = email.value_or("");
    k.role = role.value_or("");
    out.push_back(std::move(k));
  }
  return out;
}

Reply FileReply(const services::BlobFile& f) {
  Reply r;
  r.file_path = f.path;
  auto format = data::ParseFormat(f.blob.format);
  r.content_type =
      format.ok() ? std::string(data::ContentType(*format)) : "application/octet-stream";
  r.headers.emplace_back("X-Content-SHA256", f.blob.sha256);
  return r;
}

// Streams an upload into a BlobUpload; the blob's JSON is the response.
class UploadSink : public http::BodySink {
 public:
  explicit UploadSink(std::unique_ptr<services::BlobUpload> upload) : upload_(std::move(upload)) {}
  Status Write(std::string_view chunk) override { return upload_->Write(chunk); }
  http::Response Finish() override {
    auto blob = upload_->Finish();
    if (!blob.ok()) return http::ErrorResponse(blob.status());
    return internal::Render(Reply{201, BlobJson(*blob), {}});
  }

 private:
  std::unique_ptr<services::BlobUpload> upload_;
};

}  // namespace

void AddDatasetRoutes(http::Router& router, ApiContext& ctx) {
  internal::Routes table(router, ctx);
  auto* routes = &table;
  auto& datasets = ctx.datasets;

  routes->AddUpload(
      "POST", "/api/v1/blobs", Role::kDataOwner, "blobs",
      "Upload a file (?format=csv|json|npy|raw), streamed; it stays private to its uploader until "
      "a dataset "
      "uses it.",
      [&datasets](http::Request& req,
                  const Principal& caller) -> Result<std::unique_ptr<http::BodySink>> {
        auto it = req.query.find("format");
        if (it == req.query.end()) return InvalidArgumentError("add ?format=csv, json, npy or raw");
        ASSIGN_OR_RETURN(auto upload, datasets.StartUpload(caller, it->second));
        return std::unique_ptr<http::BodySink>(new UploadSink(std::move(upload)));
      });
  routes->Add("GET", "/api/v1/blobs/{id}", Role::kDataOwner, "blobs",
              "Download one of your own blobs.",
              [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto file, datasets.ReadBlob(caller, req.path_params["id"]));
                return FileReply(file);
              });
  routes->Add("DELETE", "/api/v1/blobs/{id}", Role::kDataOwner, "blobs",
              "Delete one of your blobs that no dataset uses.",
              [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(datasets.DeleteBlob(caller, req.path_params["id"]));
                return Reply{200, {{"message", "Blob deleted"}}, {}};
              });
  routes->Add(
      "POST", "/api/v1/blobs/{id}/mock", Role::kDataOwner, "blobs",
      "Generate a mock of one of your blobs: same structure, random values, no private value "
      "copied.",
      [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
        uint64_t seed = 0;
        if (!req.body.empty()) {
          ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"seed"}));
          ASSIGN_OR_RETURN(auto s, body.OptionalUnsigned("seed"));
          if (s) seed = *s;
        }
        if (seed == 0) {
          std::string r = RandomBytes(8);
          std::memcpy(&seed, r.data(), sizeof(seed));
        }
        ASSIGN_OR_RETURN(auto blob, datasets.MakeMock(caller, req.path_params["id"], seed));
        return Reply{201, BlobJson(blob), {}};
      },
      Schema({{"seed", "integer"}}), http::Lane::kHeavy);

  routes->Add(
      "POST", "/api/v1/datasets", Role::kDataOwner, "datasets",
      "Create a dataset from uploaded blobs; it appears whole or not at all.",
      [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"name", "summary", "description", "citation",
                                                    "url", "contributors", "assets"}));
        services::NewDataset d;
        ASSIGN_OR_RETURN(d.name, body.RequiredString("name"));
        for (auto [field, target] : {std::pair{"summary", &d.summary},
                                     {"description", &d.description},
                                     {"citation", &d.citation},
                                     {"url", &d.url}}) {
          ASSIGN_OR_RETURN(auto v, body.OptionalString(field));
          *target = v.value_or("");
        }
        ASSIGN_OR_RETURN(auto contributors,
                         body.OptionalObjects("contributors", {"name", "email", "role"}));
        if (contributors) {
          ASSIGN_OR_RETURN(d.contributors, ReadContributors(*contributors));
        }
        ASSIGN_OR_RETURN(auto assets, body.OptionalObjects("assets", {"name", "description", "data",
                                                                      "mock", "mock_is_real"}));
        if (!assets) return InvalidArgumentError("field 'assets' is required");
        for (const auto& a : *assets) {
          services::NewAsset na;
          ASSIGN_OR_RETURN(na.name, a.RequiredString("name"));
          ASSIGN_OR_RETURN(auto description, a.OptionalString("description"));
          na.description = description.value_or("");
          ASSIGN_OR_RETURN(na.data_blob_id, a.OptionalString("data"));
          ASSIGN_OR_RETURN(na.mock_blob_id, a.OptionalString("mock"));
          ASSIGN_OR_RETURN(auto real, a.OptionalBool("mock_is_real"));
          na.mock_is_real = real.value_or(false);
          d.assets.push_back(std::move(na));
        }
        ASSIGN_OR_RETURN(auto created, ctx.datasets.Create(caller, d));
        ASSIGN_OR_RETURN(json j, DatasetJson(ctx, created, caller));
        return Reply{201, j, {}};
      },
      Schema({{"name", "string"},
              {"summary", "string"},
              {"description", "string"},
              {"citation", "string"},
              {"url", "string"},
              {"contributors", "array"},
              {"assets", "array"}},
             {"name", "assets"}));
  routes->Add(
      "GET", "/api/v1/datasets", Role::kGuest, "datasets",
      "List datasets, newest first (?page=&page_size=&search= in name and description).",
      [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
        ASSIGN_OR_RETURN(int64_t page_size, QueryInt(req, "page_size", 50));
        auto it = req.query.find("search");
        std::string search = it == req.query.end() ? "" : it->second;
        ASSIGN_OR_RETURN(auto result, ctx.datasets.List(caller, search, page, page_size));
        json items = json::array();
        for (const auto& d : result.items) {
          ASSIGN_OR_RETURN(json dj, DatasetJson(ctx, d, caller));
          items.push_back(std::move(dj));
        }
        return Reply{
            200,
            {{"items", items}, {"total", result.total}, {"page", page}, {"page_size", page_size}},
            {}};
      });
  routes->Add("GET", "/api/v1/datasets/{id}", Role::kGuest, "datasets",
              "One dataset, by id or by name.",
              [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto d, ctx.datasets.Get(caller, req.path_params["id"]));
                ASSIGN_OR_RETURN(json j, DatasetJson(ctx, d, caller));
                return Reply{200, j, {}};
              });
  routes->Add(
      "PATCH", "/api/v1/datasets/{id}", Role::kDataOwner, "datasets",
      "Change a dataset's metadata.",
      [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"name", "summary", "description",
                                                               "citation", "url", "contributors"}));
        services::DatasetPatch p;
        ASSIGN_OR_RETURN(p.name, body.OptionalString("name"));
        ASSIGN_OR_RETURN(p.summary, body.OptionalString("summary"));
        ASSIGN_OR_RETURN(p.description, body.OptionalString("description"));
        ASSIGN_OR_RETURN(p.citation, body.OptionalString("citation"));
        ASSIGN_OR_RETURN(p.url, body.OptionalString("url"));
        ASSIGN_OR_RETURN(auto contributors,
                         body.OptionalObjects("contributors", {"name", "email", "role"}));
        if (contributors) {
          ASSIGN_OR_RETURN(p.contributors, ReadContributors(*contributors));
        }
        ASSIGN_OR_RETURN(auto d, ctx.datasets.Update(caller, req.path_params["id"], p));
        ASSIGN_OR_RETURN(json j, DatasetJson(ctx, d, caller));
        return Reply{200, j, {}};
      },
      Schema({{"name", "string"},
              {"summary", "string"},
              {"description", "string"},
              {"citation", "string"},
              {"url", "string"},
              {"contributors", "array"}}));
  routes->Add("DELETE", "/api/v1/datasets/{id}", Role::kDataOwner, "datasets",
              "Delete a dataset: its metadata is kept as deleted, its bytes are removed.",
              [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(datasets.Delete(caller, req.path_params["id"]));
                return Reply{200, {{"message", "Dataset deleted"}}, {}};
              });
  routes->Add("GET", "/api/v1/datasets/{id}/assets/{name}/mock", Role::kGuest, "datasets",
              "Download an asset's mock.",
              [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto file, datasets.AssetBytes(caller, req.path_params["id"],
                                                                req.path_params["name"], false));
                return FileReply(file);
              });
  routes->Add("GET", "/api/v1/datasets/{id}/assets/{name}/data", Role::kDataOwner, "datasets",
              "Download an asset's private data (data owners and admins).",
              [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto file, datasets.AssetBytes(caller, req.path_params["id"],
                                                                req.path_params["name"], true));
                return FileReply(file);
              });
}

}  // namespace datasite::api
