#include "services/sync.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>

#include "auth/role.h"
#include "core/json_depth.h"
#include "core/random.h"
#include "core/sha256.h"
#include "jobs/job_queue.h"
#include "services/accounts.h"

namespace datasite::services {
namespace {

using json = nlohmann::json;

constexpr int64_t kAll = int64_t{1} << 40;  // every row of a listing
constexpr size_t kMaxPeerName = 64;

// What a loaded bundle may hold (docs/SYNC.md, "Limits"). Its objects section is parsed whole, so
// it is bounded in bytes, in nesting (as every request body is), in JSON values (each costs ~100
// bytes parsed, whatever its size in the text) and per string (a code's source is the largest).
constexpr int64_t kMaxObjectsBytes = int64_t{64} << 20;
constexpr int kMaxObjectsDepth = 64;
constexpr int64_t kMaxObjectsValues = 1'000'000;
constexpr size_t kMaxFieldBytes = size_t{1} << 20;
constexpr size_t kMaxKeyBytes = 256;
// Sequence numbers a header may carry: far beyond any real count, far from overflowing.
constexpr int64_t kMaxSeq = int64_t{1} << 40;
// Pending imports kept at once, and for how long (their staging files go with them).
constexpr size_t kMaxPendingImports = 8;
constexpr int64_t kPendingImportSeconds = 24 * 3600;

// Builds a JSON text's document while counting its values and measuring its strings and keys as
// they are read; stops at the first limit passed, with the document only as far as it got. One
// pass: a separate checking pass before the parse cost a load of 10,000 batches 14% of its time.
class CheckedObjectsParser {
 public:
  using string_t = json::string_t;
  explicit CheckedObjectsParser(json& doc) : dom_(doc, /*allow_exceptions_=*/false) {}

  bool null() { return Value() && dom_.null(); }
  bool boolean(bool v) { return Value() && dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return Value() && dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return Value() && dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const string_t& s) {
    return Value() && dom_.number_float(v, s);
  }
  bool string(string_t& v) {
    if (v.size() > kMaxFieldBytes) return Fail("a field is over 1 MiB");
    return Value() && dom_.string(v);
  }
  bool binary(json::binary_t&) { return Fail("binary values are not JSON"); }
  bool start_object(std::size_t n) { return Value() && dom_.start_object(n); }
  bool end_object() { return dom_.end_object(); }
  bool start_array(std::size_t n) { return Value() && dom_.start_array(n); }
  bool end_array() { return dom_.end_array(); }
  bool key(string_t& k) {
    if (k.size() > kMaxKeyBytes) return Fail("a key is over 256 bytes");
    return dom_.key(k);
  }
  template <class Exception>
  bool parse_error(std::size_t at, const std::string& token, const Exception& e) {
    Fail("its objects are not the expected JSON");
    return dom_.parse_error(at, token, e);
  }
  const std::string& error() const { return error_; }

 private:
  bool Value() { return ++values_ <= kMaxObjectsValues || Fail("it holds too many JSON values"); }
  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  int64_t values_ = 0;
  std::string error_;
};

// Parses the objects section within its limits: depth, value count and field sizes (F1, F5 of
// the sync review). The verifier has bounded its bytes already.
Result<json> ParseObjectsSection(std::string_view text) {
  if (NestsDeeperThan(text, kMaxObjectsDepth)) {
    return sync::Refuse(sync::Refusal::kTampered, "its objects nest deeper than 64 levels");
  }
  json doc;
  CheckedObjectsParser parser(doc);
  if (!json::sax_parse(text, &parser) || !parser.error().empty()) {
    return sync::Refuse(sync::Refusal::kTampered, parser.error().empty()
                                                      ? "its objects are not the expected JSON"
                                                      : parser.error());
  }
  return doc;
}

const std::set<std::string>& KindsSentBy(const std::string& side) {
  static const std::set<std::string> low = {"user", "code", "request", "project"};
  static const std::set<std::string> high = {"dataset", "asset", "decision", "job"};
  return side == "high" ? high : low;
}

std::string OtherSide(const std::string& side) { return side == "high" ? "low" : "high"; }

bool IsAdmin(const Principal& caller) { return auth::AtLeast(caller.role, auth::Role::kAdmin); }

Status NeedAdmin(const Principal& caller) {
  if (!caller.authenticated()) return UnauthenticatedError("log in first");
  if (!IsAdmin(caller)) return PermissionDeniedError("sync is for admins only");
  return Status::Ok();
}

bool IsHexKey(const std::string& key) {
  return key.size() == 64 && std::all_of(key.begin(), key.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsPeerName(const std::string& name) {
  return !name.empty() && name.size() <= kMaxPeerName &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
         });
}

json OptionalText(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

json ParseOr(const std::string& text, json fallback) {
  json v = json::parse(text, nullptr, false);
  return v.is_discarded() ? fallback : v;
}

SyncObject MakeObject(std::string kind, std::string id, std::string root, json fields,
                      std::optional<std::string> blob = std::nullopt) {
  SyncObject o;
  o.kind = std::move(kind);
  o.id = std::move(id);
  o.root = std::move(root);
  o.fields = std::move(fields);
  o.blob = std::move(blob);
  o.hash = SyncObjectHash(o.fields, o.blob);
  return o;
}

json ObjectJson(const SyncObject& o) {
  return {{"kind", o.kind},
          {"id", o.id},
          {"root", o.root},
          {"version", o.version},
          {"hash", o.hash},
          {"fields", o.fields},
          {"blob", o.blob ? json(*o.blob) : json(nullptr)}};
}

// A string field of an incoming object's fields ("" when absent or not a string).
std::string Text(const json& fields, const char* key) {
  auto it = fields.find(key);
  return it != fields.end() && it->is_string() ? it->get<std::string>() : std::string();
}
int64_t Int(const json& fields, const char* key) {
  auto it = fields.find(key);
  return it != fields.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
std::optional<std::string> OptText(const json& fields, const char* key) {
  auto it = fields.find(key);
  if (it == fields.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// A dataset object that says the dataset was deleted.
bool IsDeletion(const SyncObject& o) {
  auto it = o.fields.find("deleted_at");
  return o.kind == "dataset" && it != o.fields.end() && !it->is_null();
}

// The parts of a batch id: ("request", "<uuid>").
std::pair<std::string, std::string> SplitBatch(const std::string& batch) {
  const size_t colon = batch.find(':');
  if (colon == std::string::npos) return {"", ""};
  return {batch.substr(0, colon), batch.substr(colon + 1)};
}

// An import's diff as kept between calls: per batch (in bundle order) its objects' statuses and
// this side's fields of each.
struct KeptObject {
  size_t index = 0;  // into Import::objects
  std::string status;
  json local;  // null when this side has no such object
};
struct KeptBatch {
  std::string id;
  std::vector<KeptObject> objects;
};

// A batch's status from its objects': conflict over changed over new; "same" when all are.
std::string BatchStatus(const KeptBatch& batch) {
  bool conflict = false, changed = false, fresh = false;
  for (const KeptObject& o : batch.objects) {
    conflict |= o.status == "conflict";
    changed |= o.status == "changed";
    fresh |= o.status == "new";
  }
  return conflict ? "conflict" : changed ? "changed" : fresh ? "new" : "same";
}

// Appends `text` as a JSON string. The bundle's strings were parsed as JSON, so they are valid
// UTF-8: only quotes, backslashes and control characters need escaping.
void AppendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

// Appends the JSON of BatchJson(objects, batch, status, state, /*fields=*/false).
void AppendBatchText(std::string& out, const std::vector<SyncObject>& objects,
                     const KeptBatch& batch, const std::string& status, const std::string& state) {
  const auto [rk, rid] = SplitBatch(batch.id);
  out += "{\"id\":";
  AppendJsonString(out, batch.id);
  out += ",\"objects\":[";
  for (size_t i = 0; i < batch.objects.size(); ++i) {
    const KeptObject& k = batch.objects[i];
    const SyncObject& o = objects[k.index];
    if (i > 0) out += ',';
    out += "{\"id\":";
    AppendJsonString(out, o.id);
    out += ",\"kind\":";
    AppendJsonString(out, o.kind);
    out += ",\"status\":";
    AppendJsonString(out, k.status);
    out += '}';
  }
  out += "],\"root\":{\"id\":";
  AppendJsonString(out, rid);
  out += ",\"kind\":";
  AppendJsonString(out, rk);
  out += "},\"state\":";
  AppendJsonString(out, state);
  out += ",\"status\":";
  AppendJsonString(out, status);
  out += '}';
}

json BatchJson(const std::vector<SyncObject>& objects, const KeptBatch& batch,
               const std::string& status, const std::string& state, bool fields) {
  const auto [rk, rid] = SplitBatch(batch.id);
  json list = json::array();
  for (const KeptObject& k : batch.objects) {
    const SyncObject& o = objects[k.index];
    json one = {{"kind", o.kind}, {"id", o.id}, {"status", k.status}};
    if (fields) {
      one["version"] = o.version;
      one["hash"] = o.hash;
      one["incoming"] = o.fields;
      one["local"] = k.local;
    }
    list.push_back(std::move(one));
  }
  return {{"id", batch.id},
          {"root", {{"kind", rk}, {"id", rid}}},
          {"status", status},
          {"state", state},
          {"objects", std::move(list)}};
}

}  // namespace

std::string SyncObjectHash(const json& fields, const std::optional<std::string>& blob) {
  return Sha256Hex(fields.dump() + blob.value_or(""));
}

// A loaded bundle waiting for decisions. Guarded by SyncService::mu_.
struct SyncService::Import {
  std::string id;
  store::SyncPeer peer;
  sync::BundleHeader header;
  std::vector<SyncObject> objects;
  std::map<std::string, std::string> staged;  // blob sha256 -> staging file
  std::map<std::string, int64_t> sizes;       // blob sha256 -> its size
  std::map<std::string, std::string> state;   // batch -> applied | ignored | denied
  bool applied_once = false;
  // The diff's statuses (DiffLocked), current while the change log's head is `diff_head`.
  std::vector<KeptBatch> batches;
  std::map<std::string, size_t> batch_index;  // batch id -> its place in `batches`
  int64_t diff_head = -1;                     // -1: not computed yet
  int64_t loaded_at = 0;                      // seconds
  // What the peer says it holds from us: replaces what we believed at the first apply, not at
  // load (loading changes nothing).
  std::vector<store::SyncObjectState> inventory;
  ~Import() {
    for (const auto& [sha, path] : staged) std::remove(path.c_str());
  }
};

SyncImportSink::SyncImportSink(SyncService& service, Principal caller)
    : service_(service), caller_(std::move(caller)) {
  verifier_ = std::make_unique<sync::BundleVerifier>(
      [this](const sync::BundleHeader& h) { return service_.CheckHeader(h); },
      [this]() { return service_.StagingPath(); }, kMaxObjectsBytes);
}

Result<std::string> SyncImportSink::Finish() {
  ASSIGN_OR_RETURN(sync::VerifiedBundle bundle, verifier_->Finish());
  return service_.Load(caller_, std::move(bundle));
}

SyncService::SyncService(store::Store& store, blob::BlobStore& blobs,
                         const SettingsService& settings, CodeService& code, const Clock& clock,
                         SyncOptions options)
    : store_(store),
      blobs_(blobs),
      settings_(settings),
      code_(code),
      clock_(clock),
      options_(std::move(options)) {}

SyncService::~SyncService() = default;

std::string SyncService::side() const {
  return settings_.Get().server_side_type == "low" ? "low" : "high";
}

std::string SyncService::StagingPath() {
  if (options_.staging_dir.empty()) return blobs_.ScratchPath();
  return options_.staging_dir + "/sync-" + NewUuid();
}

Result<json> SyncService::Identity(const Principal& caller) const {
  RETURN_IF_ERROR(NeedAdmin(caller));
  const store::Identity& id = settings_.identity();
  return json{{"name", settings_.Get().name},
              {"verify_key", HexEncode(id.verify_key)},
              {"server_id", id.server_id},
              {"side", side()}};
}

Result<std::vector<store::SyncPeer>> SyncService::ListPeers(const Principal& caller) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  return store_.ListSyncPeers();
}

Result<store::SyncPeer> SyncService::AddPeer(const Principal& caller, const std::string& name,
                                             const std::string& verify_key) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  if (!IsPeerName(name)) {
    return InvalidArgumentError("'name': 1 to 64 letters, digits, '-', '_' or '.'");
  }
  if (!IsHexKey(verify_key)) {
    return InvalidArgumentError("'verify_key': 64 lowercase hex digits (an ed25519 public key)");
  }
  if (verify_key == HexEncode(settings_.identity().verify_key)) {
    return InvalidArgumentError("'verify_key' is this server's own key");
  }
  store::SyncPeer peer{name, verify_key, "", clock_.NowSeconds()};
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    Status st = tx.InsertSyncPeer(peer);
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("a peer has this name or key (or the key was revoked)");
    }
    RETURN_IF_ERROR(st);
    return tx.AppendAudit({clock_.NowSeconds(), caller.AuditName(), "sync.peer_add", "peer:" + name,
                           "verify_key " + verify_key});
  }));
  return store_.GetSyncPeer(name);
}

