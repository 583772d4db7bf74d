// Routes for blobs, datasets and assets (docs/API.md, "Datasets, assets and blobs").
#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"
#include "blob/blob_store.h"
#include "core/clock.h"
#include "core/random.h"
#include "data/format.h"
#include "data/mock_params.h"

#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace datasite::api {
namespace {

using auth::Role;
using internal::QueryInt;
using internal::Reply;
using internal::Schema;
using nlohmann::json;
using services::Principal;

bool SeesPrivate(const Principal& p) { return p.IsDataOwner(); }

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

json AssetJson(const store::Asset& a, const Principal& caller) {
  json j = {{"id", a.id},
            {"name", a.name},
            {"description", a.description},
            {"format", a.format},
            {"mock_is_real", a.mock_is_real},
            {"has_mock", a.mock_blob.has_value()}};
  if (a.mock_blob) {
    j["mock_size"] = a.mock_blob->size;
    j["mock_sha256"] = a.mock_blob->sha256;
    if (!a.mock_blob->meta.empty()) j["mock_meta"] = json::parse(a.mock_blob->meta, nullptr, false);
    j["schema"] = json::parse(a.mock_blob->schema, nullptr, false);
  } else if (a.data_blob) {
    j["schema"] = StructureOnly(json::parse(a.data_blob->schema, nullptr, false));
  } else {
    j["schema"] = nullptr;
  }
  json metadata = json::parse(a.metadata, nullptr, false);
  for (const char* key : {"contributors", "data_subjects"}) {
    j[key] = metadata.is_object() && metadata.contains(key) ? metadata[key] : json::array();
  }
  if (SeesPrivate(caller)) j["mock_needs_regeneration"] = a.mock_needs_regeneration;
  if (SeesPrivate(caller) && a.data_blob) {
    j["data_size"] = a.data_blob->size;
    j["data_sha256"] = a.data_blob->sha256;
    j["data_schema"] = json::parse(a.data_blob->schema, nullptr, false);
    if (!a.data_blob->meta.empty()) j["data_meta"] = json::parse(a.data_blob->meta, nullptr, false);
  }
  return j;
}

json DatasetJson(const store::Dataset& d, const Principal& caller) {
  json contributors = json::array();
  for (const auto& c : d.contributors) {
    contributors.push_back({{"name", c.name},
                            {"email", c.email},
                            {"role", c.role},
                            {"phone", c.phone},
                            {"note", c.note}});
  }
  json assets = json::array();
  for (const auto& a : d.assets) assets.push_back(AssetJson(a, caller));
  return json{
      {"id", d.id},
      {"name", d.name},
      {"summary", d.summary},
      {"description", d.description},
      {"citation", d.citation},
      {"url", d.url},
      {"contributors", contributors},
      {"uploader", {{"id", d.uploader_id}, {"name", d.uploader_name}, {"email", d.uploader_email}}},
      {"created_at", FormatIsoTime(d.created_at)},
      {"updated_at", FormatIsoTime(d.updated_at)},
      {"assets", assets}};
}

// Rendered dataset JSON, so that listing pages do not build the same documents again and again. A
// dataset's document changes only with its updated_at (assets and blobs never change once made) and
// its uploader's name and email, all of which are in the key. Safe for concurrent use.
class RenderCache {
 public:
  // The rendering kept for `d` (its assets need not be loaded), if any.
  std::optional<std::string> Find(const store::Dataset& d, const Principal& caller) {
    std::string key = Key(d, caller);
    std::lock_guard lock(mu_);
    auto it = docs_.find(key);
    if (it == docs_.end()) return std::nullopt;
    return it->second;
  }

  // Read before the datasets to render are read from the store; see Render.
  uint64_t Generation() {
    std::lock_guard lock(mu_);
    return generation_;
  }

  // Renders `d`, which must have its assets, and keeps the rendering unless a dataset was
  // invalidated since `generation`: `d` may then be older than the change, whose updated_at can be
  // the same second, and kept it would hide the change.
  std::string Render(const store::Dataset& d, const Principal& caller, uint64_t generation) {
    std::string doc = internal::Dump(DatasetJson(d, caller));
    std::lock_guard lock(mu_);
    if (generation != generation_) return doc;
    if (docs_.size() >= kMaxEntries) docs_.clear();  // stale versions go too
    docs_.emplace(Key(d, caller), doc);
    return doc;
  }

