#include "services/sync.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/role.h"
#include "blob/blob_store.h"
#include "core/clock.h"
#include "core/random.h"
#include "jobs/job_queue.h"
#include "services/code.h"
#include "services/settings.h"
#include "services/storage_meter.h"
#include "store/store.h"
#include "sync/bundle.h"

namespace datasite::services {
namespace {

using json = nlohmann::json;

// One server of a pair: a real store and blob store in a temp directory, the real services.
struct Side {
  Side(const std::string& side, const std::string& name) {
    std::string tmpl = ::testing::TempDir() + "sync_test_XXXXXX";
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    dir = tmpl;
    std::filesystem::create_directories(dir + "/results");
    store = std::move(store::OpenSqliteStore(dir + "/datasite.db")).value();
    blobs =
        std::move(blob::NewFileBlobStore(dir + "/blobs", blob::BlobWriteMode::kPageCache)).value();
    settings = std::make_unique<SettingsService>(*store, clock);
    LaunchSettings launch;
    launch.name = name;
    launch.server_side_type = side;
    launch.admin_email = "root@" + name + ".example";
    EXPECT_TRUE(settings->Bootstrap(launch).ok());
    queue = std::make_unique<jobs::JobQueue>(*store, clock, jobs::QueueOptions{});
    results = std::move(blob::NewFileBlobStore(dir + "/results", blob::BlobWriteMode::kPageCache))
                  .value();
    CodeOptions options;
    options.results = results.get();
    options.results_dir = dir + "/results";
    code = std::make_unique<CodeService>(*store, *blobs, *settings, *queue, meter, clock, options);
    SyncOptions sync_options;
    sync_options.storage = &meter;
    sync = std::make_unique<SyncService>(*store, *blobs, *settings, *code, clock, sync_options);
    admin.role = auth::Role::kAdmin;
    admin.user_id = "admin-" + name;
  }
  ~Side() {
    sync.reset();
    code.reset();
    queue.reset();
    settings.reset();
    results.reset();
    blobs.reset();
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::string Key() const { return HexEncode(settings->identity().verify_key); }

  // The bytes of the next bundle to `peer`.
  std::string Export(const std::string& peer) {
    auto out = sync->Export(admin, peer);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    if (!out.ok()) return "";
    std::string bytes;
    char buf[4096];
    while (true) {
      auto n = out->source->Read(buf, sizeof buf);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      bytes.append(buf, *n);
    }
    return bytes;
  }

  // Makes every apply fail (kInternal) when it comes to writing an object of `kind`.
  void FailWritesOf(std::string kind) {
    sync->SetApplyHookForTest([kind = std::move(kind)](const SyncObject& o) -> Status {
      return o.kind == kind ? InternalError("injected") : Status::Ok();
    });
  }

  // SyncService::Apply as the admin, its answer parsed.
  Result<json> Apply(const std::string& import_id, const SyncDecisions& decisions) {
    ASSIGN_OR_RETURN(std::string applied, sync->Apply(admin, import_id, decisions));
    return json::parse(applied);
  }

  Result<json> Load(const std::string& bundle) {
    ASSIGN_OR_RETURN(auto sink, sync->BeginImport(admin));
    // In uneven chunks, as an upload arrives.
    for (size_t at = 0; at < bundle.size(); at += 777) {
      RETURN_IF_ERROR(sink->Write(std::string_view(bundle).substr(at, 777)));
    }
    ASSIGN_OR_RETURN(std::string diff, sink->Finish());
    return json::parse(diff);
  }

  void AddUser(const std::string& id, const std::string& email, auth::Role role) {
    store::User u;
    u.id = id;
    u.email = email;
    u.name = "Name " + id;
    u.role = static_cast<int>(role);
    u.password_hash = "$argon2id$secret-hash-" + id;
    u.created_at = 100;
    ASSERT_TRUE(store->InsertUser(u).ok());
  }

  // A data scientist's code and its pending request.
  void AddRequest(const std::string& user, const std::string& code_id,
                  const std::string& request_id) {
    store::UserCode c;
    c.id = code_id;
    c.user_id = user;
    c.name = "f";
    // Each code of a scientist is distinct (one per source); its hash is its source's, as on a
    // server.
    c.source = "def f(data):\n    return 1\n";
    if (code_id != "c1") c.source += "# " + code_id + "\n";
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(c.source.data()),
                       c.source.size());
    c.code_hash = HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
    c.inputs = "{}";
    c.output_policy = "single_execution";
    c.created_at = 200;
    ASSERT_TRUE(store->InsertCode(c).ok());
    store::CodeRequest r;
    r.id = request_id;
    r.code_id = code_id;
    r.user_id = user;
    r.reason = "please";
    r.status = "pending";
    r.created_at = 300;
    r.updated_at = 300;
    ASSERT_TRUE(store->InsertRequest(r).ok());
  }

  // A dataset with one asset whose private data and mock both carry markers.
  void AddDataset(const std::string& id, const std::string& mock_bytes,
                  const std::string& private_bytes) {
    auto put = [&](const std::string& bytes) {
      auto w = std::move(blobs->NewWriter(1 << 20)).value();
      EXPECT_TRUE(w->Append(bytes).ok());
      blob::BlobInfo info = std::move(w->Commit()).value();
      store::Blob b{info.id, "owner", info.size, info.sha256, "csv", "{\"columns\":[]}", 100};
      EXPECT_TRUE(store->InsertBlob(b).ok());
      return info.id;
    };
    store::Dataset d;
    d.id = id;
    d.name = "census-" + id;
    d.summary = "s";
    d.uploader_id = "owner";
    d.created_at = 100;
    d.updated_at = 100;
    store::Asset a;
    a.id = "asset-" + id;
    a.dataset_id = id;
    a.name = "people";
    a.format = "csv";
    a.data_blob_id = put(private_bytes);
    a.mock_blob_id = put(mock_bytes);
    d.assets.push_back(a);
    ASSERT_TRUE(store->InsertDataset(d).ok());
  }

  // A recorded csv blob of `bytes`; its id.
  std::string PutBlob(const std::string& bytes) {
    auto w = std::move(blobs->NewWriter(1 << 20)).value();
    EXPECT_TRUE(w->Append(bytes).ok());
    blob::BlobInfo info = std::move(w->Commit()).value();
    store::Blob b{info.id, "owner", info.size, info.sha256, "csv", "{\"columns\":[]}", 100};
    EXPECT_TRUE(store->InsertBlob(b).ok());
    return info.id;
  }

  // The bytes of the mock of the dataset's asset named `asset`.
  std::string MockBytes(const std::string& dataset, const std::string& asset) {
    auto d = store->GetDataset(dataset);
    EXPECT_TRUE(d.ok());
    if (!d.ok()) return "";
    for (const store::Asset& a : d->assets) {
      if (a.name != asset || !a.mock_blob_id) continue;
      std::ifstream in(blobs->Materialize(*a.mock_blob_id)->path(), std::ios::binary);
      return std::string((std::istreambuf_iterator<char>(in)), {});
    }
    ADD_FAILURE() << "no mock of " << asset;
    return "";
  }

  std::string dir;
  FakeClock clock;
  StorageMeter meter{int64_t{1} << 40};
  std::unique_ptr<store::Store> store;
  std::unique_ptr<blob::BlobStore> results;
  std::unique_ptr<blob::BlobStore> blobs;
  std::unique_ptr<SettingsService> settings;
  std::unique_ptr<jobs::JobQueue> queue;
  std::unique_ptr<CodeService> code;
  std::unique_ptr<SyncService> sync;
  Principal admin;
};

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    low_ = std::make_unique<Side>("low", "low");
    high_ = std::make_unique<Side>("high", "high");
    ASSERT_TRUE(low_->sync->AddPeer(low_->admin, "high", high_->Key()).ok());
    ASSERT_TRUE(high_->sync->AddPeer(high_->admin, "low", low_->Key()).ok());
  }

  // Low's request r1 (code c1 by scientist s1) applied on high.
  void RequestOnHigh() {
    low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
    low_->AddRequest("s1", "c1", "r1");
    auto diff = high_->Load(low_->Export("high"));
    ASSERT_TRUE(diff.ok()) << diff.status().ToString();
    SyncDecisions d;
    d.accept = {"request:r1"};
    auto applied = high_->Apply((*diff)["import_id"], d);
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  }

  std::unique_ptr<Side> low_;
  std::unique_ptr<Side> high_;
};

std::string Reason(const Status& st) { return std::string(sync::RefusalReason(st)); }