Result<store::SyncPeer> SyncService::RotatePeer(const Principal& caller, const std::string& name,
                                                const std::string& verify_key) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  if (!IsHexKey(verify_key)) {
    return InvalidArgumentError("'verify_key': 64 lowercase hex digits (an ed25519 public key)");
  }
  // Its loaded imports go first: taking mu_ after the change would invert the order in which
  // Diff/Batch/Apply take mu_ and the store, for a request holding the store (RunIdempotent). An
  // import loaded meanwhile never applies anyway (CheckApplyAllowed reads the peer's key).
  DropImportsOfPeer(name);
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    Status st = tx.RotateSyncPeerKey(name, verify_key, clock_.NowSeconds());
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("a peer has this key, or it was revoked");
    }
    RETURN_IF_ERROR(st);
    return tx.AppendAudit({clock_.NowSeconds(), caller.AuditName(), "sync.peer_rotate",
                           "peer:" + name, "verify_key " + verify_key});
  }));
  return store_.GetSyncPeer(name);
}

Status SyncService::RevokePeer(const Principal& caller, const std::string& name) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  DropImportsOfPeer(name);  // first, as in RotatePeer
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.RevokeSyncPeer(name, clock_.NowSeconds()));
    return tx.AppendAudit(
        {clock_.NowSeconds(), caller.AuditName(), "sync.peer_revoke", "peer:" + name, ""});
  }));
  return Status::Ok();
}

Result<std::vector<std::pair<std::string, std::string>>> SyncService::Ignored(
    const Principal& caller) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  return store_.ListSyncIgnored();
}

Status SyncService::Unignore(const Principal& caller, const std::string& peer,
                             const std::string& batch) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  return store_.SetSyncIgnored(peer, batch, false);
}

// ---- Projections: every object as its side sends it. -------------------------------------------

Result<std::vector<SyncObject>> SyncService::Project(const std::string& kind,
                                                     const std::string& peer_key) {
  std::vector<SyncObject> out;
  if (kind == "user" || kind == "code" || kind == "request") {
    // Low -> high: the data scientists, their code and requests.
    ASSIGN_OR_RETURN(store::RequestPage requests,
                     store_.ListRequests(std::nullopt, std::nullopt, std::nullopt, 0, kAll));
    std::map<std::string, std::string> root_of_code, root_of_user;
    for (const store::CodeRequest& r : requests.items) {
      root_of_code[r.code_id] = "request:" + r.id;
      root_of_user.emplace(r.user_id, "request:" + r.id);
    }
    if (kind == "request") {
      for (const store::CodeRequest& r : requests.items) {
        out.push_back(MakeObject("request", r.id, "request:" + r.id,
                                 {{"id", r.id},
                                  {"code_id", r.code_id},
                                  {"user_id", r.user_id},
                                  {"reason", r.reason},
                                  {"created_at", r.created_at},
                                  {"project_id", OptionalText(r.project_id)}}));
      }
      return out;
    }
    if (kind == "code") {
      ASSIGN_OR_RETURN(store::CodePage code, store_.ListCode(std::nullopt, std::nullopt, 0, kAll,
                                                             std::numeric_limits<int64_t>::max()));
      for (const store::UserCode& c : code.items) {
        auto root = root_of_code.find(c.id);
        out.push_back(MakeObject(
            "code", c.id, root != root_of_code.end() ? root->second : "user:" + c.user_id,
            {{"id", c.id},
             {"user_id", c.user_id},
             {"name", c.name},
             {"version", c.version},
             {"source", c.source},
             {"code_hash", c.code_hash},
             {"inputs", ParseOr(c.inputs, json::object())},
             {"output_policy", c.output_policy},
             {"output_limit", c.output_limit},
             {"created_at", c.created_at},
             {"policy_spec", c.policy_spec.empty() ? json(nullptr) : json(c.policy_spec)}}));
      }
      return out;
    }
    ASSIGN_OR_RETURN(store::UserPage users, store_.ListUsers("", 0, kAll));
    for (const store::User& u : users.items) {
      // Only data scientists leave a low side: never an owner, an admin or the root account.
      if (u.is_root || auth::RoleFromInt(u.role) != auth::Role::kDataScientist) continue;
      auto root = root_of_user.find(u.id);
      out.push_back(MakeObject("user", u.id,
                               root != root_of_user.end() ? root->second : "user:" + u.id,
                               {{"id", u.id},
                                {"email", u.email},
                                {"name", u.name},
                                {"institution", u.institution},
                                {"website", u.website},
                                {"created_at", u.created_at}}));
    }
    return out;
  }
  if (kind == "project") {
    ASSIGN_OR_RETURN(store::ProjectPage projects,
                     store_.ListProjects(std::nullopt, std::nullopt, 0, kAll));
    // A project travels with its data scientists: one an owner or admin made stays here, as they
    // do.
    ASSIGN_OR_RETURN(store::UserPage users, store_.ListUsers("", 0, kAll));
    std::set<std::string> scientists;
    for (const store::User& u : users.items) {
      if (!u.is_root && auth::RoleFromInt(u.role) == auth::Role::kDataScientist)
        scientists.insert(u.id);
    }
    for (const store::Project& p : projects.items) {
      if (!scientists.count(p.created_by)) continue;
      json members = json::array();
      for (const store::ProjectMember& m : p.members) members.push_back(m.user_id);
      ASSIGN_OR_RETURN(std::vector<store::ProjectEvent> events,
                       store_.ProjectEvents(p.id, 0, kAll));
      json evs = json::array();
      for (const store::ProjectEvent& e : events) {
        // Decisions are the high side's own events: they never travel back as project events.
        if (e.kind == "decision") continue;
        evs.push_back({{"id", e.id},
                       {"kind", e.kind},
                       {"actor_id", e.actor_id},
                       {"request_id", OptionalText(e.request_id)},
                       {"text", e.text},
                       {"at", e.at}});
      }
      out.push_back(MakeObject("project", p.id, "project:" + p.id,
                               {{"id", p.id},
                                {"name", p.name},
                                {"description", p.description},
                                {"created_by", p.created_by},
                                {"created_at", p.created_at},
                                {"members", members},
                                {"events", evs}}));
    }
    return out;
  }
  if (kind == "dataset" || kind == "asset") {
    ASSIGN_OR_RETURN(store::DatasetPage page, store_.ListDatasets("", 0, kAll, nullptr));
    for (const store::Dataset& d : page.items) {
      if (kind == "dataset") {
        json contributors = json::array();
        for (const store::Contributor& c : d.contributors) {
          contributors.push_back({{"name", c.name},
                                  {"email", c.email},
                                  {"role", c.role},
                                  {"phone", c.phone},
                                  {"note", c.note}});
        }
        out.push_back(MakeObject("dataset", d.id, "dataset:" + d.id,
                                 {{"id", d.id},
                                  {"name", d.name},
                                  {"summary", d.summary},
                                  {"description", d.description},
                                  {"citation", d.citation},
                                  {"url", d.url},
                                  {"contributors", contributors},
                                  {"created_at", d.created_at},
                                  {"updated_at", d.updated_at},
                                  {"deleted_at", nullptr}}));
        continue;
      }
      int64_t position = 0;
      for (const store::Asset& a : d.assets) {
        json mock = nullptr;
        std::optional<std::string> blob;
        std::function<Result<std::unique_ptr<blob::BlobReader>>()> open;
        int64_t size = 0;
        // Never the private blob. A mock flagged as possibly revealing private data (made before
        // schema version 5) stays behind too, until it is regenerated.
        if (a.mock_blob && !a.mock_needs_regeneration) {
          const store::Blob& m = *a.mock_blob;
          mock = {{"sha256", m.sha256},
                  {"size", m.size},
                  {"format", m.format},
                  {"schema", ParseOr(m.schema, json(m.schema))},
                  {"meta", m.meta.empty() ? json(nullptr) : ParseOr(m.meta, json(m.meta))}};
          blob = m.sha256;
          // The store outlives every response (the HTTP server stops first).
          open = [&blobs = blobs_, id = m.id] { return blobs.Open(id); };
          size = m.size;
        }
        SyncObject o = MakeObject("asset", a.id, "dataset:" + d.id,
                                  {{"id", a.id},
                                   {"dataset_id", d.id},
                                   {"position", position++},
                                   {"name", a.name},
                                   {"description", a.description},
                                   {"format", a.format},
                                   {"metadata", ParseOr(a.metadata, json::object())},
                                   {"mock", mock}},
                                  blob);
        if (blob) o.blob_name = "mock blob " + a.mock_blob->id;
        o.blob_open = std::move(open);
        o.blob_size = size;
        out.push_back(std::move(o));
      }
    }
    if (kind == "dataset") {
      // A deleted dataset is its id and when it went: a peer holding it deletes its copy (Export
      // sends it only to a peer that holds it).
      ASSIGN_OR_RETURN(auto deleted, store_.ListDeletedDatasets());
      for (const auto& [id, at] : deleted) {
        out.push_back(MakeObject("dataset", id, "dataset:" + id, {{"id", id}, {"deleted_at", at}}));
      }
    }
    return out;
  }
  if (kind == "decision" || kind == "job") {
    // High -> low: only about the requests this peer sent (those this server received from it).
    std::set<std::string> received;
    ASSIGN_OR_RETURN(store::SyncPeer peer, store_.FindSyncPeerByKey(peer_key));
    ASSIGN_OR_RETURN(auto exchanged,
                     store_.ListSyncObjects(store::SyncLedger::kExchanged, peer.name));
    for (const store::SyncObjectState& s : exchanged) {
      if (s.kind == "request") received.insert(s.object_id);
    }
    for (const std::string& rid : received) {
      auto r = store_.GetRequest(rid);
      if (!r.ok()) continue;
      if (kind == "decision") {
        if (r->status == "pending") continue;
        ASSIGN_OR_RETURN(std::vector<store::RequestDecision> history, store_.RequestHistory(rid));
        json hist = json::array();
        int64_t decided_at = 0;
        for (const store::RequestDecision& d : history) {
          hist.push_back({{"status", d.status}, {"reason", OptionalText(d.reason)}, {"at", d.at}});
          decided_at = d.at;
        }
        out.push_back(MakeObject("decision", rid, "request:" + rid,
                                 {{"request_id", rid},
                                  {"status", r->status},
                                  {"deny_reason", OptionalText(r->deny_reason)},
                                  {"decided_at", decided_at},
                                  {"history", hist}}));
        continue;
      }
      if (r->status != "approved") continue;
      // The jobs as the requester sees them through the API: the code service decides.
      Principal requester;
      requester.role = auth::Role::kDataScientist;
      requester.user_id = r->user_id;
      store::JobFilter filter;
      filter.code_id = r->code_id;
      filter.include_review = false;
      filter.limit = kAll;
      ASSIGN_OR_RETURN(store::JobPage jobs, store_.ListJobs(filter));
      for (const store::Job& listed : jobs.items) {
        if (listed.kind != "private" || !jobs::IsFinal(listed.status)) continue;
        auto seen = code_.GetJob(requester, listed.id);
        if (!seen.ok()) continue;
        const store::Job& j = *seen;
        // A run held for output review stays behind whole until a data owner releases it.
        if (!code_.MaySeeResult(requester, j)) continue;
        const bool detail = !j.error_detail.empty() && code_.MaySeeErrorDetail(requester, j);
        json fields = {{"id", j.id},
                       {"code_id", j.code_id},
                       {"user_id", j.user_id},
                       {"request_id", rid},
                       {"status", j.status},
                       {"error", detail ? j.error_detail : j.error},
                       {"failure", j.failure},
                       {"created_at", j.created_at},
                       {"started_at", j.started_at},
                       {"finished_at", j.finished_at},
                       {"stdout", nullptr},
                       {"result", nullptr}};
        if (code_.MaySeeStdout(requester, j)) {
          ASSIGN_OR_RETURN(JobLogs logs, code_.Logs(requester, j.id));
          if (logs.stdout_text) fields["stdout"] = *logs.stdout_text;
        }
        std::optional<std::string> blob;
        std::function<Result<std::unique_ptr<blob::BlobReader>>()> open;
        std::string name;
        int64_t size = 0;
        if (j.status == "completed") {
          auto file = code_.JobResult(requester, j.id);
          if (file.ok()) {
            std::string sha;
            if (file->bytes) {
              // A small result lives in the database: staged to a scratch file for the bundle.
              const std::string path = StagingPath();
              std::ofstream f(path, std::ios::binary | std::ios::trunc);
              f.write(file->bytes->data(), static_cast<std::streamsize>(file->bytes->size()));
              f.close();
              if (!f) return InternalError("cannot stage a job result for export");
              sha = Sha256Hex(*file->bytes);
              size = static_cast<int64_t>(file->bytes->size());
              open = [path] { return blob::OpenFileReader(path); };
              name = path;
            } else {
              // Read once here for its SHA-256, then again into the bundle.
              ASSIGN_OR_RETURN(std::tie(sha, size), blob::Sha256Of(*file->reader));
              open = [&code = code_, j]() -> Result<std::unique_ptr<blob::BlobReader>> {
                return code.OpenResult(j);
              };
              name = "the result of job " + j.id;
            }
            fields["result"] = {
                {"format", file->format},
                {"size", size},
                {"meta", j.result_meta.empty() ? json(nullptr) : ParseOr(j.result_meta, json())},
                {"sha256", sha}};
            blob = sha;
          }
        }
        SyncObject o = MakeObject("job", j.id, "request:" + rid, std::move(fields), blob);
        o.blob_open = std::move(open);
        o.blob_name = std::move(name);
        o.blob_size = size;
        out.push_back(std::move(o));
      }
    }
    return out;
  }
  return InvalidArgumentError("unknown kind " + kind);
}