  // Forgets every rendering of a dataset. Called after it changed: updated_at has only whole
  // seconds, so the changed dataset may have the key of its last rendering.
  void Invalidate(const std::string& dataset_id) {
    std::lock_guard lock(mu_);
    ++generation_;
    for (auto it = docs_.begin(); it != docs_.end();) {
      it = it->first.compare(0, dataset_id.size(), dataset_id) == 0 ? docs_.erase(it)
                                                                    : std::next(it);
    }
  }

 private:
  static std::string Key(const store::Dataset& d, const Principal& caller) {
    return d.id + '|' + std::to_string(d.updated_at) + '|' + (SeesPrivate(caller) ? '1' : '0') +
           '|' + d.uploader_name + '|' + d.uploader_email;
  }

  static constexpr size_t kMaxEntries = 20'000;
  std::mutex mu_;
  std::unordered_map<std::string, std::string> docs_;  // Guarded by mu_.
  uint64_t generation_ = 0;                            // Guarded by mu_: Invalidate calls.
};

// Whole listing pages as sent, for the catalogue version they were read at: paging through the
// catalogue again costs no database work until a dataset (or an uploader) changes. Pages are
// shared, not copied: an answer points into the kept page until it is written.
class PageCache {
 public:
  using Page = std::shared_ptr<const std::string>;

  // The page kept under `key` for `version`, or null.
  Page Get(int64_t version, const std::string& key) {
    std::lock_guard lock(mu_);
    if (version != version_) return nullptr;
    auto it = pages_.find(key);
    return it == pages_.end() ? nullptr : it->second;
  }
  void Put(int64_t version, std::string key, std::string page) {
    auto kept = std::make_shared<const std::string>(std::move(page));
    std::lock_guard lock(mu_);
    if (version < version_) return;  // read before a newer change: keep the newer pages
    // Bounded in bytes too: every page size and search is a page of its own, and a guest may ask
    // for as many as it likes (a cold attack kept 1 GB of pages this way).
    if (version != version_ || pages_.size() >= kMaxPages || bytes_ + kept->size() > kMaxBytes) {
      pages_.clear();
      bytes_ = 0;
      version_ = version;
    }
    const size_t size = kept->size();
    if (size > kMaxBytes) return;
    if (pages_.emplace(std::move(key), std::move(kept)).second) bytes_ += size;
  }

 private:
  static constexpr size_t kMaxPages = 2'000;
  static constexpr size_t kMaxBytes = 32u << 20;
  std::mutex mu_;
  int64_t version_ = -1;                         // Guarded by mu_.
  std::unordered_map<std::string, Page> pages_;  // Guarded by mu_.
  size_t bytes_ = 0;                             // Guarded by mu_: the pages' sizes.
};

std::string SearchOf(const http::Request& req) {
  auto it = req.query.find("search");
  return it == req.query.end() ? "" : it->second;
}

// A listing page's key in the PageCache: what the caller may see, and the query.
std::string PageKey(const Principal& caller, int64_t page, int64_t page_size,
                    const std::string& search) {
  return std::string(SeesPrivate(caller) ? "p|" : "m|") + std::to_string(page) + '|' +
         std::to_string(page_size) + '|' + search;
}

// The body of a mock generation: the parameter document (data/mock_params.h), "seed" included;
// an empty body means the defaults. A seed of 0 or none is drawn at random.
const std::initializer_list<std::string_view> kMockFields = {"rows",  "seed",        "columns",
                                                             "paths", "public_keys", "values"};

Result<data::MockParams> ReadMockParams(const http::Request& req) {
  json doc = json::object();
  if (!req.body.empty()) {
    ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, kMockFields));
    for (std::string_view field : kMockFields) {
      auto value = body.Field(std::string(field).c_str());
      if (value) doc[std::string(field)] = std::move(*value);
    }
  }
  ASSIGN_OR_RETURN(data::MockParams params, data::ParseMockParams(doc));
  if (params.seed.value_or(0) == 0) {
    uint64_t seed = 0;
    std::string r = RandomBytes(8);
    std::memcpy(&seed, r.data(), sizeof(seed));
    params.seed = seed;
  }
  return params;
}

std::string MockSchema() {
  return Schema({{"rows", "integer"},
                 {"seed", "integer"},
                 {"columns", "object"},
                 {"paths", "object"},
                 {"public_keys", "array"},
                 {"values", "object"}});
}