TEST_F(SyncTest, LowToHighRoundTripCarriesScientistCodeAndRequest) {
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  low_->AddUser("o1", "owner@example.org", auth::Role::kDataOwner);
  low_->AddRequest("s1", "c1", "r1");
  auto diff = high_->Load(low_->Export("high"));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ((*diff)["direction"], "low_to_high");
  ASSERT_EQ((*diff)["batches"].size(), 1u);
  const json& batch = (*diff)["batches"][0];
  EXPECT_EQ(batch["id"], "request:r1");
  EXPECT_EQ(batch["status"], "new");
  EXPECT_EQ(batch["objects"].size(), 3u);  // the user, the code, the request; never the owner
  // Nothing changes before the apply.
  EXPECT_FALSE(high_->store->GetUserById("s1").ok());
  SyncDecisions d;
  d.accept = {"request:r1"};
  auto applied = high_->Apply((*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  auto user = high_->store->GetUserById("s1");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->role, static_cast<int>(auth::Role::kDataScientist));
  EXPECT_EQ(user->password_hash.find("secret-hash"), std::string::npos);
  EXPECT_EQ(high_->store->GetRequest("r1")->status, "pending");
  EXPECT_EQ(high_->store->GetCode("c1")->source, "def f(data):\n    return 1\n");
  EXPECT_FALSE(high_->store->GetUserById("o1").ok());
  // Written with the peer's origin: the echo guard keeps them from going back.
  EXPECT_EQ((*high_->store->LatestChange("user", "s1"))->origin, low_->Key());
  ASSERT_EQ((*applied)["batches"].size(), 1u);
  EXPECT_EQ((*applied)["batches"][0]["state"], "applied");
  EXPECT_EQ((*applied)["batches"][0]["status"], "same");
  // The next bundle from low carries nothing new: high's inventory says it holds them.
  auto again = high_->Load(low_->Export("high"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)["batches"].size(), 0u);
}

// A low side's scientist s1 with three requests, loaded on the high side: the diff, the batch that
// carries s1's account, and the two that do not.
struct ThreeRequests {
  json diff;
  std::string with_user;
  std::vector<std::string> others;
};
ThreeRequests LoadThreeRequestsOfOneScientist(Side& low, Side& high) {
  low.AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  low.AddRequest("s1", "c1", "r1");
  low.AddRequest("s1", "c2", "r2");
  low.AddRequest("s1", "c3", "r3");
  ThreeRequests out;
  auto diff = high.Load(low.Export("high"));
  EXPECT_TRUE(diff.ok()) << diff.status().ToString();
  if (!diff.ok()) return out;
  out.diff = *diff;
  for (const json& b : out.diff["batches"]) {
    bool has_user = false;
    for (const json& o : b["objects"]) has_user |= o["kind"] == "user";
    (has_user ? out.with_user : out.others.emplace_back()) = b["id"].get<std::string>();
  }
  return out;
}

TEST_F(SyncTest, ARequestBatchTakesItsRequesterAlongFromAnotherBatch) {
  // Regression: the requester travels in one of their request batches only, and accepting (or
  // denying) another of them first failed, the author not being on the high side yet.
  auto [diff, with_user, others] = LoadThreeRequestsOfOneScientist(*low_, *high_);
  ASSERT_FALSE(with_user.empty());
  ASSERT_EQ(others.size(), 2u);
  SyncDecisions d;
  d.accept = {others[0]};
  d.deny = {{others[1], "no"}};
  auto applied = high_->Apply(diff["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  // Only the requester came along: the request of the batch it travelled in is still to decide.
  EXPECT_EQ((*applied)["applied"], json::array({others[0]}));
  EXPECT_EQ((*applied)["denied"], json::array({others[1]}));
  EXPECT_TRUE(high_->store->GetUserById("s1").ok());
  const std::string denied = others[1].substr(std::string("request:").size());
  EXPECT_EQ(high_->store->GetRequest(denied)->status, "denied");
  const std::string waiting = with_user.substr(std::string("request:").size());
  EXPECT_FALSE(high_->store->GetRequest(waiting).ok());
  EXPECT_EQ((*applied)["summary"]["new"], 2) << applied->dump();  // its code and request
  // It is decided on its own later; its requester, already here, is the same.
  SyncDecisions later;
  later.accept = {with_user};
  auto rest = high_->Apply(diff["import_id"], later);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(high_->store->GetRequest(waiting)->status, "pending");
}

// Applies every batch of the next bundle from `from` on `to`; returns the diff it showed.
json SyncAll(Side& from, Side& to, const std::string& peer) {
  auto diff = to.Load(from.Export(peer));
  EXPECT_TRUE(diff.ok()) << diff.status().ToString();
  if (!diff.ok()) return json();
  SyncDecisions d;
  for (const json& b : (*diff)["batches"]) d.accept.push_back(b["id"]);
  auto applied = to.Apply((*diff)["import_id"], d);
  EXPECT_TRUE(applied.ok()) << applied.status().ToString();
  return *diff;
}

TEST_F(SyncTest, ADatasetDeletedOnTheHighSideGoesFromTheLowSide) {
  high_->AddDataset("d1", "MOCK-ROWS", "PRIVATE-ROWS");
  high_->AddDataset("d2", "MOCK-TWO", "PRIVATE-TWO");
  SyncAll(*high_, *low_, "low");
  ASSERT_TRUE(low_->store->GetDataset("d1").ok());
  // d3 is made and deleted before the low side ever had it: its deletion is not sent.
  high_->AddDataset("d3", "MOCK-THREE", "PRIVATE-THREE");
  ASSERT_TRUE(high_->store->SoftDeleteDataset("d1", 500).ok());
  ASSERT_TRUE(high_->store->SoftDeleteDataset("d3", 501).ok());
  json diff = SyncAll(*high_, *low_, "low");
  ASSERT_EQ(diff["batches"].size(), 1u) << diff.dump();
  EXPECT_EQ(diff["batches"][0]["id"], "dataset:d1");
  EXPECT_EQ(diff["batches"][0]["status"], "changed");
  EXPECT_EQ(low_->store->GetDataset("d1").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(low_->store->GetDataset("d2").ok());
  EXPECT_FALSE(low_->store->GetDataset("d3").ok());
  // Nothing more to send: the low side's deletion matches the high side's.
  auto again = low_->Load(high_->Export("low"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)["batches"].size(), 0u) << again->dump();
}

TEST_F(SyncTest, HighToLowCarriesMockDecisionAndReleasedResultOnly) {
  RequestOnHigh();
  high_->AddDataset("d1", "MOCK-ROWS", "PRIVATE-MARKER-ROWS");
  ASSERT_TRUE(high_->store->DecideRequest("r1", "approved", std::nullopt, "owner", 400).ok());
  store::Job j;
  j.id = "j1";
  j.code_id = "c1";
  j.user_id = "s1";
  j.inputs = "{}";
  j.result_format = "json";
  j.result_data = "{\"answer\": 42}";
  j.result_size = static_cast<int64_t>(j.result_data->size());
  j.stdout_text = "printed";
  j.stderr_text = "STDERR-MARKER";
  ASSERT_TRUE(high_->store->InsertDepositedJob(j).ok());
  store::Job held = j;
  held.id = "j2";
  held.result_data = "HELD-MARKER";
  held.result_size = 11;
  held.held = true;
  ASSERT_TRUE(high_->store->InsertDepositedJob(held).ok());

  const std::string bundle = high_->Export("low");
  for (const char* marker : {"PRIVATE-MARKER", "STDERR-MARKER", "HELD-MARKER", "secret-hash"}) {
    EXPECT_EQ(bundle.find(marker), std::string::npos) << marker;
  }
  EXPECT_NE(bundle.find("MOCK-ROWS"), std::string::npos);
  auto diff = low_->Load(bundle);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ((*diff)["direction"], "high_to_low");
  SyncDecisions d;
  for (const json& b : (*diff)["batches"]) d.accept.push_back(b["id"]);
  EXPECT_EQ(d.accept.size(), 2u);  // dataset:d1 and request:r1
  auto applied = low_->Apply((*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  auto ds = low_->store->GetDataset("d1");
  ASSERT_TRUE(ds.ok());
  ASSERT_EQ(ds->assets.size(), 1u);
  EXPECT_FALSE(ds->assets[0].data_blob_id.has_value());
  ASSERT_TRUE(ds->assets[0].mock_blob.has_value());
  EXPECT_EQ(low_->store->GetRequest("r1")->status, "approved");
  auto synced = low_->store->LastSyncedJob("c1");
  ASSERT_TRUE(synced.ok());
  EXPECT_EQ(synced->id, "j1");
  EXPECT_EQ(*low_->store->GetJobResult("j1"), std::optional<std::string>("{\"answer\": 42}"));
  EXPECT_FALSE(low_->store->GetJob("j2").ok());
  // Never leased on the low side.
  EXPECT_FALSE(low_->store->LeaseNextJob(1)->has_value());
  // The scientist's private run on the low side answers with the synced run.
  Principal scientist;
  scientist.role = auth::Role::kDataScientist;
  scientist.user_id = "s1";
  RunCode run;
  auto outcome = low_->code->Run(scientist, "c1", run);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->job.id, "j1");
  EXPECT_FALSE(outcome->created);
}

TEST_F(SyncTest, LowSidePrivateRunBeforeTheDecisionIsSyncedAnswersAsOneServer) {
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  low_->AddRequest("s1", "c1", "r1");
  Principal scientist;
  scientist.role = auth::Role::kDataScientist;
  scientist.user_id = "s1";
  auto pending = low_->code->Run(scientist, "c1", RunCode{});
  EXPECT_EQ(pending.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(pending.status().message().find("pending"), std::string::npos);
  ASSERT_TRUE(low_->store->DecideRequest("r1", "approved", std::nullopt, "sync", 1).ok());
  auto waiting = low_->code->Run(scientist, "c1", RunCode{});
  EXPECT_EQ(waiting.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(waiting.status().message().find("not been synced"), std::string::npos);
  EXPECT_FALSE(low_->store->LeaseNextJob(1)->has_value());
}

// The file at `path` as a blob to send.
sync::OutgoingBlob FileBlob(const std::string& path, int64_t size, const std::string& sha) {
  return {[path] { return blob::OpenFileReader(path); }, size, sha, path};
}

// A bundle signed by `from` for `to` whose objects section is `doc` (as a compromised server could
// make it).
std::string ForgeDoc(Side& from, Side& to, const std::string& doc, int64_t seq,
                     int64_t peer_seq_seen = 0, std::vector<sync::OutgoingBlob> blobs = {}) {
  sync::BundleHeader h;
  h.source.name = "forged";
  h.source.verify_key = from.Key();
  h.source.server_id = from.settings->identity().server_id;
  h.source.side = from.sync->side();
  h.destination_verify_key = to.Key();
  h.seq = seq;
  h.peer_seq_seen = peer_seq_seen;
  h.created_at = 1;
  auto src =
      sync::BundleSource::Create(h, doc, std::move(blobs), from.settings->identity().signing_key);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  std::string bytes;
  char buf[4096];
  while (true) {
    auto n = (*src)->Read(buf, sizeof buf);
    if (!n.ok() || *n == 0) break;
    bytes.append(buf, *n);
  }
  return bytes;
}

std::string Forge(Side& from, Side& to, const json& objects, int64_t seq,
                  const json& inventory = json::array()) {
  json doc = {{"objects", objects}, {"deleted", json::array()}, {"inventory", inventory}};
  return ForgeDoc(from, to, doc.dump(), seq);
}

json Object(const std::string& kind, const std::string& id, const std::string& root,
            const json& fields) {
  return {{"kind", kind},
          {"id", id},
          {"root", root},
          {"version", 1},
          {"hash", SyncObjectHash(fields, std::nullopt)},
          {"fields", fields},
          {"blob", nullptr}};
}

TEST_F(SyncTest, ALowBundleCarryingADatasetIsRefused) {
  json fields = {{"id", "d1"}, {"name", "forged"}};
  auto loaded = high_->Load(
      Forge(*low_, *high_, json::array({Object("dataset", "d1", "dataset:d1", fields)}), 1));
  EXPECT_EQ(Reason(loaded.status()), "kind not allowed");
  EXPECT_EQ(loaded.status().code(), StatusCode::kPermissionDenied);
  // A low side never exports one either.
  low_->AddDataset("d2", "m", "p");
  EXPECT_EQ(low_->Export("high").find("\"dataset\""), std::string::npos);
}

TEST_F(SyncTest, AHighBundleCarryingAUserIsRefused) {
  json fields = {{"id", "u1"}, {"email", "x@example.org"}, {"name", "x"}};
  auto loaded =
      low_->Load(Forge(*high_, *low_, json::array({Object("user", "u1", "user:u1", fields)}), 1));
  EXPECT_EQ(Reason(loaded.status()), "kind not allowed");
  EXPECT_FALSE(low_->store->GetUserById("u1").ok());
}

TEST_F(SyncTest, AUserClaimingAdminIsCappedAtDataScientist) {
  json fields = {
      {"id", "u1"},    {"email", "x@example.org"}, {"name", "x"},     {"institution", ""},
      {"website", ""}, {"created_at", 1},          {"role", "admin"}, {"password_hash", "known"}};
  auto diff =
      high_->Load(Forge(*low_, *high_, json::array({Object("user", "u1", "user:u1", fields)}), 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions d;
  d.accept = {"user:u1"};
  ASSERT_TRUE(high_->Apply((*diff)["import_id"], d).ok());
  auto u = high_->store->GetUserById("u1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->role, static_cast<int>(auth::Role::kDataScientist));
  EXPECT_NE(u->password_hash, "known");
}

TEST_F(SyncTest, AnExistingOwnerIsNeverTouched) {
  high_->AddUser("s1", "boss@example.org", auth::Role::kDataOwner);
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  auto diff = high_->Load(low_->Export("high"));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions d;
  d.accept = {"user:s1"};
  d.overwrite = {"user:s1"};
  auto applied = high_->Apply((*diff)["import_id"], d);
  EXPECT_EQ(applied.status().code(), StatusCode::kPermissionDenied);
  auto owner = high_->store->GetUserById("s1");
  EXPECT_EQ(owner->email, "boss@example.org");
  EXPECT_EQ(owner->role, static_cast<int>(auth::Role::kDataOwner));
}

TEST_F(SyncTest, ConflictNeedsOverwrite) {
  RequestOnHigh();
  // Changed on both sides since the last sync.
  store::User u = *high_->store->GetUserById("s1");
  u.name = "Changed on high";
  ASSERT_TRUE(high_->store->UpdateUser(u).ok());
  store::User l = *low_->store->GetUserById("s1");
  l.name = "Changed on low";
  ASSERT_TRUE(low_->store->UpdateUser(l).ok());
  auto diff = high_->Load(low_->Export("high"));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  ASSERT_EQ((*diff)["batches"].size(), 1u);
  EXPECT_EQ((*diff)["batches"][0]["status"], "conflict");
  SyncDecisions d;
  d.accept = {"request:r1"};
  EXPECT_EQ(high_->Apply((*diff)["import_id"], d).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(high_->store->GetUserById("s1")->name, "Changed on high");
  d.overwrite = {"request:r1"};
  ASSERT_TRUE(high_->Apply((*diff)["import_id"], d).ok());
  EXPECT_EQ(high_->store->GetUserById("s1")->name, "Changed on low");
}

TEST_F(SyncTest, IgnoredBatchStaysOutUntilUnignored) {
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  low_->AddRequest("s1", "c1", "r1");
  auto diff = high_->Load(low_->Export("high"));
  ASSERT_TRUE(diff.ok());
  SyncDecisions d;
  d.ignore = {"request:r1"};
  auto applied = high_->Apply((*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ((*applied)["batches"].size(), 0u);
  EXPECT_EQ((*applied)["ignored"], json::array({"request:r1"}));
  EXPECT_EQ((*applied)["summary"]["ignored"], 1);
  auto after = high_->sync->Diff(high_->admin, (*diff)["import_id"]);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)["batches"].size(), 0u);
  EXPECT_EQ((*after)["ignored"], json::array({"request:r1"}));
  // Not accepted: it comes again in the next bundle, and stays ignored.
  auto next = high_->Load(low_->Export("high"));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ((*next)["batches"].size(), 0u);
  EXPECT_EQ((*next)["summary"]["ignored"], 1);
  ASSERT_TRUE(high_->sync->Unignore(high_->admin, "low", "request:r1").ok());
  auto shown = high_->sync->Diff(high_->admin, (*next)["import_id"]);
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ((*shown)["batches"].size(), 1u);
}

TEST_F(SyncTest, UnacceptedBatchIsExportedAgain) {
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  low_->AddRequest("s1", "c1", "r1");
  auto first = high_->Load(low_->Export("high"));
  ASSERT_TRUE(first.ok());
  // The owner applies nothing; high's next bundle to low says what it holds (nothing from low).
  high_->AddDataset("d1", "m", "p");
  auto back = low_->Load(high_->Export("low"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto again = high_->Load(low_->Export("high"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ((*again)["batches"].size(), 1u);
  EXPECT_EQ((*again)["batches"][0]["id"], "request:r1");
}

TEST_F(SyncTest, ApplyIsAllOrNothing) {
  high_->AddDataset("d1", "MOCK", "PRIVATE");
  auto diff = low_->Load(high_->Export("low"));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  const auto blobs_before = low_->blobs->List()->size();
  low_->FailWritesOf("asset");
  SyncDecisions d;
  d.accept = {"dataset:d1"};
  auto applied = low_->Apply((*diff)["import_id"], d);
  EXPECT_EQ(applied.status().code(), StatusCode::kInternal);
  EXPECT_FALSE(low_->store->GetDataset("d1").ok());
  EXPECT_EQ(low_->blobs->List()->size(), blobs_before);
  EXPECT_EQ(low_->store->GetSyncPeer("high")->last_applied_seq, 0);
  low_->sync->SetApplyHookForTest(nullptr);
  ASSERT_TRUE(low_->Apply((*diff)["import_id"], d).ok());
  EXPECT_TRUE(low_->store->GetDataset("d1").ok());
}

TEST_F(SyncTest, RefusalsChangeNothing) {
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  const std::string bundle = low_->Export("high");
  // Tampered: one byte flipped in the objects.
  std::string tampered = bundle;
  tampered[tampered.size() - 5] ^= 1;
  EXPECT_EQ(Reason(high_->Load(tampered).status()), "tampered");
  EXPECT_EQ(Reason(high_->Load(bundle.substr(0, bundle.size() - 3)).status()), "truncated");
  // Meant for another server.
  Side third("high", "third");
  ASSERT_TRUE(third.sync->AddPeer(third.admin, "low", low_->Key()).ok());
  EXPECT_EQ(Reason(third.Load(bundle).status()), "wrong destination");
  // Signed by an unknown key.
  Side stranger("low", "stranger");
  ASSERT_TRUE(stranger.sync->AddPeer(stranger.admin, "high", high_->Key()).ok());
  EXPECT_EQ(Reason(high_->Load(stranger.Export("high")).status()), "unknown key");
  // Applied, then replayed; an older one is out of sequence.
  auto diff = high_->Load(bundle);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  const std::string second = low_->Export("high");
  auto diff2 = high_->Load(second);
  ASSERT_TRUE(diff2.ok());
  ASSERT_TRUE(high_->Apply((*diff2)["import_id"], {}).ok());
  EXPECT_EQ(Reason(high_->Load(second).status()), "replayed");
  EXPECT_EQ(Reason(high_->Load(bundle).status()), "out of sequence");
  // Revoked.
  ASSERT_TRUE(high_->sync->RevokePeer(high_->admin, "low").ok());
  EXPECT_EQ(Reason(high_->Load(low_->Export("high")).status()), "revoked key");
  EXPECT_FALSE(high_->store->GetUserById("s1").ok());
}

TEST_F(SyncTest, ADiffListsObjectsCompactlyAndGivesFieldsOnRequest) {
  for (const char* n : {"1", "2", "3"}) {
    low_->AddUser(std::string("s") + n, std::string("sci") + n + "@example.org",
                  auth::Role::kDataScientist);
    low_->AddRequest(std::string("s") + n, std::string("c") + n, std::string("r") + n);
  }
  auto diff = high_->Load(low_->Export("high"));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  const std::string id = (*diff)["import_id"];
  ASSERT_EQ((*diff)["batches"].size(), 3u);
  for (const json& o : (*diff)["batches"][0]["objects"]) {
    EXPECT_EQ(o.size(), 3u) << o.dump();  // kind, id, status: no fields
    EXPECT_EQ(o["status"], "new");
  }
  EXPECT_EQ((*diff)["summary"]["new"], 9);

  SyncDiffView page;
  page.fields = true;
  page.offset = 1;
  page.limit = 1;
  auto second = high_->sync->Diff(high_->admin, id, page);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)["summary"]["batches"], 3);
  ASSERT_EQ((*second)["batches"].size(), 1u);
  const json& batch = (*second)["batches"][0];
  EXPECT_EQ(batch["id"], (*diff)["batches"][1]["id"]);
  for (const json& o : batch["objects"]) {
    EXPECT_TRUE(o["incoming"].is_object());
    EXPECT_TRUE(o["local"].is_null());
    EXPECT_EQ(o["hash"].get<std::string>().size(), 64u);
  }
  page.offset = 3;
  EXPECT_EQ((*high_->sync->Diff(high_->admin, id, page))["batches"].size(), 0u);

  auto one = high_->sync->Batch(high_->admin, id, "request:r2");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)["state"], "pending");
  EXPECT_EQ((*one)["objects"].size(), 3u);
  EXPECT_TRUE((*one)["objects"][0]["incoming"].is_object());
  EXPECT_EQ(high_->sync->Batch(high_->admin, id, "request:none").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(high_->sync->Batch(high_->admin, "no-import", "request:r2").status().code(),
            StatusCode::kNotFound);

  // The apply answers the batches it wrote and the new summary; the kept diff moves with it.
  SyncDecisions d;
  d.accept = {"request:r2"};
  auto applied = high_->Apply(id, d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ((*applied)["applied"], json::array({"request:r2"}));
  ASSERT_EQ((*applied)["batches"].size(), 1u);
  EXPECT_EQ((*applied)["batches"][0]["state"], "applied");
  EXPECT_EQ((*applied)["summary"]["new"], 6);
  EXPECT_EQ((*applied)["summary"]["same"], 3);
  EXPECT_EQ((*applied)["summary"]["batches"], 3);
  auto shown = high_->sync->Batch(high_->admin, id, "request:r2");
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ((*shown)["state"], "applied");
  for (const json& o : (*shown)["objects"]) {
    EXPECT_EQ(o["status"], "same");
    EXPECT_EQ(o["local"], o["incoming"]);
  }
  EXPECT_EQ(high_->Apply(id, d).status().code(),
            StatusCode::kFailedPrecondition);  // decided already
}

TEST_F(SyncTest, AChangeHereAfterTheLoadIsSeenByTheApply) {
  RequestOnHigh();
  store::User l = *low_->store->GetUserById("s1");
  l.name = "Changed on low";
  ASSERT_TRUE(low_->store->UpdateUser(l).ok());
  auto diff = high_->Load(low_->Export("high"));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  ASSERT_EQ((*diff)["batches"].size(), 1u);
  EXPECT_EQ((*diff)["batches"][0]["status"], "changed");
  // Changed here after the diff was computed: the kept statuses are stale, and the apply must
  // not take the batch as merely changed.
  store::User u = *high_->store->GetUserById("s1");
  u.name = "Changed on high";
  ASSERT_TRUE(high_->store->UpdateUser(u).ok());
  SyncDecisions d;
  d.accept = {"request:r1"};
  EXPECT_EQ(high_->Apply((*diff)["import_id"], d).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(high_->store->GetUserById("s1")->name, "Changed on high");
  EXPECT_EQ((*high_->sync->Diff(high_->admin, (*diff)["import_id"]))["batches"][0]["status"],
            "conflict");
}

TEST_F(SyncTest, PeersAreForAdminsOnly) {
  Principal owner;
  owner.role = auth::Role::kDataOwner;
  owner.user_id = "o";
  EXPECT_EQ(low_->sync->Identity(owner).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(low_->sync->Export(owner, "high").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(low_->sync->BeginImport(owner).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(low_->sync->Diff(owner, "any").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(low_->sync->Batch(owner, "any", "request:r1").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(low_->sync->AddPeer(low_->admin, "high", NewUuid()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(low_->sync->AddPeer(low_->admin, "again", high_->Key()).status().code(),
            StatusCode::kAlreadyExists);
}

// ---- The sync review's findings (docs/SYNC.md, "Limits and checks"). ---------------------------

json UserFields(const std::string& id, const std::string& email, const std::string& name = "x") {
  return {{"id", id},          {"email", email}, {"name", name},
          {"institution", ""}, {"website", ""},  {"created_at", 1}};
}

// A request batch: scientist `user`, code `code` with `inputs`, request `request`.
json RequestBatch(const std::string& user, const std::string& code, const std::string& request,
                  const json& inputs = json::object(),
                  const std::string& code_hash =
                      "839a0012b49c400b9ba2594eace461cae36d6b76ffc09d52e801e4e45a5f3653") {
  const std::string root = "request:" + request;
  json c = {{"id", code},
            {"user_id", user},
            {"name", "f"},
            {"version", 1},
            {"source", "def f(data):\n    return 1\n"},
            {"code_hash", code_hash},
            {"inputs", inputs},
            {"output_policy", "single_execution"},
            {"output_limit", 1},
            {"created_at", 1},
            {"policy_spec", nullptr}};
  json r = {{"id", request}, {"code_id", code}, {"user_id", user},
            {"reason", "r"}, {"created_at", 1}, {"project_id", nullptr}};
  return json::array({Object("user", user, root, UserFields(user, user + "@example.org")),
                      Object("code", code, root, c), Object("request", request, root, r)});
}

// F1: a deeply nested objects section crashed the server at load (a recursion per level).
TEST_F(SyncTest, DeeplyNestedObjectsAreRefusedAtLoad) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string doc = "{\"objects\":[],\"deleted\":[],\"inventory\":" + deep + "}";
  auto loaded = high_->Load(ForgeDoc(*low_, *high_, doc, 1));
  EXPECT_EQ(Reason(loaded.status()), "tampered");
  EXPECT_NE(loaded.status().message().find("deeper than 64"), std::string::npos);
}

// F1/F5: one field over 1 MiB, a key over 256 bytes, or more JSON values than a bundle needs, are
// refused as the objects are read (the parse stops there), and so is a text that is not JSON.
TEST_F(SyncTest, OversizedFieldsAndValueFloodsAreRefusedAtLoad) {
  json fields = UserFields("u1", "u1@example.org", std::string((1 << 20) + 1, 'n'));
  auto big =
      high_->Load(Forge(*low_, *high_, json::array({Object("user", "u1", "user:u1", fields)}), 1));
  EXPECT_EQ(Reason(big.status()), "tampered");
  EXPECT_NE(big.status().message().find("a field is over 1 MiB"), std::string::npos);
  json keyed = UserFields("u1", "u1@example.org");
  keyed[std::string(257, 'k')] = 1;
  auto key =
      high_->Load(Forge(*low_, *high_, json::array({Object("user", "u1", "user:u1", keyed)}), 1));
  EXPECT_EQ(Reason(key.status()), "tampered");
  EXPECT_NE(key.status().message().find("a key is over 256 bytes"), std::string::npos);
  auto broken = high_->Load(ForgeDoc(*low_, *high_, "{\"objects\":[{\"kind\":", 1));
  EXPECT_EQ(Reason(broken.status()), "tampered");
  EXPECT_NE(broken.status().message().find("not the expected JSON"), std::string::npos);
  std::string flood = "{\"objects\":[],\"deleted\":[],\"inventory\":[0";
  for (int i = 0; i < 1'000'001; ++i) flood += ",0";
  flood += "]}";
  auto many = high_->Load(ForgeDoc(*low_, *high_, flood, 1));
  EXPECT_EQ(Reason(many.status()), "tampered");
  EXPECT_NE(many.status().message().find("too many JSON values"), std::string::npos);
}

// F5: pending imports are bounded in number (the oldest goes) and in age.
TEST_F(SyncTest, PendingImportsAreBoundedAndExpire) {
  const std::string bundle =
      Forge(*low_, *high_,
            json::array({Object("user", "u1", "user:u1", UserFields("u1", "a@b.org"))}), 1);
  std::vector<std::string> ids;
  for (int i = 0; i < 9; ++i) {
    high_->clock.AdvanceMillis(1000);
    auto d = high_->Load(bundle);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ids.push_back((*d)["import_id"]);
  }
  EXPECT_EQ(high_->sync->Diff(high_->admin, ids[0]).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(high_->sync->Diff(high_->admin, ids[8]).ok());
  high_->clock.AdvanceMillis(int64_t{25} * 3600 * 1000);
  EXPECT_EQ(high_->sync->Diff(high_->admin, ids[8]).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(high_->Apply(ids[8], {}).status().code(), StatusCode::kNotFound);
}

// F2: a denial wrote the whole batch past the conflict check, renaming a high-side scientist.
TEST_F(SyncTest, DenialObeysTheConflictRuleAndNeverTouchesALocalUser) {
  high_->AddUser("victim", "victim@high.example", auth::Role::kDataScientist);
  json objects = RequestBatch("u1", "c1", "r1");
  // The victim in the request's batch: refused since batches are checked at load.
  json misplaced = objects;
  misplaced.push_back(
      Object("user", "victim", "request:r1", UserFields("victim", "evil@example.org", "Hijacked")));
  EXPECT_EQ(high_->Load(Forge(*low_, *high_, misplaced, 1)).status().code(),
            StatusCode::kInvalidArgument);
  // As the requester of its own request: its batch is written by a denial, and refused.
  for (json& o : objects) {
    if (o["kind"] == "user") {
      o = Object("user", "victim", "request:r1",
                 UserFields("victim", "evil@example.org", "Hijacked"));
    } else {
      o["fields"]["user_id"] = "victim";
      o = Object(o["kind"], o["id"], o["root"], o["fields"]);
    }
  }
  auto diff = high_->Load(Forge(*low_, *high_, objects, 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions d;
  d.deny = {{"request:r1", "no"}};
  EXPECT_EQ(high_->Apply((*diff)["import_id"], d).status().code(), StatusCode::kAlreadyExists);
  d.overwrite = {"request:r1"};
  EXPECT_EQ(high_->Apply((*diff)["import_id"], d).status().code(), StatusCode::kPermissionDenied);
  SyncDecisions a;
  a.accept = a.overwrite = {"request:r1"};
  EXPECT_EQ(high_->Apply((*diff)["import_id"], a).status().code(), StatusCode::kPermissionDenied);
  auto victim = high_->store->GetUserById("victim");
  EXPECT_EQ(victim->name, "Name victim");
  EXPECT_EQ(victim->email, "victim@high.example");
  EXPECT_FALSE(high_->store->GetRequest("r1").ok());
}

// Received code counts against the storage limit as submitted code does (CodeService::Submit):
// its source and inputs, at their size.
TEST_F(SyncTest, ReceivedCodeCountsAgainstTheStorageLimit) {
  const int64_t before = high_->meter.used();
  auto diff = high_->Load(Forge(*low_, *high_, RequestBatch("u1", "c1", "r1"), 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions accept;
  accept.accept = {"request:r1"};
  auto applied = high_->Apply((*diff)["import_id"], accept);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  const int64_t code_bytes =
      static_cast<int64_t>(std::string("def f(data):\n    return 1\n").size() + 2);  // "{}"
  EXPECT_EQ(high_->meter.used(), before + code_bytes);
  EXPECT_EQ(high_->store->UserCodeUsage("u1")->bytes, code_bytes);
}

// F3: received code bound one asset while naming another, and its hash went unchecked.
TEST_F(SyncTest, ReceivedCodeIsDerivedAgainstThisSidesAssets) {
  high_->AddDataset("d1", "MOCK", "PRIVATE");
  json spoof = {{"data",
                 {{"asset_id", "asset-d1"},
                  {"dataset_id", "d0"},
                  {"dataset", "harmless"},
                  {"asset", "table"},
                  {"format", "csv"}}}};
  auto diff = high_->Load(Forge(*low_, *high_, RequestBatch("u1", "c1", "r1", spoof), 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions d;
  d.accept = {"request:r1"};
  ASSERT_TRUE(high_->Apply((*diff)["import_id"], d).ok());
  const json inputs = json::parse(high_->store->GetCode("c1")->inputs);
  EXPECT_EQ(inputs["data"]["dataset"], "census-d1");
  EXPECT_EQ(inputs["data"]["asset"], "people");
  EXPECT_EQ(inputs["data"]["dataset_id"], "d1");
}

TEST_F(SyncTest, ReceivedCodeWithAWrongHashOrABlobInputIsRefused) {
  json objects = RequestBatch("u1", "c1", "r1", json::object(), std::string(64, 'a'));
  for (const json& more : {RequestBatch("u2", "c2", "r2", {{"data", {{"blob_id", "b1"}}}}),
                           RequestBatch("u3", "c3", "r3", {{"data", {{"asset_id", "nowhere"}}}})}) {
    for (const json& o : more) objects.push_back(o);
  }
  auto diff = high_->Load(Forge(*low_, *high_, objects, 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  for (const std::string batch : {"request:r1", "request:r2", "request:r3"}) {
    SyncDecisions d;
    d.accept = {batch};
    auto applied = high_->Apply((*diff)["import_id"], d);
    EXPECT_FALSE(applied.ok()) << batch;
  }
  EXPECT_FALSE(high_->store->GetCode("c1").ok());
  EXPECT_FALSE(high_->store->GetCode("c2").ok());
  EXPECT_FALSE(high_->store->GetCode("c3").ok());
}

// F4: a second peer claimed a request received from the first, and got its decision and jobs.
TEST_F(SyncTest, AnObjectReceivedFromOnePeerCanNotBeClaimedByAnother) {
  RequestOnHigh();
  Side other("low", "other");
  ASSERT_TRUE(high_->sync->AddPeer(high_->admin, "other", other.Key()).ok());
  json r = {{"id", "r1"},       {"code_id", "c1"}, {"user_id", "s1"},
            {"reason", "mine"}, {"created_at", 1}, {"project_id", nullptr}};
  auto diff =
      high_->Load(Forge(other, *high_, json::array({Object("request", "r1", "request:r1", r)}), 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions d;
  d.accept = d.overwrite = {"request:r1"};
  EXPECT_EQ(high_->Apply((*diff)["import_id"], d).status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(high_->store->DecideRequest("r1", "approved", std::nullopt, "owner", 400).ok());
  ASSERT_TRUE(other.sync->AddPeer(other.admin, "high", high_->Key()).ok());
  const std::string to_other = high_->Export("other");
  EXPECT_EQ(to_other.find("\"decision\""), std::string::npos);
}

// F6: revoking or rotating a key left its pending imports applicable.
TEST_F(SyncTest, RevokingOrRotatingAKeyDropsItsPendingImports) {
  const std::string bundle =
      Forge(*low_, *high_,
            json::array({Object("user", "u1", "user:u1", UserFields("u1", "a@b.org"))}), 1);
  auto diff = high_->Load(bundle);
  ASSERT_TRUE(diff.ok());
  Side fresh("low", "fresh");
  ASSERT_TRUE(high_->sync->RotatePeer(high_->admin, "low", fresh.Key()).ok());
  SyncDecisions d;
  d.accept = {"user:u1"};
  EXPECT_FALSE(high_->Apply((*diff)["import_id"], d).ok());
  EXPECT_FALSE(high_->store->GetUserById("u1").ok());
}

TEST_F(SyncTest, RevokingAKeyDropsItsPendingImports) {
  auto diff = high_->Load(
      Forge(*low_, *high_,
            json::array({Object("user", "u1", "user:u1", UserFields("u1", "a@b.org"))}), 1));
  ASSERT_TRUE(diff.ok());
  ASSERT_TRUE(high_->sync->RevokePeer(high_->admin, "low").ok());
  SyncDecisions d;
  d.accept = {"user:u1"};
  EXPECT_FALSE(high_->Apply((*diff)["import_id"], d).ok());
  EXPECT_FALSE(high_->store->GetUserById("u1").ok());
}

// F7: loading alone moved peer_seq_seen (to 2^63-1, breaking every later export) and the inventory.
TEST_F(SyncTest, LoadingChangesNothingAndSequenceNumbersAreRangeChecked) {
  auto huge = high_->Load(
      ForgeDoc(*low_, *high_, "{\"objects\":[]}", 1, std::numeric_limits<int64_t>::max()));
  EXPECT_EQ(Reason(huge.status()), "tampered");
  EXPECT_EQ(high_->store->GetSyncPeer("low")->peer_seq_seen, 0);
  const json inventory = json::array({{{"kind", "dataset"}, {"id", "d9"}, {"hash", "h"}}});
  json doc = {{"objects", json::array()}, {"deleted", json::array()}, {"inventory", inventory}};
  auto diff = high_->Load(ForgeDoc(*low_, *high_, doc.dump(), 1, 5));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(high_->store->GetSyncPeer("low")->peer_seq_seen, 0);
  EXPECT_TRUE(high_->store->ListSyncObjects(store::SyncLedger::kInventory, "low")->empty());
  ASSERT_TRUE(high_->Apply((*diff)["import_id"], {}).ok());
  EXPECT_EQ(high_->store->GetSyncPeer("low")->peer_seq_seen, 5);
  EXPECT_EQ(high_->store->ListSyncObjects(store::SyncLedger::kInventory, "low")->size(), 1u);
}

// F8: a low -> high bundle could stage blobs no object uses.
TEST_F(SyncTest, ABlobNoObjectUsesIsRefused) {
  const std::string path = high_->dir + "/stray";
  {
    std::ofstream f(path, std::ios::binary);
    f << "filler";
  }
  const std::string sha = "e3f203a89cd90e2717b2f83fb184bc04493f6080010ed32f48a06e7fff1e975a";
  json doc = {{"objects", json::array()}, {"deleted", json::array()}, {"inventory", json::array()}};
  auto loaded = low_->Load(ForgeDoc(*high_, *low_, doc.dump(), 1, 0, {FileBlob(path, 6, sha)}));
  EXPECT_EQ(Reason(loaded.status()), "tampered");
  EXPECT_NE(loaded.status().message().find("no object uses"), std::string::npos);
}

// A high side takes no kind that carries a blob: a bundle whose header lists one is refused at the
// header, before any of its bytes is written to disk (a cold attack filled a high side's disk past
// its storage limit with blobs that were refused only once whole).
TEST_F(SyncTest, AHighSideRefusesABundleListingBlobsAtItsHeader) {
  const std::string path = low_->dir + "/blob";
  {
    std::ofstream f(path, std::ios::binary);
    f << "filler";
  }
  const std::string sha = "e3f203a89cd90e2717b2f83fb184bc04493f6080010ed32f48a06e7fff1e975a";
  json doc = {{"objects", json::array()}, {"deleted", json::array()}, {"inventory", json::array()}};
  auto loaded = high_->Load(ForgeDoc(*low_, *high_, doc.dump(), 1, 0, {FileBlob(path, 6, sha)}));
  EXPECT_EQ(Reason(loaded.status()), "kind not allowed") << loaded.status().ToString();
  EXPECT_NE(loaded.status().message().find("carries no blob"), std::string::npos);
}

// F8: staged blobs count against the storage limit, with those of pending imports.
TEST_F(SyncTest, StagedBlobsCountAgainstTheStorageLimit) {
  StorageMeter small{10};
  SyncOptions options;
  options.storage = &small;
  low_->sync = std::make_unique<SyncService>(*low_->store, *low_->blobs, *low_->settings,
                                             *low_->code, low_->clock, options);
  const std::string path = low_->dir + "/mock";
  {
    std::ofstream f(path, std::ios::binary);
    f << "filler";
  }
  const std::string sha = "e3f203a89cd90e2717b2f83fb184bc04493f6080010ed32f48a06e7fff1e975a";
  json mock = {
      {"sha256", sha}, {"size", 6}, {"format", "csv"}, {"schema", nullptr}, {"meta", nullptr}};
  json asset = {{"id", "a1"},
                {"dataset_id", "d1"},
                {"position", 0},
                {"name", "t"},
                {"description", ""},
                {"format", "csv"},
                {"metadata", json::object()},
                {"mock", mock}};
  json object = Object("asset", "a1", "dataset:d1", asset);
  object["blob"] = sha;
  object["hash"] = SyncObjectHash(asset, sha);
  json doc = {
      {"objects", json::array({object})}, {"deleted", json::array()}, {"inventory", json::array()}};
  ASSERT_TRUE(low_->Load(ForgeDoc(*high_, *low_, doc.dump(), 1, 0, {FileBlob(path, 6, sha)})).ok());
  // Six bytes pending, six more would pass ten.
  auto second = low_->Load(ForgeDoc(*high_, *low_, doc.dump(), 1, 0, {FileBlob(path, 6, sha)}));
  EXPECT_EQ(second.status().code(), StatusCode::kResourceExhausted);
}

// F9: an older import applied after a newer one undid the newer one.
TEST_F(SyncTest, AnOlderImportCanNotApplyAfterANewerOne) {
  auto first = high_->Load(
      Forge(*low_, *high_,
            json::array({Object("user", "u1", "user:u1", UserFields("u1", "u1@b.org", "old")),
                         Object("user", "u2", "user:u2", UserFields("u2", "u2@b.org", "old"))}),
            1));
  ASSERT_TRUE(first.ok());
  SyncDecisions one;
  one.accept = {"user:u1"};
  ASSERT_TRUE(high_->Apply((*first)["import_id"], one).ok());
  auto second = high_->Load(Forge(
      *low_, *high_,
      json::array({Object("user", "u2", "user:u2", UserFields("u2", "u2@b.org", "new"))}), 2));
  ASSERT_TRUE(second.ok());
  SyncDecisions two;
  two.accept = {"user:u2"};
  ASSERT_TRUE(high_->Apply((*second)["import_id"], two).ok());
  auto stale = high_->Apply((*first)["import_id"], two);
  EXPECT_EQ(Reason(stale.status()), "out of sequence");
  EXPECT_EQ(high_->store->GetUserById("u2")->name, "new");
}

// F10: an email held here blocked a whole accept-all; it is now that batch's conflict.
TEST_F(SyncTest, AnEmailHeldHereIsThatBatchsConflictWhateverItsCase) {
  high_->AddUser("h1", "taken@example.org", auth::Role::kDataScientist);
  auto diff = high_->Load(
      Forge(*low_, *high_,
            json::array({Object("user", "u1", "user:u1", UserFields("u1", "TAKEN@Example.org")),
                         Object("user", "u2", "user:u2", UserFields("u2", "free@example.org"))}),
            1));
  ASSERT_TRUE(diff.ok());
  std::map<std::string, std::string> status;
  for (const json& b : (*diff)["batches"]) status[b["id"]] = b["status"];
  EXPECT_EQ(status["user:u1"], "conflict");
  EXPECT_EQ(status["user:u2"], "new");
  SyncDecisions d;
  d.accept = {"user:u2"};
  ASSERT_TRUE(high_->Apply((*diff)["import_id"], d).ok());
  EXPECT_TRUE(high_->store->GetUserById("u2").ok());
  EXPECT_FALSE(high_->store->GetUserById("u1").ok());
}

}  // namespace
}  // namespace datasite::services

namespace datasite::services {
namespace {

// Exports from `from` to `to`, loads it there and accepts every batch of the diff; the diff.
json SyncEverything(Side& from, const std::string& to_name, Side& to) {
  auto diff = to.Load(from.Export(to_name));
  EXPECT_TRUE(diff.ok()) << diff.status().ToString();
  if (!diff.ok()) return json();
  SyncDecisions d;
  for (const json& b : (*diff)["batches"]) d.accept.push_back(b["id"]);
  if (!d.accept.empty()) {
    auto applied = to.Apply((*diff)["import_id"], d);
    EXPECT_TRUE(applied.ok()) << applied.status().ToString();
  }
  return *diff;
}

// The next bundle from high to low has nothing to change there.
void ExpectNothingMoreToSync(Side& high, Side& low) {
  auto diff = low.Load(high.Export("low"));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_TRUE((*diff)["batches"].empty()) << (*diff).dump();
}

// The dataset as the low side must hold it: the high side's metadata and its assets' mocks.
void ExpectSameDataset(Side& high, Side& low, const std::string& id) {
  auto h = high.store->GetDataset(id);
  auto l = low.store->GetDataset(id);
  ASSERT_TRUE(h.ok() && l.ok());
  EXPECT_EQ(l->name, h->name);
  EXPECT_EQ(l->summary, h->summary);
  EXPECT_EQ(l->description, h->description);
  EXPECT_EQ(l->citation, h->citation);
  EXPECT_EQ(l->url, h->url);
  EXPECT_EQ(l->updated_at, h->updated_at);
  ASSERT_EQ(l->contributors.size(), h->contributors.size());
  ASSERT_EQ(l->assets.size(), h->assets.size());
  for (size_t i = 0; i < h->assets.size(); ++i) {
    EXPECT_EQ(l->assets[i].id, h->assets[i].id);
    EXPECT_EQ(l->assets[i].name, h->assets[i].name);
    EXPECT_FALSE(l->assets[i].data_blob_id.has_value());  // never the private data
    ASSERT_TRUE(l->assets[i].mock_blob.has_value());
    EXPECT_EQ(l->assets[i].mock_blob->sha256, h->assets[i].mock_blob->sha256);
  }
}

TEST_F(SyncTest, AnAssetAddedToASyncedDatasetReachesTheLowSide) {
  high_->AddDataset("d1", "MOCK-ROWS", "PRIVATE-MARKER-ROWS");
  SyncEverything(*high_, "low", *low_);
  store::Asset a;
  a.id = "asset-2";
  a.name = "visits";
  a.description = "second";
  a.format = "csv";
  a.data_blob_id = high_->PutBlob("PRIVATE-SECOND-MARKER");
  a.mock_blob_id = high_->PutBlob("SECOND-MOCK");
  ASSERT_TRUE(high_->store->InsertAsset("d1", a, 500).ok());

  const std::string bundle = high_->Export("low");
  EXPECT_EQ(bundle.find("PRIVATE-SECOND-MARKER"), std::string::npos);
  EXPECT_EQ(bundle.find("PRIVATE-MARKER-ROWS"), std::string::npos);
  EXPECT_NE(bundle.find("SECOND-MOCK"), std::string::npos);
  auto diff = low_->Load(bundle);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  ASSERT_EQ((*diff)["batches"].size(), 1u);
  EXPECT_EQ((*diff)["batches"][0]["id"], "dataset:d1");
  SyncDecisions d;
  d.accept = {"dataset:d1"};
  auto applied = low_->Apply((*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  ExpectSameDataset(*high_, *low_, "d1");
  EXPECT_EQ(low_->MockBytes("d1", "visits"), "SECOND-MOCK");
  EXPECT_EQ(low_->MockBytes("d1", "people"), "MOCK-ROWS");
  EXPECT_EQ(low_->store->GetDataset("d1")->updated_at, 500);
  ExpectNothingMoreToSync(*high_, *low_);
}

TEST_F(SyncTest, AReplacedMockReachesTheLowSideAndItsOldBlobGoes) {
  high_->AddDataset("d1", "OLD-MOCK", "PRIVATE-MARKER-ROWS");
  SyncEverything(*high_, "low", *low_);
  const std::string old_blob = *low_->store->GetDataset("d1")->assets[0].mock_blob_id;
  // The owner's replace on the high side: a new mock blob, the old one deleted.
  const std::string fresh = high_->PutBlob("NEW-MOCK");
  auto replaced = high_->store->ReplaceAssetMock("asset-d1", fresh, 600);
  ASSERT_TRUE(replaced.ok() && replaced->has_value());

  const std::string bundle = high_->Export("low");
  EXPECT_EQ(bundle.find("PRIVATE-MARKER-ROWS"), std::string::npos);
  EXPECT_NE(bundle.find("NEW-MOCK"), std::string::npos);
  auto diff = low_->Load(bundle);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  ASSERT_EQ((*diff)["batches"].size(), 1u);
  EXPECT_EQ((*diff)["batches"][0]["status"], "changed");
  const auto blobs_before = low_->blobs->List()->size();

  // A failed apply keeps the old mock and leaves no new blob behind; the import still applies.
  low_->FailWritesOf("asset");
  SyncDecisions d;
  d.accept = {"dataset:d1"};
  auto failed = low_->Apply((*diff)["import_id"], d);
  EXPECT_EQ(failed.status().code(), StatusCode::kInternal);
  EXPECT_EQ(low_->MockBytes("d1", "people"), "OLD-MOCK");
  EXPECT_EQ(low_->blobs->List()->size(), blobs_before);
  EXPECT_TRUE(low_->store->GetBlob(old_blob).ok());
  low_->sync->SetApplyHookForTest(nullptr);

  auto applied = low_->Apply((*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  ExpectSameDataset(*high_, *low_, "d1");
  EXPECT_EQ(low_->MockBytes("d1", "people"), "NEW-MOCK");
  EXPECT_EQ(low_->store->GetDataset("d1")->updated_at, 600);
  // The old mock is gone, its row and its file; nothing else was left.
  EXPECT_EQ(low_->store->GetBlob(old_blob).status().code(), StatusCode::kNotFound);
  auto files = *low_->blobs->List();
  EXPECT_EQ(std::count(files.begin(), files.end(), old_blob), 0);
  EXPECT_EQ(files.size(), blobs_before);
  ExpectNothingMoreToSync(*high_, *low_);
}

// A mock a sync brought counts against the server's storage limit as an upload's does, and stops
// counting when a replacement deletes it.
TEST_F(SyncTest, SyncedMocksCountAgainstTheStorageLimit) {
  const int64_t before = low_->meter.used();
  high_->AddDataset("d1", "OLD-MOCK", "PRIVATE-MARKER-ROWS");
  SyncEverything(*high_, "low", *low_);
  EXPECT_EQ(low_->meter.used(), before + 8);
  const std::string fresh = high_->PutBlob("A-LONGER-MOCK");
  auto replaced = high_->store->ReplaceAssetMock("asset-d1", fresh, 600);
  ASSERT_TRUE(replaced.ok() && replaced->has_value());
  SyncEverything(*high_, "low", *low_);
  EXPECT_EQ(low_->MockBytes("d1", "people"), "A-LONGER-MOCK");
  EXPECT_EQ(low_->meter.used(), before + 13);
}

TEST_F(SyncTest, DatasetMetadataChangesReachTheLowSide) {
  high_->AddDataset("d1", "MOCK-ROWS", "PRIVATE-MARKER-ROWS");
  SyncEverything(*high_, "low", *low_);
  store::Dataset d = *high_->store->GetDataset("d1");
  d.summary = "a new summary";
  d.description = "a longer description";
  d.citation = "cite me";
  d.url = "https://example.org/d1";
  d.contributors.push_back({"Ada", "ada@example.org", "author", "", ""});
  d.updated_at = 700;
  ASSERT_TRUE(high_->store->UpdateDataset(d).ok());

  const std::string bundle = high_->Export("low");
  EXPECT_EQ(bundle.find("PRIVATE-MARKER-ROWS"), std::string::npos);
  auto diff = low_->Load(bundle);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  ASSERT_EQ((*diff)["batches"].size(), 1u);
  EXPECT_EQ((*diff)["batches"][0]["status"], "changed");
  SyncDecisions accept;
  accept.accept = {"dataset:d1"};
  auto applied = low_->Apply((*diff)["import_id"], accept);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  ExpectSameDataset(*high_, *low_, "d1");
  EXPECT_EQ(low_->store->GetDataset("d1")->contributors.at(0).email, "ada@example.org");
  ExpectNothingMoreToSync(*high_, *low_);
}

// A high side may add assets to a dataset it sent and replace their mocks; it can't move an asset
// into another dataset, put one in a dataset its batch is not about, or change an asset otherwise.
TEST_F(SyncTest, AnAssetCanNotMoveDatasetOrChangeOtherThanItsMock) {
  high_->AddDataset("d1", "MOCK-ONE", "PRIVATE-ONE");
  high_->AddDataset("d2", "MOCK-TWO", "PRIVATE-TWO");
  SyncEverything(*high_, "low", *low_);
  const int64_t seq = low_->store->GetSyncPeer("high")->last_applied_seq;
  auto asset = [](const std::string& id, const std::string& dataset, const std::string& name) {
    return json{{"id", id},
                {"dataset_id", dataset},
                {"position", 1},
                {"name", name},
                {"description", ""},
                {"format", "csv"},
                {"metadata", json::object()},
                {"mock", nullptr}};
  };
  struct Case {
    const char* what;
    json object;
    StatusCode code;
  };
  std::vector<Case> cases = {
      {"moved into d2", Object("asset", "asset-d1", "dataset:d2", asset("asset-d1", "d2", "x")),
       StatusCode::kPermissionDenied},
      {"renamed", Object("asset", "asset-d1", "dataset:d1", asset("asset-d1", "d1", "renamed")),
       StatusCode::kFailedPrecondition},
  };
  int64_t next = seq;
  // An asset outside its own dataset's batch is refused at load.
  EXPECT_EQ(low_->Load(Forge(*high_, *low_,
                             json::array({Object("asset", "asset-new", "dataset:d2",
                                                 asset("asset-new", "d1", "x"))}),
                             ++next))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  for (const Case& c : cases) {
    auto diff = low_->Load(Forge(*high_, *low_, json::array({c.object}), ++next));
    ASSERT_TRUE(diff.ok()) << c.what << ": " << diff.status().ToString();
    ASSERT_EQ((*diff)["batches"].size(), 1u) << c.what;
    SyncDecisions d;
    d.accept = {(*diff)["batches"][0]["id"]};
    d.overwrite = d.accept;
    auto applied = low_->Apply((*diff)["import_id"], d);
    EXPECT_EQ(applied.status().code(), c.code) << c.what << ": " << applied.status().ToString();
    // Nothing changed: both datasets as the high side sent them.
    ExpectSameDataset(*high_, *low_, "d1");
    ExpectSameDataset(*high_, *low_, "d2");
    EXPECT_FALSE(low_->store->GetDatasetByAsset("asset-new").ok()) << c.what;
    EXPECT_EQ(low_->store->GetSyncPeer("high")->last_applied_seq, seq) << c.what;
  }
}

// Attack F4: accepting a request pulled in the whole batch its requester travelled in, even one
// the owner ignored, with whatever else the low side put there.
TEST_F(SyncTest, ARequesterInAnIgnoredBatchHoldsItsRequestBack) {
  json objects = json::array({Object("user", "u1", "user:u1", UserFields("u1", "a@b.org"))});
  for (const json& o : RequestBatch("u1", "c1", "r1")) {
    if (o["kind"] != "user") objects.push_back(o);
  }
  auto diff = high_->Load(Forge(*low_, *high_, objects, 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions both;
  both.ignore = {"user:u1"};
  both.accept = {"request:r1"};
  EXPECT_EQ(high_->Apply((*diff)["import_id"], both).status().code(),
            StatusCode::kFailedPrecondition);
  SyncDecisions ignore;
  ignore.ignore = {"user:u1"};
  ASSERT_TRUE(high_->Apply((*diff)["import_id"], ignore).ok());
  SyncDecisions accept;
  accept.accept = {"request:r1"};
  auto refused = high_->Apply((*diff)["import_id"], accept);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("ignored"), std::string::npos);
  EXPECT_FALSE(high_->store->GetUserById("u1").ok());
  EXPECT_FALSE(high_->store->GetRequest("r1").ok());
}

// Attack F4: a project smuggled into a user's batch, and objects in batches their kind can't be
// in, are refused when the bundle is loaded.
TEST_F(SyncTest, AnObjectOutsideTheBatchItsKindAllowsIsRefused) {
  const json project = {{"id", "p1"},
                        {"name", "p"},
                        {"description", ""},
                        {"created_by", "u1"},
                        {"created_at", 1},
                        {"members", json::array()},
                        {"events", json::array()}};
  std::vector<json> misplaced = {
      Object("project", "p1", "user:u1", project),
      Object("user", "u2", "user:u1", UserFields("u2", "b@b.org")),
      Object("user", "u2", "request:r1", UserFields("u2", "b@b.org")),
      Object("request", "r2", "request:r1", {{"id", "r2"}, {"code_id", "c1"}, {"user_id", "u1"}}),
  };
  for (const json& extra : misplaced) {
    json objects = RequestBatch("u1", "c1", "r1");
    objects.push_back(extra);
    auto diff = high_->Load(Forge(*low_, *high_, objects, 1));
    EXPECT_EQ(diff.status().code(), StatusCode::kInvalidArgument) << extra.dump();
    EXPECT_NE(diff.status().message().find("in a batch its kind can't be in"), std::string::npos)
        << diff.status().ToString();
  }
}

// Attack F2: a low side made code and requests in the name of a scientist of this side (never
// received from it), and asked for that scientist's own code; their runs then went to the low side.
TEST_F(SyncTest, ALowSideCanNotActInTheNameOfThisSidesScientists) {
  high_->AddUser("victim", "victim@high.example", auth::Role::kDataScientist);
  high_->AddRequest("victim", "vc1", "vr1");
  // New code and a request in the victim's name (the victim's user object is not sent).
  json planted = RequestBatch("victim", "c1", "r1");
  planted.erase(0);
  // A request for the victim's own code.
  const json own = {{"id", "r2"},         {"code_id", "vc1"}, {"user_id", "victim"},
                    {"reason", "please"}, {"created_at", 1},  {"project_id", nullptr}};
  for (const json& objects : {planted, json::array({Object("request", "r2", "request:r2", own)})}) {
    auto diff = high_->Load(Forge(*low_, *high_, objects, 1));
    ASSERT_TRUE(diff.ok()) << diff.status().ToString();
    SyncDecisions d;
    for (const json& b : (*diff)["batches"]) d.accept.push_back(b["id"]);
    auto applied = high_->Apply((*diff)["import_id"], d);
    EXPECT_EQ(applied.status().code(), StatusCode::kPermissionDenied) << objects.dump();
    EXPECT_NE(applied.status().message().find("received from peer"), std::string::npos)
        << applied.status().ToString();
  }
  EXPECT_FALSE(high_->store->GetCode("c1").ok());
  EXPECT_FALSE(high_->store->GetRequest("r1").ok());
  EXPECT_FALSE(high_->store->GetRequest("r2").ok());
  // The same objects from the peer's own scientist are written.
  auto diff = high_->Load(Forge(*low_, *high_, RequestBatch("u1", "c1", "r1"), 2));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions d;
  d.accept = {"request:r1"};
  auto applied = high_->Apply((*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(high_->store->GetRequest("r1")->user_id, "u1");
}

// Attack F3: a project named this side's accounts (an owner among them) as its creator, members
// and the authors of its messages.
TEST_F(SyncTest, AProjectNamesOnlyAccountsReceivedFromItsPeer) {
  high_->AddUser("victim", "victim@high.example", auth::Role::kDataScientist);
  high_->AddUser("owner", "owner@high.example", auth::Role::kDataOwner);
  json objects = RequestBatch("u1", "c1", "r1");
  auto project = [](const std::string& creator) {
    json events = json::array();
    for (const char* actor : {"u1", "owner", "victim"}) {
      events.push_back({{"id", std::string("e-") + actor},
                        {"kind", "message"},
                        {"actor_id", actor},
                        {"request_id", nullptr},
                        {"text", std::string("from ") + actor},
                        {"at", 5}});
    }
    events.push_back({{"id", "e-request"},
                      {"kind", "request"},
                      {"actor_id", "u1"},
                      {"request_id", "vr1"},
                      {"text", ""},
                      {"at", 6}});
    return Object("project", "p1", "project:p1",
                  {{"id", "p1"},
                   {"name", "p"},
                   {"description", ""},
                   {"created_by", creator},
                   {"created_at", 1},
                   {"members", json::array({"u1", "victim", "owner"})},
                   {"events", events}});
  };
  high_->AddRequest("victim", "vc1", "vr1");
  json by_owner = objects;
  by_owner.push_back(project("owner"));
  auto diff = high_->Load(Forge(*low_, *high_, by_owner, 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions all;
  all.accept = {"request:r1", "project:p1"};
  EXPECT_EQ(high_->Apply((*diff)["import_id"], all).status().code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(high_->store->GetProject("p1").ok());

  objects.push_back(project("u1"));
  diff = high_->Load(Forge(*low_, *high_, objects, 2));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  // The project first in the decisions: it is still written after the request it names.
  all.accept = {"project:p1", "request:r1"};
  auto applied = high_->Apply((*diff)["import_id"], all);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  auto p = high_->store->GetProject("p1");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->members.size(), 1u);
  EXPECT_EQ(p->members[0].user_id, "u1");
  auto events = high_->store->ProjectEvents("p1", 0, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].actor_id, "u1");
  EXPECT_EQ((*events)[0].text, "from u1");
}

// A scientist's requests accepted in one apply, the batch their account came in last: the account
// is written first, and its own batch then finds it received from the same peer.
TEST_F(SyncTest, AllOfAScientistsRequestsInOneApplyWhateverTheOrder) {
  auto [diff, with_user, others] = LoadThreeRequestsOfOneScientist(*low_, *high_);
  ASSERT_FALSE(with_user.empty());
  SyncDecisions d;
  d.accept = others;
  d.accept.push_back(with_user);
  auto applied = high_->Apply(diff["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ((*applied)["applied"].size(), 3u);
  EXPECT_EQ((*applied)["summary"]["new"], 0) << applied->dump();
  for (const char* r : {"r1", "r2", "r3"}) EXPECT_TRUE(high_->store->GetRequest(r).ok()) << r;
}

// The load's answer is written out directly: the same document as the diff's JSON, whatever
// bytes the peer's ids hold.
TEST_F(SyncTest, TheLoadsTextIsTheDiffsJson) {
  const std::string odd = std::string("u\"1\\\n\x01\x1f") + "\xc3\xa9\xe2\x82\xac/<b>";
  json objects = json::array({Object("user", odd, "user:" + odd, UserFields(odd, "a@b.org"))});
  for (const json& o : RequestBatch("u2", "c2", "r2")) objects.push_back(o);
  auto loaded = high_->Load(Forge(*low_, *high_, objects, 1));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto diff = high_->sync->Diff(high_->admin, (*loaded)["import_id"]);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(*loaded, *diff);
  ASSERT_EQ((*loaded)["batches"].size(), 2u);
  EXPECT_EQ((*loaded)["batches"][0]["objects"][0]["id"], odd);
  EXPECT_EQ((*loaded)["batches"][0]["root"]["id"], odd);
}

// Review F1: once a request had gone up and the high side's inventory had come back, a change to
// its requester travelled in the request's batch without the request, and every later bundle of
// an honest low side was refused as tampered.
TEST_F(SyncTest, ARequesterChangedAfterTheirRequestWentOverStillSyncs) {
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  low_->AddRequest("s1", "c1", "r1");
  SyncAll(*low_, *high_, "high");
  SyncAll(*high_, *low_, "low");  // carries the high side's inventory back
  auto user = low_->store->GetUserById("s1");
  ASSERT_TRUE(user.ok());
  user->name = "Renamed";
  ASSERT_TRUE(low_->store->UpdateUser(*user).ok());
  low_->AddRequest("s1", "c2", "r2");
  json diff = SyncAll(*low_, *high_, "high");
  ASSERT_FALSE(diff.is_null());
  std::set<std::string> batches;
  for (const json& b : diff["batches"]) batches.insert(b["id"]);
  EXPECT_EQ(batches, (std::set<std::string>{"request:r1", "request:r2"})) << diff.dump();
  EXPECT_EQ(high_->store->GetUserById("s1")->name, "Renamed");
  EXPECT_TRUE(high_->store->GetRequest("r2").ok());
  // A request this side never received from the peer does not vouch for a user in its batch.
  high_->AddUser("local", "local@high.example", auth::Role::kDataScientist);
  high_->AddRequest("local", "lc", "lr");
  auto forged = high_->Load(Forge(
      *low_, *high_,
      json::array({Object("user", "s1", "request:lr", UserFields("s1", "sci@example.org"))}), 9));
  EXPECT_EQ(forged.status().code(), StatusCode::kInvalidArgument);
}

// Review F2: one object twice in a bundle (a benign and a hostile source of one code) showed the
// owner both and wrote one.
TEST_F(SyncTest, AnObjectTwiceInABundleIsRefused) {
  json objects = RequestBatch("u1", "c1", "r1");
  json evil = objects[1];
  evil["fields"]["source"] = "def f(data):\n    return 'EVIL'\n";
  objects.push_back(Object("code", "c1", "request:r1", evil["fields"]));
  auto loaded = high_->Load(Forge(*low_, *high_, objects, 1));
  EXPECT_EQ(Reason(loaded.status()), "tampered");
  EXPECT_NE(loaded.status().message().find("in the bundle twice"), std::string::npos);
}

// Review F3/F4: a project's event naming a request not taken in made the apply fail (500); a
// request taken in with its project was never filed in it.
TEST_F(SyncTest, AProjectAndItsRequestsInOneApplyOrApart) {
  json objects = RequestBatch("u1", "c1", "r1");
  objects[2]["fields"]["project_id"] = "p1";
  objects[2] = Object("request", "r1", "request:r1", objects[2]["fields"]);
  json more = RequestBatch("u1", "c2", "r2");
  objects.push_back(more[1]);
  objects.push_back(more[2]);
  json events = json::array();
  for (const char* r : {"r1", "r2"}) {
    events.push_back({{"id", std::string("e-") + r},
                      {"kind", "request"},
                      {"actor_id", "u1"},
                      {"request_id", r},
                      {"text", ""},
                      {"at", 5}});
  }
  objects.push_back(Object("project", "p1", "project:p1",
                           {{"id", "p1"},
                            {"name", "p"},
                            {"description", ""},
                            {"created_by", "u1"},
                            {"created_at", 1},
                            {"members", json::array({"u1"})},
                            {"events", events}}));
  auto diff = high_->Load(Forge(*low_, *high_, objects, 1));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  SyncDecisions d;
  d.accept = {"project:p1", "request:r1"};  // r2 stays to be decided
  auto applied = high_->Apply((*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(high_->store->GetRequest("r1")->project_id, std::optional<std::string>("p1"));
  auto kept = high_->store->ProjectEvents("p1", 0, 100);
  ASSERT_TRUE(kept.ok());
  std::set<std::string> ids;
  for (const store::ProjectEvent& e : *kept) ids.insert(e.id);
  EXPECT_TRUE(ids.count("e-r1"));
  EXPECT_FALSE(ids.count("e-r2"));
}

}  // namespace
}  // namespace datasite::services