Result<std::optional<SyncObject>> SyncService::ProjectOne(const std::string& kind,
                                                          const std::string& id) {
  // Received kinds are few per bundle: projecting the local ones of a kind by id is enough.
  std::vector<SyncObject> all;
  if (kind == "decision" || kind == "job") {
    // What a low side holds of them: the decision on its request, its synced jobs.
    if (kind == "decision") {
      auto r = store_.GetRequest(id);
      if (!r.ok() || r->status == "pending") return std::optional<SyncObject>();
      ASSIGN_OR_RETURN(std::vector<store::RequestDecision> history, store_.RequestHistory(id));
      json hist = json::array();
      int64_t decided_at = 0;
      for (const store::RequestDecision& d : history) {
        hist.push_back({{"status", d.status}, {"reason", OptionalText(d.reason)}, {"at", d.at}});
        decided_at = d.at;
      }
      return std::optional<SyncObject>(MakeObject("decision", id, "request:" + id,
                                                  {{"request_id", id},
                                                   {"status", r->status},
                                                   {"deny_reason", OptionalText(r->deny_reason)},
                                                   {"decided_at", decided_at},
                                                   {"history", hist}}));
    }
    // A synced job has no projection here: DiffLocked compares it by what was exchanged.
    return std::optional<SyncObject>();
  }
  ASSIGN_OR_RETURN(all, Project(kind, ""));
  for (SyncObject& o : all) {
    if (o.id == id) return std::optional<SyncObject>(std::move(o));
  }
  return std::optional<SyncObject>();
}

// ---- Export.
// --------------------------------------------------------------------------------------

Result<SyncExport> SyncService::Export(const Principal& caller, const std::string& peer_name) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  ASSIGN_OR_RETURN(store::SyncPeer peer, store_.GetSyncPeer(peer_name));
  if (peer.revoked_at != 0) return FailedPreconditionError("the peer is revoked");
  const std::string my_side = side();
  ASSIGN_OR_RETURN(auto inventory,
                   store_.ListSyncObjects(store::SyncLedger::kInventory, peer.name));
  std::map<std::pair<std::string, std::string>, std::string> held;
  for (const store::SyncObjectState& s : inventory) held[{s.kind, s.object_id}] = s.hash;

  std::set<std::string> sent_datasets;
  {
    ASSIGN_OR_RETURN(auto sent, store_.ListSyncObjects(store::SyncLedger::kExchanged, peer.name));
    for (const store::SyncObjectState& s : sent) {
      if (s.kind == "dataset") sent_datasets.insert(s.object_id);
    }
  }
  std::vector<SyncObject> objects;
  for (const std::string& kind : KindsSentBy(my_side)) {
    ASSIGN_OR_RETURN(std::vector<SyncObject> all, Project(kind, peer.verify_key));
    for (SyncObject& o : all) {
      auto it = held.find({o.kind, o.id});
      if (it != held.end() && it->second == o.hash) continue;
      // A deletion goes only to a peer that was sent the dataset.
      if (IsDeletion(o) && it == held.end() && !sent_datasets.count(o.id)) continue;
      ASSIGN_OR_RETURN(std::optional<store::ChangeInfo> change, store_.LatestChange(o.kind, o.id));
      // Echo guard: what this peer itself wrote here never goes back to it.
      if (change && change->origin == peer.verify_key) continue;
      o.version = change ? change->seq : 0;
      objects.push_back(std::move(o));
    }
  }
  // Parents before children, so that an apply can write them in order.
  static const std::map<std::string, int> kOrder = {{"user", 0},     {"code", 1},    {"request", 2},
                                                    {"project", 3},  {"dataset", 0}, {"asset", 1},
                                                    {"decision", 2}, {"job", 3}};
  std::stable_sort(objects.begin(), objects.end(), [](const SyncObject& a, const SyncObject& b) {
    return kOrder.at(a.kind) < kOrder.at(b.kind);
  });

  json objs = json::array();
  std::vector<sync::OutgoingBlob> blobs;
  std::set<std::string> blob_seen;
  for (const SyncObject& o : objects) {
    objs.push_back(ObjectJson(o));
    if (o.blob && blob_seen.insert(*o.blob).second) {
      blobs.push_back({o.blob_open, o.blob_size, *o.blob, o.blob_name});
    }
  }
  // What we hold that we received from this peer: the kinds its side sends.
  json inv = json::array();
  ASSIGN_OR_RETURN(auto exchanged,
                   store_.ListSyncObjects(store::SyncLedger::kExchanged, peer.name));
  for (const store::SyncObjectState& s : exchanged) {
    if (KindsSentBy(OtherSide(my_side)).count(s.kind)) {
      inv.push_back({{"kind", s.kind}, {"id", s.object_id}, {"hash", s.hash}});
    }
  }
  json doc = {
      {"objects", std::move(objs)}, {"deleted", json::array()}, {"inventory", std::move(inv)}};

  sync::BundleHeader header;
  header.source.name = settings_.Get().name;
  header.source.verify_key = HexEncode(settings_.identity().verify_key);
  header.source.server_id = settings_.identity().server_id;
  header.source.side = my_side;
  header.destination_verify_key = peer.verify_key;
  header.seq = std::max(peer.last_sent_seq, peer.peer_seq_seen) + 1;
  header.peer_seq_seen = peer.last_applied_seq;
  header.created_at = clock_.NowMillis();
  ASSIGN_OR_RETURN(std::unique_ptr<sync::BundleSource> source,
                   sync::BundleSource::Create(header, doc.dump(), std::move(blobs),
                                              settings_.identity().signing_key));
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    store::SyncPeer moved = peer;
    moved.last_sent_seq = header.seq;
    RETURN_IF_ERROR(tx.UpdateSyncPeerState(moved));
    for (const SyncObject& o : objects) {
      RETURN_IF_ERROR(
          tx.PutSyncObject(store::SyncLedger::kExchanged, peer.name, {o.kind, o.id, o.hash}));
    }
    return tx.AppendAudit(
        {clock_.NowSeconds(), caller.AuditName(), "sync.export", "peer:" + peer.name,
         "seq " + std::to_string(header.seq) + ", " + std::to_string(objects.size()) + " objects"});
  }));
  return SyncExport{std::move(source), header.seq};
}

// ---- Load.
// ----------------------------------------------------------------------------------------

Result<std::unique_ptr<SyncImportSink>> SyncService::BeginImport(const Principal& caller) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  return std::unique_ptr<SyncImportSink>(new SyncImportSink(*this, caller));
}