Result<std::vector<store::Contributor>> ReadContributors(const std::vector<JsonBody>& items) {
  std::vector<store::Contributor> out;
  for (const auto& c : items) {
    store::Contributor k;
    ASSIGN_OR_RETURN(k.name, c.RequiredString("name"));
    ASSIGN_OR_RETURN(auto email, c.OptionalString("email"));
    ASSIGN_OR_RETURN(auto role, c.OptionalString("role"));
    ASSIGN_OR_RETURN(auto phone, c.OptionalString("phone"));
    ASSIGN_OR_RETURN(auto note, c.OptionalString("note"));
    k.email = email.value_or("");
    k.role = role.value_or("");
    k.phone = phone.value_or("");
    k.note = note.value_or("");
    out.push_back(std::move(k));
  }
  return out;
}

constexpr int kMaxDataSubjects = 1000;
constexpr int kMaxDataSubjectDepth = 4;

// A data subject as given: {name, description?, aliases?: [string], members?: [data subject]};
// `count` counts the subjects read so far, over all levels.
Result<json> ReadDataSubject(const json& j, int depth, int& count) {
  if (!j.is_object()) {
    return InvalidArgumentError(
        "a data subject is an object {name, description?, aliases?, members?}");
  }
  if (++count > kMaxDataSubjects) return InvalidArgumentError("at most 1000 data subjects");
  if (depth > kMaxDataSubjectDepth) {
    return InvalidArgumentError("data subjects nest at most 4 levels deep");
  }
  auto text = [](const json& v, size_t max) {
    return v.is_string() && !v.get_ref<const std::string&>().empty() &&
           v.get_ref<const std::string&>().size() <= max;
  };
  json out = json::object();
  for (const auto& [key, value] : j.items()) {
    if (key == "name" || key == "description") {
      if (!text(value, key == "name" ? 128 : 1024)) {
        return InvalidArgumentError("data subject '" + key + "' must be text of at most " +
                                    (key == "name" ? "128" : "1024") + " bytes");
      }
      out[key] = value;
    } else if (key == "aliases") {
      if (!value.is_array() || value.size() > 100) {
        return InvalidArgumentError("data subject 'aliases' must be a list of at most 100 names");
      }
      for (const auto& alias : value) {
        if (!text(alias, 128)) return InvalidArgumentError("a data subject alias must be text");
      }
      out[key] = value;
    } else if (key == "members") {
      if (!value.is_array()) return InvalidArgumentError("data subject 'members' must be a list");
      json members = json::array();
      for (const auto& m : value) {
        ASSIGN_OR_RETURN(json member, ReadDataSubject(m, depth + 1, count));
        members.push_back(std::move(member));
      }
      out[key] = std::move(members);
    } else {
      return InvalidArgumentError("unknown data subject field '" + key.substr(0, 32) + "'");
    }
  }
  if (!out.contains("name")) return InvalidArgumentError("a data subject needs a name");
  return out;
}

Result<std::string> ReadDataSubjects(const JsonBody& asset) {
  auto field = asset.Field("data_subjects");
  if (!field) return std::string("[]");
  if (!field->is_array()) return InvalidArgumentError("asset 'data_subjects' must be a list");
  json out = json::array();
  int count = 0;
  for (const auto& subject : *field) {
    ASSIGN_OR_RETURN(json s, ReadDataSubject(subject, 1, count));
    out.push_back(std::move(s));
  }
  return internal::Dump(out);
}