Status SyncService::CheckHeader(const sync::BundleHeader& h) {
  if (h.seq < 1 || h.seq > kMaxSeq || h.peer_seq_seen < 0 || h.peer_seq_seen > kMaxSeq) {
    return sync::Refuse(sync::Refusal::kTampered, "its sequence numbers are out of range");
  }
  if (h.destination_verify_key != HexEncode(settings_.identity().verify_key)) {
    return sync::Refuse(sync::Refusal::kWrongDestination,
                        "it is meant for another server (" + h.destination_verify_key + ")");
  }
  auto peer = store_.FindSyncPeerByKey(h.source.verify_key);
  if (!peer.ok()) {
    if (peer.status().code() != StatusCode::kNotFound) return peer.status();
    ASSIGN_OR_RETURN(bool revoked, store_.IsRevokedSyncKey(h.source.verify_key));
    if (revoked) return sync::Refuse(sync::Refusal::kRevokedKey, "its signing key was revoked");
    return sync::Refuse(sync::Refusal::kUnknownKey,
                        "no registered peer has the key " + h.source.verify_key);
  }
  if (peer->revoked_at != 0) {
    return sync::Refuse(sync::Refusal::kRevokedKey, "the peer '" + peer->name + "' is revoked");
  }
  if (h.source.side == side()) {
    return sync::Refuse(sync::Refusal::kOutOfSequence,
                        "it comes from a " + h.source.side + " side, as this server is");
  }
  // No kind a high side takes carries a blob: refused here, before a byte of one is written.
  if (side() == "high" && !h.blobs.empty()) {
    return sync::Refuse(sync::Refusal::kKindNotAllowed,
                        "a bundle for a high side carries no blob, and this one lists " +
                            std::to_string(h.blobs.size()));
  }
  RETURN_IF_ERROR(CheckRoomForBlobs(h));
  if (h.seq == peer->last_applied_seq) {
    return sync::Refuse(sync::Refusal::kReplayed,
                        "bundle " + std::to_string(h.seq) + " was applied already");
  }
  if (h.seq < peer->last_applied_seq) {
    return sync::Refuse(sync::Refusal::kOutOfSequence,
                        "bundle " + std::to_string(h.seq) + " is older than bundle " +
                            std::to_string(peer->last_applied_seq) + ", applied already");
  }
  return Status::Ok();
}

Result<std::string> SyncService::Load(const Principal& caller, sync::VerifiedBundle bundle) {
  auto import = std::make_unique<Import>();
  for (const sync::StagedBlob& b : bundle.blobs) {
    import->staged[b.sha256] = b.path;
    import->sizes[b.sha256] = b.size;
  }
  import->id = NewUuid();
  import->header = bundle.header;
  // From here on the import owns the staging files (they go with it).
  import->loaded_at = clock_.NowSeconds();
  ASSIGN_OR_RETURN(import->peer, store_.FindSyncPeerByKey(bundle.header.source.verify_key));
  ASSIGN_OR_RETURN(json doc, ParseObjectsSection(bundle.objects_json));
  if (!doc.is_object() || !doc.contains("objects") || !doc["objects"].is_array()) {
    return sync::Refuse(sync::Refusal::kTampered, "its objects are not the expected JSON");
  }
  const std::set<std::string>& allowed = KindsSentBy(OtherSide(side()));
  for (json& o : doc["objects"]) {
    if (!o.is_object() || !o.contains("kind") || !o["kind"].is_string() || !o.contains("id") ||
        !o["id"].is_string() || !o.contains("fields") || !o["fields"].is_object() ||
        !o.contains("root") || !o["root"].is_string() || !o.contains("hash") ||
        !o["hash"].is_string()) {
      return sync::Refuse(sync::Refusal::kTampered, "an object is malformed");
    }
    const std::string kind = o["kind"];
    if (!allowed.count(kind)) {
      return sync::Refuse(sync::Refusal::kKindNotAllowed,
                          "a " + side() + " side does not take '" + kind.substr(0, 40) + "'");
    }
    SyncObject so;
    so.kind = kind;
    so.id = o["id"];
    so.root = o["root"];
    so.hash = o["hash"];
    so.fields = std::move(o["fields"]);  // moved, not copied: the document goes after the loop
    so.version = o.value("version", int64_t{0});
    if (o.contains("blob") && o["blob"].is_string()) so.blob = o["blob"].get<std::string>();
    if (SyncObjectHash(so.fields, so.blob) != so.hash) {
      return sync::Refuse(sync::Refusal::kTampered, "an object's hash does not match its fields");
    }
    // Only a mock (an asset's) and a result (a job's) travel as blobs; a blob on any other kind
    // would only be staged, filling the disk until the import goes.
    if (so.blob && so.kind != "asset" && so.kind != "job") {
      return sync::Refuse(sync::Refusal::kTampered, "a " + so.kind + " carries a blob");
    }
    if (so.blob && !import->staged.count(*so.blob)) {
      return sync::Refuse(sync::Refusal::kTampered, "an object names a blob the bundle lacks");
    }
    const auto [root_kind, root_id] = SplitBatch(so.root);
    if (root_id.empty() || (root_kind != "request" && root_kind != "dataset" &&
                            root_kind != "user" && root_kind != "project")) {
      return sync::Refuse(sync::Refusal::kTampered, "an object's batch is malformed");
    }
    import->objects.push_back(std::move(so));
  }
  RETURN_IF_ERROR(CheckBatchShapes(import->objects, import->peer.name));
  RETURN_IF_ERROR(CheckBlobsUsed(*import));
  // What the peer says it holds from us replaces what we believed, once an apply takes it.
  if (doc.contains("inventory") && doc["inventory"].is_array()) {
    for (const json& i : doc["inventory"]) {
      if (!i.is_object()) continue;
      import->inventory.push_back({Text(i, "kind"), Text(i, "id"), Text(i, "hash")});
    }
  }
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.PutSyncImport(
        {import->id, import->peer.name, bundle.header.seq, clock_.NowSeconds(), "pending"}));
    return tx.AppendAudit({clock_.NowSeconds(), caller.AuditName(), "sync.load",
                           "peer:" + import->peer.name,
                           "import " + import->id + ", seq " + std::to_string(bundle.header.seq) +
                               ", " + std::to_string(import->objects.size()) + " objects"});
  }));
  std::lock_guard lock(mu_);
  PruneImportsLocked(/*room_for_one=*/true);
  Import& ref = *import;
  imports_[import->id] = std::move(import);
  return RenderDiffTextLocked(ref);
}

// ---- Checks of a load and of an apply.
// ----------------------------------------------------------------

Status SyncService::CheckBlobsUsed(const Import& im) {
  // No kind a high side takes has blobs: a blob no object names would only fill the disk.
  std::set<std::string> used;
  for (const SyncObject& o : im.objects) {
    if (o.blob) used.insert(*o.blob);
  }
  for (const auto& [sha, path] : im.staged) {
    if (!used.count(sha)) {
      return sync::Refuse(sync::Refusal::kTampered, "it carries a blob no object uses");
    }
  }
  return Status::Ok();
}

Status SyncService::CheckRoomForBlobs(const sync::BundleHeader& h) {
  if (!options_.storage) return Status::Ok();
  int64_t bytes = 0;  // each size is at most 2^42 and a header lists far fewer than 2^20 blobs
  for (const sync::BundleBlob& b : h.blobs) bytes += b.size;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, im] : imports_) {
      for (const auto& [sha, size] : im->sizes) bytes += size;
    }
  }
  if (options_.storage->used() + bytes > options_.storage->limit()) {
    return ResourceExhaustedError(
        "the bundle's blobs, with those of pending imports, would pass "
        "the storage limit of " +
        std::to_string(options_.storage->limit()) + " bytes");
  }
  return Status::Ok();
}

void SyncService::PruneImportsLocked(bool room_for_one) {
  const int64_t now = clock_.NowSeconds();
  for (auto it = imports_.begin(); it != imports_.end();) {
    if (now - it->second->loaded_at > kPendingImportSeconds) {
      it = imports_.erase(it);
    } else {
      ++it;
    }
  }
  const size_t keep = room_for_one ? kMaxPendingImports - 1 : kMaxPendingImports;
  while (imports_.size() > keep) {
    auto oldest = std::min_element(
        imports_.begin(), imports_.end(),
        [](const auto& a, const auto& b) { return a.second->loaded_at < b.second->loaded_at; });
    imports_.erase(oldest);
  }
}

void SyncService::DropImportsOfPeer(const std::string& peer) {
  std::lock_guard lock(mu_);
  for (auto it = imports_.begin(); it != imports_.end();) {
    if (it->second->peer.name == peer) {
      it = imports_.erase(it);
    } else {
      ++it;
    }
  }
}

Status SyncService::CheckApplyAllowed(store::Store& tx, const Import& im) {
  ASSIGN_OR_RETURN(store::SyncPeer peer, tx.GetSyncPeer(im.peer.name));
  if (peer.revoked_at != 0 || peer.verify_key != im.peer.verify_key) {
    return sync::Refuse(sync::Refusal::kRevokedKey,
                        "the key that signed it was revoked or rotated since it was loaded");
  }
  if (im.header.seq < peer.last_applied_seq) {
    return sync::Refuse(sync::Refusal::kOutOfSequence,
                        "bundle " + std::to_string(im.header.seq) + " is older than bundle " +
                            std::to_string(peer.last_applied_seq) +
                            ", applied since it was loaded: export again from the peer");
  }
  if (!im.applied_once && im.header.seq == peer.last_applied_seq) {
    return sync::Refuse(sync::Refusal::kReplayed, "a bundle as new was applied meanwhile");
  }
  return Status::Ok();
}

Status SyncService::RecordFirstApply(store::Store& tx, Import& im) {
  ASSIGN_OR_RETURN(store::SyncPeer peer, tx.GetSyncPeer(im.peer.name));
  peer.last_applied_seq = im.header.seq;
  peer.side = im.header.source.side;
  peer.peer_seq_seen = std::max(peer.peer_seq_seen, im.header.peer_seq_seen);
  RETURN_IF_ERROR(tx.UpdateSyncPeerState(peer));
  return tx.ReplaceSyncInventory(im.peer.name, im.inventory);
}

Status SyncService::CheckBatchShapes(const std::vector<SyncObject>& objects,
                                     const std::string& peer) {
  std::map<std::string, std::pair<std::string, std::string>> requests;  // id -> (user, code)
  std::set<std::pair<std::string, std::string>> seen;
  for (const SyncObject& o : objects) {
    // One copy of each object: two (a benign and a hostile source for one code) would show the
    // owner both and write one.
    if (!seen.insert({o.kind, o.id}).second) {
      return sync::Refuse(sync::Refusal::kTampered,
                          o.kind + " " + o.id.substr(0, 64) + " is in the bundle twice");
    }
    if (o.kind == "request") {
      requests.emplace(o.id, std::make_pair(Text(o.fields, "user_id"), Text(o.fields, "code_id")));
    }
  }
  // A requester changed after their request went over travels in its batch without it: that
  // request is then one received from this peer before (read once, when first needed).
  std::optional<std::set<std::pair<std::string, std::string>>> ledger;
  auto earlier =
      [&](const std::string& id) -> Result<std::optional<std::pair<std::string, std::string>>> {
    if (!ledger) {
      ASSIGN_OR_RETURN(auto exchanged, store_.ListSyncObjects(store::SyncLedger::kExchanged, peer));
      ledger.emplace();
      for (const store::SyncObjectState& s : exchanged) ledger->insert({s.kind, s.object_id});
    }
    if (!ledger->count({"request", id}))
      return std::optional<std::pair<std::string, std::string>>();
    auto r = store_.GetRequest(id);
    if (!r.ok()) return std::optional<std::pair<std::string, std::string>>();
    return std::optional<std::pair<std::string, std::string>>(
        std::make_pair(r->user_id, r->code_id));
  };
  for (const SyncObject& o : objects) {
    const auto [root_kind, root_id] = SplitBatch(o.root);
    bool fits = false;
    if (o.kind == "request" || o.kind == "decision") {
      fits = root_kind == "request" && root_id == o.id;
    } else if (o.kind == "job") {
      fits = root_kind == "request" && root_id == Text(o.fields, "request_id");
    } else if (o.kind == "project" || o.kind == "dataset") {
      fits = root_kind == o.kind && root_id == o.id;
    } else if (o.kind == "asset") {
      fits = root_kind == "dataset" && root_id == Text(o.fields, "dataset_id");
    } else if (o.kind == "user" || o.kind == "code") {
      const std::string user = o.kind == "user" ? o.id : Text(o.fields, "user_id");
      if (root_kind == "user") {
        fits = root_id == user;
      } else if (root_kind == "request") {
        std::optional<std::pair<std::string, std::string>> r;
        if (auto in_bundle = requests.find(root_id); in_bundle != requests.end()) {
          r = in_bundle->second;
        } else {
          ASSIGN_OR_RETURN(r, earlier(root_id));
        }
        fits = r && r->first == user && (o.kind == "user" || r->second == o.id);
      }
    }
    if (!fits) {
      return sync::Refuse(sync::Refusal::kTampered, o.kind + " " + o.id.substr(0, 64) +
                                                        " is in a batch its kind can't be in");
    }
  }
  return Status::Ok();
}

Status SyncService::CheckReceivedFromPeer(store::Store& tx, const Import& im, const SyncObject& o,
                                          const ObjectKeys& ledger) {
  bool here = false;
  if (o.kind == "user") {
    here = tx.GetUserById(o.id).ok();
  } else if (o.kind == "code") {
    here = tx.GetCodeAuthor(o.id).ok();
  } else if (o.kind == "request") {
    here = tx.GetRequest(o.id).ok();
  } else if (o.kind == "project") {
    here = tx.GetProject(o.id).ok();
  } else {
    return Status::Ok();  // what a low side receives is about its own requests
  }
  if (here && !ledger.count({o.kind, o.id})) {
    return PermissionDeniedError(o.kind + " " + o.id + " was not received from peer '" +
                                 im.peer.name + "': it can't change it");
  }
  return Status::Ok();
}

Result<store::UserCode> SyncService::DeriveCode(const SyncObject& o, json& policy_spec) {
  const json& f = o.fields;
  SubmitCode in;
  in.name = Text(f, "name");
  in.source = Text(f, "source");
  in.output_policy = Text(f, "output_policy");
  if (in.output_policy != "custom") in.limit = Int(f, "output_limit");
  // The bindings as the requester gave them: an asset by id or a value. Names, dataset and format
  // are this server's own, derived again; any other binding (a blob) is refused.
  in.inputs = json::object();
  if (f.contains("inputs") && !f["inputs"].is_object()) {
    return InvalidArgumentError("code " + o.id + ": 'inputs' must be an object");
  }
  if (f.contains("inputs")) {
    for (const auto& [arg, binding] : f["inputs"].items()) {
      if (binding.is_object() && binding.contains("value") && binding.size() == 1) {
        in.inputs[arg] = binding;
      } else if (binding.is_object() && binding.contains("asset_id") &&
                 !binding.contains("value") && !binding.contains("blob_id")) {
        in.inputs[arg] = {{"asset_id", binding["asset_id"]}};
      } else {
        return InvalidArgumentError("code " + o.id + ": input '" + arg.substr(0, 64) +
                                    "' binds neither an asset nor a value");
      }
    }
  }
  if (auto spec = OptText(f, "policy_spec")) {
    json code = json::parse(*spec, nullptr, false);
    if (code.is_discarded()) return InvalidArgumentError("code " + o.id + ": bad policy_spec");
    in.policy_code = std::move(code);
  }
  auto derived = code_.PrepareCode(in, policy_spec);
  if (!derived.ok()) {
    return InvalidArgumentError("code " + o.id +
                                " would be refused here: " + derived.status().message());
  }
  if (derived->code_hash != Text(f, "code_hash")) {
    return InvalidArgumentError("code " + o.id + ": its code_hash is not its source's");
  }
  return derived;
}

Result<bool> SyncService::EmailHeldByAnother(
    const SyncObject& o, std::optional<std::map<std::string, std::string>>& holders) {
  if (o.kind != "user") return false;
  auto email = NormalizeEmail(Text(o.fields, "email"));
  if (!email.ok()) return false;
  if (!holders) {
    // Every account's email, read once per diff rather than one query per incoming user.
    ASSIGN_OR_RETURN(store::UserPage users, store_.ListUsers("", 0, kAll));
    holders.emplace();
    for (const store::User& u : users.items) holders->emplace(u.email, u.id);
  }
  auto holder = holders->find(*email);
  return holder != holders->end() && holder->second != o.id;
}

// ---- Diff.
// ----------------------------------------------------------------------------------------

Status SyncService::DiffLocked(Import& im) {
  // Read first: a change logged while the statuses are computed moves the head past it, and the
  // next call computes them again.
  ASSIGN_OR_RETURN(const int64_t head, store_.ChangeLogHead());
  if (head == im.diff_head) return Status::Ok();
  ASSIGN_OR_RETURN(auto exchanged,
                   store_.ListSyncObjects(store::SyncLedger::kExchanged, im.peer.name));
  std::map<std::pair<std::string, std::string>, std::string> base;
  for (const store::SyncObjectState& s : exchanged) base[{s.kind, s.object_id}] = s.hash;
  // This side's objects of each kind, projected once per diff (kind -> id -> object): projecting
  // them per incoming object made a diff quadratic in the objects held.
  std::map<std::string, std::map<std::string, SyncObject>> projected;
  auto local_of = [&](const SyncObject& o) -> Result<std::optional<SyncObject>> {
    if (o.kind == "decision" || o.kind == "job") return ProjectOne(o.kind, o.id);
    auto kind = projected.find(o.kind);
    if (kind == projected.end()) {
      ASSIGN_OR_RETURN(std::vector<SyncObject> all, Project(o.kind, ""));
      kind = projected.emplace(o.kind, std::map<std::string, SyncObject>()).first;
      for (SyncObject& one : all) kind->second.emplace(one.id, std::move(one));
    }
    auto it = kind->second.find(o.id);
    if (it == kind->second.end()) return std::optional<SyncObject>();
    // Each incoming object is compared once: its local projection moves into the kept diff.
    return std::optional<SyncObject>(std::move(it->second));
  };
  std::vector<KeptBatch> batches;
  std::map<std::string, size_t> batch_index;
  std::optional<std::map<std::string, std::string>> email_holders;  // email -> account id
  for (size_t i = 0; i < im.objects.size(); ++i) {
    const SyncObject& o = im.objects[i];
    ASSIGN_OR_RETURN(std::optional<SyncObject> local, local_of(o));
    auto b = base.find({o.kind, o.id});
    const bool exists = local.has_value() || (o.kind == "job" && store_.GetJob(o.id).ok());
    std::optional<std::string> local_hash;
    if (exists) {
      // Last written here by a sync from this peer: unchanged since, whatever this side's own
      // projection of it says (a decision's history has this side's times, a synced job no
      // projection of its own).
      ASSIGN_OR_RETURN(std::optional<store::ChangeInfo> change, store_.LatestChange(o.kind, o.id));
      if (change && change->origin == im.peer.verify_key && b != base.end()) {
        local_hash = b->second;
      } else {
        local_hash = local ? local->hash : std::string("local");
      }
    }
    std::string status;
    if (!local_hash) {
      status = "new";
    } else if (*local_hash == o.hash) {
      status = "same";
    } else if (b != base.end() && b->second == *local_hash) {
      status = "changed";
    } else {
      status = "conflict";
    }
    if (status != "same") {
      ASSIGN_OR_RETURN(bool held, EmailHeldByAnother(o, email_holders));
      if (held) status = "conflict";
    }
    auto [at, added] = batch_index.emplace(o.root, batches.size());
    if (added) batches.push_back({o.root, {}});
    batches[at->second].objects.push_back(
        {i, std::move(status), local ? std::move(local->fields) : json(nullptr)});
  }
  im.batches = std::move(batches);
  im.batch_index = std::move(batch_index);
  im.diff_head = head;
  return Status::Ok();
}

Result<json> SyncService::WalkDiffLocked(Import& im, const SyncDiffView& view,
                                         const BatchVisitor& listed_batch) {
  RETURN_IF_ERROR(DiffLocked(im));
  ASSIGN_OR_RETURN(auto ignored_pairs, store_.ListSyncIgnored());
  std::set<std::string> ignored;
  for (const auto& [peer, batch] : ignored_pairs) {
    if (peer == im.peer.name) ignored.insert(batch);
  }
  std::map<std::string, int64_t> counts;
  int64_t objects = 0, listed = 0, ignored_count = 0;
  json ignored_list = json::array();
  for (size_t i = 0; i < im.batches.size(); ++i) {
    const KeptBatch& b = im.batches[i];
    for (const KeptObject& o : b.objects) ++counts[o.status];
    objects += static_cast<int64_t>(b.objects.size());
    if (ignored.count(b.id)) {
      ignored_list.push_back(b.id);
      ++ignored_count;
      continue;
    }
    const std::string status = BatchStatus(b);
    auto state = im.state.find(b.id);
    // Batches with nothing to change are left out, unless this import decided them.
    if (status == "same" && state == im.state.end()) continue;
    const int64_t position = listed++;
    if (position < view.offset || (view.limit >= 0 && position - view.offset >= view.limit)) {
      continue;
    }
    listed_batch(i, status, state != im.state.end() ? state->second : "pending");
  }
  json summary = {{"batches", listed},
                  {"objects", objects},
                  {"new", counts["new"]},
                  {"changed", counts["changed"]},
                  {"conflicts", counts["conflict"]},
                  {"same", counts["same"]},
                  {"deleted", 0},
                  {"ignored", ignored_count}};
  return json{{"import_id", im.id},
              {"peer", {{"name", im.peer.name}, {"verify_key", im.peer.verify_key}}},
              {"direction", side() == "high" ? "low_to_high" : "high_to_low"},
              {"seq", im.header.seq},
              {"created_at", im.header.created_at},
              {"summary", std::move(summary)},
              {"ignored", std::move(ignored_list)}};
}

Result<json> SyncService::RenderDiffLocked(Import& im, const SyncDiffView& view) {
  json list = json::array();
  ASSIGN_OR_RETURN(
      json diff,
      WalkDiffLocked(im, view, [&](size_t b, const std::string& status, const std::string& state) {
        list.push_back(BatchJson(im.objects, im.batches[b], status, state, view.fields));
      }));
  diff["batches"] = std::move(list);
  return diff;
}