// Streams the blob from its reader, a piece at a time: memory stays constant whatever its size.
Reply FileReply(services::BlobBytes f) {
  Reply r;
  std::shared_ptr<blob::BlobReader> reader = std::move(f.reader);
  r.body_size = reader->size();
  r.body_source = [reader](char* buf, size_t cap) { return reader->Read(buf, cap); };
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
  auto cache = std::make_shared<RenderCache>();
  auto pages = std::make_shared<PageCache>();

  routes->AddUpload(
      "POST", "/api/v1/blobs", Role::kDataOwner, "blobs",
      "Upload a file (?format=csv|json|npy|raw), streamed; it stays private to its uploader until "
      "a dataset "
      "uses it.",
      [&datasets](http::Request& req,
                  const Principal& caller) -> Result<std::unique_ptr<http::BodySink>> {
        auto it = req.query.find("format");
        if (it == req.query.end()) return InvalidArgumentError("add ?format=csv, json, npy or raw");
        std::optional<int64_t> size;
        if (req.content_length) size = static_cast<int64_t>(*req.content_length);
        ASSIGN_OR_RETURN(auto upload, datasets.StartUpload(caller, it->second, size));
        return std::unique_ptr<http::BodySink>(new UploadSink(std::move(upload)));
      });
  routes->Add("GET", "/api/v1/blobs/{id}", Role::kDataOwner, "blobs",
              "Download one of your own blobs.",
              [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto file, datasets.ReadBlob(caller, req.path_params["id"]));
                return FileReply(std::move(file));
              });
  routes->Add("DELETE", "/api/v1/blobs/{id}", Role::kDataOwner, "blobs",
              "Delete one of your blobs that no dataset uses.",
              [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(datasets.DeleteBlob(caller, req.path_params["id"]));
                return Reply{200, {{"message", "Blob deleted"}}, {}};
              });
  routes->Add(
      "POST", "/api/v1/blobs/{id}/mock", Role::kDataOwner, "blobs",
      "Generate a mock of one of your blobs: its structure and the values your parameters "
      "declare, nothing else of the private data.",
      [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto params, ReadMockParams(req));
        ASSIGN_OR_RETURN(auto blob,
                         datasets.MakeMock(caller, req.path_params["id"], params, *params.seed));
        return Reply{201, BlobJson(blob), {}};
      },
      MockSchema(), http::Lane::kHeavy);

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
        ASSIGN_OR_RETURN(
            auto contributors,
            body.OptionalObjects("contributors", {"name", "email", "role", "phone", "note"}));
        if (contributors) {
          ASSIGN_OR_RETURN(d.contributors, ReadContributors(*contributors));
        }
        ASSIGN_OR_RETURN(auto assets, body.OptionalObjects(
                                          "assets", {"name", "description", "data", "mock",
                                                     "mock_is_real", "contributors",
                                                     "data_subjects", "data_meta", "mock_meta"}));
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
          ASSIGN_OR_RETURN(auto people, a.OptionalObjects("contributors", {"name", "email", "role",
                                                                           "phone", "note"}));
          if (people) {
            ASSIGN_OR_RETURN(na.contributors, ReadContributors(*people));
          }
          ASSIGN_OR_RETURN(na.data_subjects_json, ReadDataSubjects(a));
          na.data_meta = a.Field("data_meta");
          na.mock_meta = a.Field("mock_meta");
          d.assets.push_back(std::move(na));
        }
        ASSIGN_OR_RETURN(auto created, ctx.datasets.Create(caller, d));
        json j = DatasetJson(created, caller);
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
      "POST", "/api/v1/data_subjects", Role::kDataOwner, "data_subjects",
      "Register a data subject and its members in the server-wide registry (data owners and "
      "admins).",
      [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(
            JsonBody::Parse(req.body, {"name", "description", "aliases", "members"}).status());
        int count = 0;
        ASSIGN_OR_RETURN(json subject,
                         ReadDataSubject(json::parse(req.body, nullptr, false), 1, count));
        ASSIGN_OR_RETURN(int added, ctx.datasets.AddDataSubject(caller, subject));
        return Reply{201, {{"added", added}, {"registered", count}}, {}};
      },
      Schema({{"name", "string"},
              {"description", "string"},
              {"aliases", "array"},
              {"members", "array"}},
             {"name"}));
  routes->Add("GET", "/api/v1/data_subjects", Role::kDataScientist, "data_subjects",
              "The registered data subjects, oldest first, with their members' names.",
              [&ctx](http::Request&, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto subjects, ctx.datasets.ListDataSubjects(caller));
                json out = json::array();
                for (const auto& d : subjects) {
                  json aliases = json::parse(d.aliases, nullptr, false);
                  out.push_back({{"name", d.name},
                                 {"description", d.description},
                                 {"aliases", aliases.is_array() ? aliases : json::array()},
                                 {"members", d.members},
                                 {"created_at", d.created_at}});
                }
                return Reply{200, out, {}};
              });
  routes->Add(
      "GET", "/api/v1/datasets", Role::kGuest, "datasets",
      "List datasets, newest first (?page=&page_size=&search= in name and description).",
      [&ctx, cache, pages](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
        ASSIGN_OR_RETURN(int64_t page_size, QueryInt(req, "page_size", 50));
        std::string search = SearchOf(req);
        // Read the version before the page: a change after this makes the next reader
        // miss, never serves a page older than its version.
        const int64_t version = ctx.datasets.CatalogVersion();
        const std::string key = PageKey(caller, page, page_size, search);
        Reply reply;
        if (auto hit = pages->Get(version, key)) {
          reply.raw_json = *hit;
          return reply;
        }
        // Assets (a join over blobs, most of a page's database work) are read only for the
        // datasets whose rendering is not kept; `kept` gets one entry per dataset, in order.
        const uint64_t generation = cache->Generation();
        std::vector<std::optional<std::string>> kept;
        ASSIGN_OR_RETURN(auto result, ctx.datasets.List(caller, search, page, page_size,
                                                        [&](const store::Dataset& d) {
                                                          kept.push_back(cache->Find(d, caller));
                                                          return !kept.back();
                                                        }));
        if (kept.size() != result.items.size()) return InternalError("listing lost its renderings");
        reply.raw_json = "{\"items\":[";
        for (size_t i = 0; i < result.items.size(); ++i) {
          if (i) reply.raw_json += ',';
          reply.raw_json += kept[i] ? *kept[i] : cache->Render(result.items[i], caller, generation);
        }
        reply.raw_json += "],\"total\":" + std::to_string(result.total) +
                          ",\"page\":" + std::to_string(page) +
                          ",\"page_size\":" + std::to_string(page_size) + "}";
        pages->Put(version, key, reply.raw_json);
        return reply;
      });
  // A cached page without leaving the I/O thread, for a caller whose session is remembered (the
  // common case when paging); anything else — a page not cached, a bad query, an unknown session —
  // takes the route above, which also answers the errors.
  router.SetAnswerInline("GET", "/api/v1/datasets",
                         [&ctx, pages](http::Request& req) -> std::optional<http::Response> {
                           auto caller = ctx.accounts.RememberedPrincipal(req.authorization);
                           if (!caller || !auth::AtLeast(caller->role, Role::kGuest))
                             return std::nullopt;
                           auto page = QueryInt(req, "page", 1);
                           auto page_size = QueryInt(req, "page_size", 50);
                           if (!page.ok() || !page_size.ok()) return std::nullopt;
                           auto hit =
                               pages->Get(ctx.datasets.CatalogVersion(),
                                          PageKey(*caller, *page, *page_size, SearchOf(req)));
                           if (!hit) return std::nullopt;
                           http::Response res;
                           res.shared_body = std::move(hit);
                           return res;
                         });
  routes->Add("GET", "/api/v1/datasets/{id}", Role::kGuest, "datasets",
              "One dataset, by id or by name.",
              [&ctx](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto d, ctx.datasets.Get(caller, req.path_params["id"]));
                json j = DatasetJson(d, caller);
                return Reply{200, j, {}};
              });
  routes->Add(
      "PATCH", "/api/v1/datasets/{id}", Role::kDataOwner, "datasets",
      "Change a dataset's metadata.",
      [&ctx, cache](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"name", "summary", "description",
                                                               "citation", "url", "contributors"}));
        services::DatasetPatch p;
        ASSIGN_OR_RETURN(p.name, body.OptionalString("name"));
        ASSIGN_OR_RETURN(p.summary, body.OptionalString("summary"));
        ASSIGN_OR_RETURN(p.description, body.OptionalString("description"));
        ASSIGN_OR_RETURN(p.citation, body.OptionalString("citation"));
        ASSIGN_OR_RETURN(p.url, body.OptionalString("url"));
        ASSIGN_OR_RETURN(
            auto contributors,
            body.OptionalObjects("contributors", {"name", "email", "role", "phone", "note"}));
        if (contributors) {
          ASSIGN_OR_RETURN(p.contributors, ReadContributors(*contributors));
        }
        ASSIGN_OR_RETURN(auto d, ctx.datasets.Update(caller, req.path_params["id"], p));
        cache->Invalidate(d.id);
        json j = DatasetJson(d, caller);
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
                return FileReply(std::move(file));
              });
  routes->Add(
      "POST", "/api/v1/datasets/{id}/assets/{name}/mock", Role::kDataOwner, "datasets",
      "Replace an asset's mock with one generated anew from its private data and your "
      "parameters (clears mock_needs_regeneration).",
      [&ctx, cache](http::Request& req, const Principal& caller) -> Result<Reply> {
        ASSIGN_OR_RETURN(auto params, ReadMockParams(req));
        ASSIGN_OR_RETURN(
            auto d, ctx.datasets.RegenerateMock(caller, req.path_params["id"],
                                                req.path_params["name"], params, *params.seed));
        cache->Invalidate(d.id);
        return Reply{200, DatasetJson(d, caller), {}};
      },
      MockSchema(), http::Lane::kHeavy);
  routes->Add("GET", "/api/v1/datasets/{id}/assets/{name}/data", Role::kDataOwner, "datasets",
              "Download an asset's private data (data owners and admins).",
              [&datasets](http::Request& req, const Principal& caller) -> Result<Reply> {
                ASSIGN_OR_RETURN(auto file, datasets.AssetBytes(caller, req.path_params["id"],
                                                                req.path_params["name"], true));
                return FileReply(std::move(file));
              });
}

}  // namespace datasite::api