Result<std::string> SyncService::RenderDiffTextLocked(Import& im) {
  // The same document as RenderDiffLocked's without fields, written out directly: a load of
  // 10,000 batches spent a fifth of its time building and freeing their JSON trees.
  std::string batches = "[";
  ASSIGN_OR_RETURN(
      json diff,
      WalkDiffLocked(im, {}, [&](size_t b, const std::string& status, const std::string& state) {
        if (batches.size() > 1) batches += ',';
        AppendBatchText(batches, im.objects, im.batches[b], status, state);
      }));
  batches += ']';
  std::string text = diff.dump();
  // `diff` is a non-empty object: the batches go in before its closing brace.
  text.insert(text.size() - 1, ",\"batches\":" + batches);
  return text;
}

Result<json> SyncService::Diff(const Principal& caller, const std::string& import_id,
                               const SyncDiffView& view) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  if (view.offset < 0) return InvalidArgumentError("offset must not be negative");
  std::lock_guard lock(mu_);
  PruneImportsLocked(/*room_for_one=*/false);
  auto it = imports_.find(import_id);
  if (it == imports_.end()) {
    return NotFoundError("no pending import with this id (imports end when the server restarts)");
  }
  return RenderDiffLocked(*it->second, view);
}

Result<json> SyncService::Batch(const Principal& caller, const std::string& import_id,
                                const std::string& batch) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  std::lock_guard lock(mu_);
  PruneImportsLocked(/*room_for_one=*/false);
  auto it = imports_.find(import_id);
  if (it == imports_.end()) {
    return NotFoundError("no pending import with this id (imports end when the server restarts)");
  }
  Import& im = *it->second;
  RETURN_IF_ERROR(DiffLocked(im));
  auto at = im.batch_index.find(batch);
  if (at == im.batch_index.end()) {
    return NotFoundError("the bundle has no batch '" + batch.substr(0, 100) + "'");
  }
  ASSIGN_OR_RETURN(auto ignored_pairs, store_.ListSyncIgnored());
  std::string state = "pending";
  if (auto decided = im.state.find(batch); decided != im.state.end()) state = decided->second;
  for (const auto& [peer, id] : ignored_pairs) {
    if (peer == im.peer.name && id == batch) state = "ignored";
  }
  const KeptBatch& kept = im.batches[at->second];
  return BatchJson(im.objects, kept, BatchStatus(kept), state, true);
}

// ---- Apply.
// ---------------------------------------------------------------------------------------

Status SyncService::ApplyObject(store::Store& tx, Import& im, const SyncObject& o,
                                const ObjectKeys& from_peer, std::vector<std::string>& adopted) {
  const json& f = o.fields;
  auto received = [&](const char* kind, const std::string& id) {
    return from_peer.count({kind, id}) > 0;
  };
  const int64_t now = clock_.NowSeconds();
  if (o.kind == "user") {
    // Not received from the peer means not here (else CheckReceivedFromPeer refused it).
    auto existing = received("user", o.id) ? tx.GetUserById(o.id)
                                           : Result<store::User>(NotFoundError("user not found"));
    if (existing.ok()) {
      // A low side may only touch data scientists: never an owner's or an admin's account.
      if (existing->is_root ||
          auth::AtLeast(auth::RoleFromInt(existing->role), auth::Role::kDataOwner)) {
        return PermissionDeniedError("user " + o.id +
                                     " is a data owner or admin here: a low side can't change it");
      }
      store::User u = *existing;
      ASSIGN_OR_RETURN(u.email, NormalizeEmail(Text(f, "email")));
      u.name = Text(f, "name");
      u.institution = Text(f, "institution");
      u.website = Text(f, "website");
      u.updated_at = now;
      Status st = tx.UpdateUser(u);
      if (st.code() == StatusCode::kAlreadyExists) {
        return AlreadyExistsError("the email of user " + o.id + " belongs to another account");
      }
      return st;
    }
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    store::User u;
    u.id = o.id;
    ASSIGN_OR_RETURN(u.email, NormalizeEmail(Text(f, "email")));
    u.name = Text(f, "name");
    u.institution = Text(f, "institution");
    u.website = Text(f, "website");
    // Capped whatever the bundle says, with a hash no password matches: no login on this side.
    u.role = static_cast<int>(auth::Role::kDataScientist);
    u.password_hash = kSyncedPasswordHash;
    u.created_at = Int(f, "created_at");
    u.updated_at = now;
    Status st = tx.InsertUser(u);
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("the email of user " + o.id + " belongs to another account");
    }
    return st;
  }
  if (o.kind == "code") {
    // Immutable once created. One here and not received from the peer was refused before this
    // (CheckReceivedFromPeer), so received means here: no lookup.
    if (received("code", o.id)) return Status::Ok();
    json policy_spec;
    ASSIGN_OR_RETURN(store::UserCode c, DeriveCode(o, policy_spec));
    c.id = o.id;
    c.user_id = Text(f, "user_id");
    c.created_at = Int(f, "created_at");
    auto author = tx.GetUserById(c.user_id);
    if (!received("user", c.user_id) || !author.ok() ||
        auth::RoleFromInt(author->role) != auth::Role::kDataScientist) {
      return PermissionDeniedError(
          "code " + o.id + " is not a data scientist's received from peer '" + im.peer.name + "'");
    }
    RETURN_IF_ERROR(tx.InsertCode(c).status());
    if (!policy_spec.is_null()) RETURN_IF_ERROR(tx.PutCodePolicy(c.id, policy_spec.dump()));
    // Counted now, and given back if the import rolls back.
    if (options_.storage) {
      options_.storage->Add(c.stored_bytes);
      tx.AfterRollback(
          [storage = options_.storage, bytes = c.stored_bytes] { storage->Add(-bytes); });
    }
    return Status::Ok();
  }
  if (o.kind == "request") {
    if (received("request", o.id)) return Status::Ok();  // as for code
    store::CodeRequest r;
    r.id = o.id;
    r.code_id = Text(f, "code_id");
    r.user_id = Text(f, "user_id");
    r.reason = Text(f, "reason");
    r.status = "pending";
    r.created_at = Int(f, "created_at");
    r.updated_at = now;
    if (!received("code", r.code_id)) {
      return PermissionDeniedError("request " + o.id + " is for code not received from peer '" +
                                   im.peer.name + "'");
    }
    ASSIGN_OR_RETURN(const std::string author, tx.GetCodeAuthor(r.code_id));
    if (author != r.user_id) {
      return PermissionDeniedError("request " + o.id + " is not its code's author's");
    }
    RETURN_IF_ERROR(tx.InsertRequest(r));
    // In a project only when the project came from the same peer (else it stays without one).
    if (auto project = OptText(f, "project_id"); project && received("project", *project)) {
      if (tx.GetProject(*project).ok()) RETURN_IF_ERROR(tx.SetRequestProject(r.id, *project));
    }
    return Status::Ok();
  }
  if (o.kind == "project") {
    // A project of the peer's scientists: its creator, members and the authors of its events are
    // accounts received from that peer. A member or an event that is not is left out (the peer's
    // own owners and admins never travel); a creator that is not refuses the object.
    auto existing = tx.GetProject(o.id);
    if (!existing.ok()) {
      store::Project p;
      p.id = o.id;
      p.name = Text(f, "name");
      p.description = Text(f, "description");
      p.created_by = Text(f, "created_by");
      p.created_at = Int(f, "created_at");
      if (!received("user", p.created_by)) {
        return PermissionDeniedError("project " + o.id +
                                     " was not created by an account received from peer '" +
                                     im.peer.name + "'");
      }
      if (f.contains("members") && f["members"].is_array()) {
        for (const json& m : f["members"]) {
          if (m.is_string() && received("user", m.get<std::string>())) {
            p.members.push_back({m.get<std::string>()});
          }
        }
      }
      RETURN_IF_ERROR(tx.InsertProject(p));
    }
    ASSIGN_OR_RETURN(std::vector<store::ProjectEvent> have, tx.ProjectEvents(o.id, 0, kAll));
    std::set<std::string> ids;
    for (const store::ProjectEvent& e : have) ids.insert(e.id);
    if (f.contains("events") && f["events"].is_array()) {
      for (const json& e : f["events"]) {
        if (!e.is_object() || ids.count(Text(e, "id"))) continue;
        const std::string kind = Text(e, "kind");
        if (kind != "message" && kind != "request") continue;
        if (!received("user", Text(e, "actor_id"))) continue;
        // A request received from the peer (projects are written after the requests of the same
        // apply); one not taken in yet leaves its event out.
        if (auto request = OptText(e, "request_id"); request && !received("request", *request)) {
          continue;
        }
        store::ProjectEvent ev;
        ev.id = Text(e, "id");
        ev.project_id = o.id;
        ev.kind = kind;
        ev.actor_id = Text(e, "actor_id");
        ev.request_id = OptText(e, "request_id");
        ev.text = Text(e, "text");
        ev.at = Int(e, "at");
        RETURN_IF_ERROR(tx.AppendProjectEvent(ev).status());
      }
    }
    return Status::Ok();
  }
  if (o.kind == "dataset") {
    auto existing = tx.GetDataset(o.id);
    if (IsDeletion(o)) {
      // Deleted on the sending side: gone here too (at the same time, so both project alike).
      if (!existing.ok()) return Status::Ok();
      return tx.SoftDeleteDataset(o.id, Int(f, "deleted_at"));
    }
    store::Dataset d;
    d.id = o.id;
    d.name = Text(f, "name");
    d.summary = Text(f, "summary");
    d.description = Text(f, "description");
    d.citation = Text(f, "citation");
    d.url = Text(f, "url");
    if (f.contains("contributors") && f["contributors"].is_array()) {
      for (const json& c : f["contributors"]) {
        d.contributors.push_back({Text(c, "name"), Text(c, "email"), Text(c, "role"),
                                  Text(c, "phone"), Text(c, "note")});
      }
    }
    d.created_at = Int(f, "created_at");
    d.updated_at = Int(f, "updated_at");
    if (existing.ok()) {
      d.uploader_id = existing->uploader_id;
      return tx.UpdateDataset(d);
    }
    // Its assets follow in the same batch; the dataset is inserted with them (see Apply).
    return Status::Ok();
  }
  if (o.kind == "asset") {
    // Written with its dataset (see Apply).
    return Status::Ok();
  }
  if (o.kind == "decision") {
    // Only a request this side sent to the peer is decided by it.
    if (!received("request", o.id)) {
      return PermissionDeniedError("decision " + o.id + " is for a request not sent to peer '" +
                                   im.peer.name + "'");
    }
    ASSIGN_OR_RETURN(store::CodeRequest r, tx.GetRequest(o.id));
    const std::string status = Text(f, "status");
    if (status != "approved" && status != "denied") {
      return InvalidArgumentError("decision " + o.id + " has no valid status");
    }
    if (r.status == status) return Status::Ok();
    return tx.DecideRequest(o.id, status, OptText(f, "deny_reason"), "sync:" + im.peer.name, now);
  }
  if (o.kind == "job") {
    if (!received("request", Text(f, "request_id"))) {
      return PermissionDeniedError("job " + o.id + " is for a request not sent to peer '" +
                                   im.peer.name + "'");
    }
    ASSIGN_OR_RETURN(store::CodeRequest r, tx.GetRequest(Text(f, "request_id")));
    store::Job j;
    j.id = o.id;
    j.code_id = Text(f, "code_id");
    j.user_id = Text(f, "user_id");
    if (j.code_id != r.code_id || j.user_id != r.user_id) {
      return PermissionDeniedError("job " + o.id + " is not of its request's code");
    }
    j.status = Text(f, "status");
    if (!jobs::IsFinal(j.status)) return InvalidArgumentError("job " + o.id + " has not ended");
    j.inputs = "{}";
    j.error = Text(f, "error");
    j.failure = Text(f, "failure");
    j.created_at = Int(f, "created_at");
    j.started_at = Int(f, "started_at");
    j.finished_at = Int(f, "finished_at");
    j.stdout_text = Text(f, "stdout");
    if (f.contains("result") && f["result"].is_object() && o.blob) {
      const json& res = f["result"];
      j.result_format = Text(res, "format");
      j.result_size = Int(res, "size");
      if (res.contains("meta") && !res["meta"].is_null()) j.result_meta = res["meta"].dump();
      std::ifstream in(im.staged.at(*o.blob), std::ios::binary);
      j.result_data = std::string((std::istreambuf_iterator<char>(in)), {});
    }
    ASSIGN_OR_RETURN(int64_t kept, tx.PutSyncedJob(j, im.peer.verify_key));
    // Counted now, whatever the import's transaction does next: an import rolled back counts its
    // jobs until the server restarts (CodeService::CountKeptBytes), never fewer bytes than kept.
    if (options_.storage) options_.storage->Add(kept);
    return Status::Ok();
  }
  (void)adopted;
  return InvalidArgumentError("unknown kind " + o.kind);
}

Status SyncService::AdoptMock(store::Store& tx, const Principal& caller, Import& im,
                              const SyncObject& o, store::Asset& a,
                              std::vector<std::string>& adopted,
                              std::map<std::string, std::string>& adopted_from) {
  const json& f = o.fields;
  if (!o.blob || !f.contains("mock") || !f["mock"].is_object()) return Status::Ok();
  const json& m = f["mock"];
  // Adopted from the staging file (the directory store moves it, no copy); a second asset with
  // the same mock gets a copy of the first one's blob, read a piece at a time.
  blob::BlobInfo info;
  const std::string& staged = im.staged.at(*o.blob);
  if (!adopted_from.count(*o.blob)) {
    ASSIGN_OR_RETURN(info, blobs_.AdoptFile(staged, im.sizes.at(*o.blob), *o.blob));
    adopted_from[*o.blob] = info.id;
  } else {
    ASSIGN_OR_RETURN(auto reader, blobs_.Open(adopted_from[*o.blob]));
    ASSIGN_OR_RETURN(auto writer, blobs_.NewWriter(im.sizes.at(*o.blob), im.sizes.at(*o.blob)));
    std::string buf(1 << 20, '\0');
    while (true) {
      ASSIGN_OR_RETURN(size_t got, reader->Read(buf.data(), buf.size()));
      if (got == 0) break;
      RETURN_IF_ERROR(writer->Append(std::string_view(buf.data(), got)));
    }
    ASSIGN_OR_RETURN(info, writer->Commit());
  }
  adopted.push_back(info.id);
  if (info.sha256 != *o.blob) return InternalError("a staged mock changed on disk");
  store::Blob rec;
  rec.id = info.id;
  rec.owner_id = caller.user_id.value_or("");
  rec.size = info.size;
  rec.sha256 = info.sha256;
  rec.format = Text(m, "format");
  rec.schema = m.contains("schema")
                   ? (m["schema"].is_string() ? m["schema"].get<std::string>() : m["schema"].dump())
                   : "{}";
  rec.created_at = clock_.NowSeconds();
  if (m.contains("meta") && !m["meta"].is_null()) {
    a.mock_meta = m["meta"].dump();
    rec.meta = a.mock_meta;
  }
  RETURN_IF_ERROR(tx.InsertBlob(rec));
  a.mock_blob_id = info.id;
  return Status::Ok();
}

Status SyncService::ApplySyncedAsset(store::Store& tx, const Principal& caller, Import& im,
                                     const SyncObject& o, store::Asset a,
                                     std::vector<std::string>& adopted,
                                     std::map<std::string, std::string>& adopted_from,
                                     std::vector<std::string>& released) {
  const json& f = o.fields;
  ASSIGN_OR_RETURN(store::Dataset d, tx.GetDataset(a.dataset_id));
  if (d.id != a.dataset_id) return NotFoundError("no dataset with id " + a.dataset_id);
  // The dataset keeps its updated_at here; the dataset object of the batch sets the peer's.
  auto held = std::find_if(d.assets.begin(), d.assets.end(),
                           [&](const store::Asset& have) { return have.id == o.id; });
  if (held == d.assets.end()) {
    if (tx.GetDatasetByAsset(o.id).ok()) {
      return PermissionDeniedError("asset " + o.id + " belongs to another dataset here");
    }
    RETURN_IF_ERROR(AdoptMock(tx, caller, im, o, a, adopted, adopted_from));
    return tx.InsertAsset(d.id, a, d.updated_at);
  }
  // Only a mock changes on an asset (the owner's "replace mock"); anything else is refused rather
  // than left behind while the batch is recorded as the peer's.
  if (held->name != a.name || held->description != a.description || held->format != a.format ||
      ParseOr(held->metadata, json::object()) != ParseOr(a.metadata, json::object())) {
    return FailedPreconditionError("asset " + o.id +
                                   " changed other than its mock: not supported by sync");
  }
  const bool mock_here = held->mock_blob && !held->mock_needs_regeneration;
  if (!o.blob) {
    if (!mock_here) return Status::Ok();
    return FailedPreconditionError("asset " + o.id +
                                   " lost its mock on the peer: not supported by sync");
  }
  if (!f.contains("mock") || !f["mock"].is_object()) {
    return InvalidArgumentError("asset " + o.id + " has a blob but no mock");
  }
  if (mock_here && held->mock_blob->sha256 == *o.blob &&
      Text(f["mock"], "format") == held->mock_blob->format) {
    return Status::Ok();
  }
  RETURN_IF_ERROR(AdoptMock(tx, caller, im, o, a, adopted, adopted_from));
  ASSIGN_OR_RETURN(std::optional<std::string> old,
                   tx.ReplaceAssetMock(o.id, *a.mock_blob_id, d.updated_at));
  if (old) released.push_back(*old);
  return Status::Ok();
}

Result<std::string> SyncService::Apply(const Principal& caller, const std::string& import_id,
                                       const SyncDecisions& decisions) {
  RETURN_IF_ERROR(NeedAdmin(caller));
  std::lock_guard lock(mu_);
  PruneImportsLocked(/*room_for_one=*/false);
  auto it = imports_.find(import_id);
  if (it == imports_.end()) {
    return NotFoundError("no pending import with this id (imports end when the server restarts)");
  }
  Import& im = *it->second;
  RETURN_IF_ERROR(DiffLocked(im));
  const int64_t checked_at = im.diff_head;
  ASSIGN_OR_RETURN(auto ignored_pairs, store_.ListSyncIgnored());
  std::set<std::string> ignored;
  for (const auto& [peer, batch] : ignored_pairs) {
    if (peer == im.peer.name) ignored.insert(batch);
  }
  const std::set<std::string> overwrite(decisions.overwrite.begin(), decisions.overwrite.end());
  // A batch of the diff's list: not ignored, and with something to change or decided here.
  auto find = [&](const std::string& id) -> Result<const KeptBatch*> {
    auto at = im.batch_index.find(id);
    const bool decided = im.state.count(id) > 0;
    if (at == im.batch_index.end() || ignored.count(id) ||
        (!decided && BatchStatus(im.batches[at->second]) == "same")) {
      return NotFoundError("no batch '" + id.substr(0, 100) + "' to decide");
    }
    if (decided) return FailedPreconditionError("batch '" + id + "' was decided already");
    return &im.batches[at->second];
  };
  std::vector<std::string> to_write;  // batches whose objects are written
  for (const std::string& id : decisions.accept) {
    ASSIGN_OR_RETURN(const KeptBatch* b, find(id));
    if (BatchStatus(*b) == "conflict" && !overwrite.count(id)) {
      return AlreadyExistsError("batch '" + id +
                                "' is in conflict (changed here too): add it to 'overwrite'");
    }
    to_write.push_back(id);
  }
  for (const auto& [id, reason] : decisions.deny) {
    ASSIGN_OR_RETURN(const KeptBatch* b, find(id));
    if (side() != "high" || SplitBatch(id).first != "request") {
      return InvalidArgumentError("only request batches are denied, on a high side");
    }
    // A denial writes the batch too: the same conflict rule as an accept.
    if (BatchStatus(*b) == "conflict" && !overwrite.count(id)) {
      return AlreadyExistsError("batch '" + id +
                                "' is in conflict (changed here too): add it to 'overwrite'");
    }
    if (reason.empty()) return InvalidArgumentError("a denial needs a reason");
    to_write.push_back(id);
  }
  for (const std::string& id : decisions.ignore) RETURN_IF_ERROR(find(id).status());

  // The objects of each batch, in bundle order (found once, not by a pass over all per batch).
  std::map<std::string, std::vector<const SyncObject*>> of_batch;
  for (const SyncObject& o : im.objects) of_batch[o.root].push_back(&o);
  // A requester travels in one of their requests' batches only (or their own): a request whose
  // author is not here yet takes that user object along, and only it, written first. The batch
  // it came in stays to be decided, unless the owner ignored it: then the request waits too.
  std::vector<const SyncObject*> requesters;
  {
    std::map<std::string, const SyncObject*> user_object;
    for (const SyncObject& o : im.objects) {
      if (o.kind == "user") user_object.emplace(o.id, &o);
    }
    std::set<std::string> taken;
    for (const std::string& id : to_write) {
      for (const SyncObject* o : of_batch[id]) {
        if (o->kind != "request") continue;
        auto user = user_object.find(Text(o->fields, "user_id"));
        if (user == user_object.end() || user->second->root == id || taken.count(user->first) ||
            store_.GetUserById(user->first).ok()) {
          continue;
        }
        const std::string& holder = user->second->root;
        if (ignored.count(holder) || std::find(decisions.ignore.begin(), decisions.ignore.end(),
                                               holder) != decisions.ignore.end()) {
          return FailedPreconditionError("batch '" + id + "' needs its requester from batch '" +
                                         holder + "', which is ignored: stop ignoring it first");
        }
        auto b = im.batch_index.find(holder);
        if (b != im.batch_index.end() && BatchStatus(im.batches[b->second]) == "conflict" &&
            !overwrite.count(holder)) {
          return AlreadyExistsError("batch '" + id + "' needs its requester from batch '" + holder +
                                    "', which is in conflict: add it to 'overwrite'");
        }
        taken.insert(user->first);
        requesters.push_back(user->second);
      }
    }
  }
  // Projects last: their events name requests this apply may write.
  std::stable_partition(to_write.begin(), to_write.end(),
                        [](const std::string& id) { return SplitBatch(id).first != "project"; });
  std::vector<std::string> adopted;
  std::map<std::string, std::string> adopted_from;  // staged sha256 -> the blob it became
  std::vector<std::string> released;                // mock blobs replaced by the apply
  int64_t head_after = -1;
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    // The statuses checked above hold only while nothing changed since they were computed.
    ASSIGN_OR_RETURN(const int64_t head, tx.ChangeLogHead());
    if (head != checked_at) {
      return FailedPreconditionError(
          "this server's objects changed while the apply was checked: apply again");
    }
    RETURN_IF_ERROR(CheckApplyAllowed(tx, im));
    ASSIGN_OR_RETURN(auto exchanged,
                     tx.ListSyncObjects(store::SyncLedger::kExchanged, im.peer.name));
    // The peer's objects: its ledger, grown with each object written here, in order (a code's
    // author before the code, a requester taken along before the batch it came in).
    ObjectKeys from_peer;
    for (const store::SyncObjectState& s : exchanged) from_peer.insert({s.kind, s.object_id});
    auto record = [&](const SyncObject& o) -> Status {
      from_peer.insert({o.kind, o.id});
      return tx.PutSyncObject(store::SyncLedger::kExchanged, im.peer.name, {o.kind, o.id, o.hash});
    };
    RETURN_IF_ERROR(tx.SetChangeOrigin(im.peer.verify_key));
    for (const SyncObject* user : requesters) {
      RETURN_IF_ERROR(CheckReceivedFromPeer(tx, im, *user, from_peer));
      RETURN_IF_ERROR(ApplyObject(tx, im, *user, from_peer, adopted));
      RETURN_IF_ERROR(record(*user));
    }
    for (const std::string& batch : to_write) {
      const std::vector<const SyncObject*>& members = of_batch[batch];
      for (const SyncObject* member : members) {
        RETURN_IF_ERROR(CheckReceivedFromPeer(tx, im, *member, from_peer));
      }
      // Datasets are written whole: the dataset with its assets, their mocks adopted from staging.
      std::optional<store::Dataset> new_dataset;
      // A dataset already here: its metadata is written after its assets, whose writes move its
      // updated_at, so that it ends as the peer has it.
      const SyncObject* synced_dataset = nullptr;
      for (const SyncObject* member : members) {
        const SyncObject& o = *member;
        if (o.kind == "dataset" && !IsDeletion(o) && !tx.GetDataset(o.id).ok()) {
          new_dataset.emplace();
          RETURN_IF_ERROR(ApplyObject(tx, im, o, from_peer, adopted));
          const json& f = o.fields;
          new_dataset->id = o.id;
          new_dataset->name = Text(f, "name");
          new_dataset->summary = Text(f, "summary");
          new_dataset->description = Text(f, "description");
          new_dataset->citation = Text(f, "citation");
          new_dataset->url = Text(f, "url");
          if (f.contains("contributors") && f["contributors"].is_array()) {
            for (const json& c : f["contributors"]) {
              new_dataset->contributors.push_back({Text(c, "name"), Text(c, "email"),
                                                   Text(c, "role"), Text(c, "phone"),
                                                   Text(c, "note")});
            }
          }
          new_dataset->uploader_id = caller.user_id.value_or("");
          new_dataset->created_at = Int(f, "created_at");
          new_dataset->updated_at = Int(f, "updated_at");
        } else if (o.kind == "dataset") {
          synced_dataset = &o;
        } else if (o.kind == "asset") {
          const json& f = o.fields;
          store::Asset a;
          a.id = o.id;
          a.dataset_id = Text(f, "dataset_id");
          a.name = Text(f, "name");
          a.description = Text(f, "description");
          a.format = Text(f, "format");
          a.metadata = f.contains("metadata") ? f["metadata"].dump() : "{}";
          if (o.root != "dataset:" + a.dataset_id) {
            return InvalidArgumentError("asset " + o.id + " is not in its batch's dataset");
          }
          if (new_dataset) {
            a.dataset_id = new_dataset->id;
            RETURN_IF_ERROR(AdoptMock(tx, caller, im, o, a, adopted, adopted_from));
            new_dataset->assets.push_back(std::move(a));
          } else {
            RETURN_IF_ERROR(
                ApplySyncedAsset(tx, caller, im, o, std::move(a), adopted, adopted_from, released));
          }
        } else if (std::find(requesters.begin(), requesters.end(), &o) == requesters.end()) {
          RETURN_IF_ERROR(ApplyObject(tx, im, o, from_peer, adopted));
          // Later objects of the batch may name it (the code its request is for).
          from_peer.insert({o.kind, o.id});
        }
        if (apply_hook_) RETURN_IF_ERROR(apply_hook_(o));
      }
      if (new_dataset) RETURN_IF_ERROR(tx.InsertDataset(*new_dataset));
      if (synced_dataset) {
        RETURN_IF_ERROR(ApplyObject(tx, im, *synced_dataset, from_peer, adopted));
      }
      for (const SyncObject* o : members) RETURN_IF_ERROR(record(*o));
    }
    // A request written before its project (projects go last) is filed in it now.
    for (const std::string& batch : to_write) {
      for (const SyncObject* o : of_batch[batch]) {
        auto project = o->kind == "request" ? OptText(o->fields, "project_id") : std::nullopt;
        if (!project || !from_peer.count({"project", *project})) continue;
        ASSIGN_OR_RETURN(store::CodeRequest r, tx.GetRequest(o->id));
        if (!r.project_id && tx.GetProject(*project).ok()) {
          RETURN_IF_ERROR(tx.SetRequestProject(o->id, *project));
        }
      }
    }
    // A denial is this side's own decision, not the peer's: with the peer's origin it would never
    // be exported back to it (the echo guard), and the requester would never learn of it.
    RETURN_IF_ERROR(tx.SetChangeOrigin(""));
    for (const auto& [id, reason] : decisions.deny) {
      const std::string rid = SplitBatch(id).second;
      RETURN_IF_ERROR(tx.DecideRequest(rid, "denied", reason, caller.user_id.value_or(""),
                                       clock_.NowSeconds()));
    }
    for (const std::string& id : decisions.ignore) {
      RETURN_IF_ERROR(tx.SetSyncIgnored(im.peer.name, id, true));
    }
    if (!im.applied_once) RETURN_IF_ERROR(RecordFirstApply(tx, im));
    RETURN_IF_ERROR(
        tx.PutSyncImport({im.id, im.peer.name, im.header.seq, clock_.NowSeconds(), "applied"}));
    std::string detail = "import " + im.id + "; accepted";
    for (const SyncObject* user : requesters) detail += " user " + user->id;
    for (const std::string& id : decisions.accept) detail += " " + id;
    detail += "; denied";
    for (const auto& [id, reason] : decisions.deny) detail += " " + id;
    detail += "; ignored";
    for (const std::string& id : decisions.ignore) detail += " " + id;
    RETURN_IF_ERROR(tx.AppendAudit(
        {clock_.NowSeconds(), caller.AuditName(), "sync.apply", "peer:" + im.peer.name, detail}));
    RETURN_IF_ERROR(tx.SetChangeOrigin(""));
    ASSIGN_OR_RETURN(head_after, tx.ChangeLogHead());
    return Status::Ok();
  });
  if (!st.ok()) {
    // An import whose key is no longer its peer's never applies: it goes.
    if (st.message().rfind("bundle refused (revoked key)", 0) == 0) {
      imports_.erase(it);
      return st;
    }
    // All or nothing: the blobs this apply wrote go with the rolled-back rows; the bytes of an
    // adopted staging file go back to staging first (copied: a store need not be files), so that
    // the import may still be applied.
    for (const auto& [sha, id] : adopted_from) {
      auto reader = blobs_.Open(id);
      Status back = reader.ok() ? blob::CopyToFile(**reader, im.staged.at(sha)) : reader.status();
      if (!back.ok()) {
        spdlog::warn("giving the staged mock {} back to its import: {}", sha, back.ToString());
      }
    }
    for (const std::string& id : adopted) (void)blobs_.Delete(id);
    return st;
  }
  im.applied_once = true;
  // The mocks adopted count against the server's storage limit from now on, as an upload's do
  // (the load checked they fit, with every pending import's blobs).
  if (options_.storage) {
    for (const std::string& id : adopted) {
      auto b = store_.GetBlob(id);
      if (b.ok()) options_.storage->Add(b->size);
    }
  }
  // The mocks replaced go once the apply holds, as the owner's own replace deletes its old mock
  // (row first: a file left by a crash in between is removed by the start-up recovery).
  for (const std::string& id : released) {
    auto b = store_.GetBlob(id);
    Status gone = b.status();
    if (gone.ok()) gone = store_.DeleteBlob(id);
    if (gone.ok() && options_.storage) options_.storage->Add(-b->size);
    if (gone.ok()) {
      store_.AfterCommit([this, id] {
        Status deleted = blobs_.Delete(id);
        if (!deleted.ok())
          spdlog::warn("deleting the replaced mock blob {}: {}", id, deleted.message());
      });
    }
    if (!gone.ok()) spdlog::warn("deleting the replaced mock blob {}: {}", id, gone.message());
  }
  // The kept diff moves by what this call wrote, not by a new diff of everything: each object of
  // a written batch is now held here as it came and recorded as exchanged with the peer, which is
  // what "same" means; the change-log head moves past this call's own changes.
  for (const std::string& id : to_write) {
    for (KeptObject& k : im.batches[im.batch_index.at(id)].objects) {
      k.status = "same";
      k.local = im.objects[k.index].fields;
    }
  }
  std::vector<std::string> holders;  // batches one of whose objects (a requester) was written
  for (const SyncObject* user : requesters) {
    for (KeptObject& k : im.batches[im.batch_index.at(user->root)].objects) {
      if (&im.objects[k.index] != user) continue;
      k.status = "same";
      k.local = user->fields;
    }
    if (std::find(to_write.begin(), to_write.end(), user->root) == to_write.end() &&
        std::find(holders.begin(), holders.end(), user->root) == holders.end()) {
      holders.push_back(user->root);
    }
  }
  im.diff_head = head_after;
  json applied = json::array(), denied = json::array(), ignored_now = json::array();
  for (const std::string& id : decisions.accept) {
    im.state[id] = "applied";
    applied.push_back(id);
  }
  for (const auto& [id, reason] : decisions.deny) {
    im.state[id] = "denied";
    denied.push_back(id);
  }
  for (const std::string& id : decisions.ignore) ignored_now.push_back(id);
  // The batches written, as JSON text written directly (as the load's answer).
  std::string written = "[";
  auto write = [&](const std::string& id, const std::string& state) {
    const KeptBatch& kept = im.batches[im.batch_index.at(id)];
    if (written.size() > 1) written += ',';
    AppendBatchText(written, im.objects, kept, BatchStatus(kept), state);
  };
  for (const std::string& id : holders) write(id, "pending");
  for (const std::string& id : to_write) write(id, im.state[id]);
  written += ']';
  ASSIGN_OR_RETURN(
      json after,
      WalkDiffLocked(im, {false, 0, 0}, [](size_t, const std::string&, const std::string&) {}));
  std::string text = json{{"applied", std::move(applied)},
                          {"ignored", std::move(ignored_now)},
                          {"denied", std::move(denied)},
                          {"summary", std::move(after["summary"])}}
                         .dump();
  text.insert(text.size() - 1, ",\"batches\":" + written);
  return text;
}

}  // namespace datasite::services
