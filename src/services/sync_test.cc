#include "services/sync.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
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
    CodeOptions options;
    options.results_dir = dir + "/results";
    code = std::make_unique<CodeService>(*store, *blobs, *settings, *queue, meter, clock, options);
    sync = std::make_unique<SyncService>(*store, *blobs, *settings, *code, clock);
    admin.role = auth::Role::kAdmin;
    admin.user_id = "admin-" + name;
  }
  ~Side() {
    sync.reset();
    code.reset();
    queue.reset();
    settings.reset();
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

  Result<json> Load(const std::string& bundle) {
    ASSIGN_OR_RETURN(auto sink, sync->BeginImport(admin));
    // In uneven chunks, as an upload arrives.
    for (size_t at = 0; at < bundle.size(); at += 777) {
      RETURN_IF_ERROR(sink->Write(std::string_view(bundle).substr(at, 777)));
    }
    return sink->Finish();
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
    c.source = "def f(data):\n    return 1\n";
    c.code_hash = "hash-" + code_id;
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

  std::string dir;
  FakeClock clock;
  StorageMeter meter{int64_t{1} << 40};
  std::unique_ptr<store::Store> store;
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
    auto applied = high_->sync->Apply(high_->admin, (*diff)["import_id"], d);
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
  auto applied = high_->sync->Apply(high_->admin, (*diff)["import_id"], d);
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
  EXPECT_EQ((*applied)["diff"]["batches"][0]["state"], "applied");
  // The next bundle from low carries nothing new: high's inventory says it holds them.
  auto again = high_->Load(low_->Export("high"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)["batches"].size(), 0u);
}

TEST_F(SyncTest, ARequestBatchTakesItsRequesterAlongFromAnotherBatch) {
  // Regression: the requester travels in one of their request batches only, and accepting (or
  // denying) another of them first failed, the author not being on the high side yet.
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  low_->AddRequest("s1", "c1", "r1");
  low_->AddRequest("s1", "c2", "r2");
  low_->AddRequest("s1", "c3", "r3");
  auto diff = high_->Load(low_->Export("high"));
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  std::string with_user;
  std::vector<std::string> others;
  for (const json& b : (*diff)["batches"]) {
    bool has_user = false;
    for (const json& o : b["objects"]) has_user |= o["kind"] == "user";
    (has_user ? with_user : others.emplace_back()) = b["id"].get<std::string>();
  }
  ASSERT_FALSE(with_user.empty());
  ASSERT_EQ(others.size(), 2u);
  SyncDecisions d;
  d.accept = {others[0]};
  d.deny = {{others[1], "no"}};
  auto applied = high_->sync->Apply(high_->admin, (*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ((*applied)["applied"], json::array({with_user, others[0]}));
  EXPECT_EQ((*applied)["denied"], json::array({others[1]}));
  EXPECT_TRUE(high_->store->GetUserById("s1").ok());
  const std::string denied = others[1].substr(std::string("request:").size());
  EXPECT_EQ(high_->store->GetRequest(denied)->status, "denied");
  for (const json& b : (*applied)["diff"]["batches"]) {
    EXPECT_NE(b["state"], "pending") << b["id"];
  }
}

// Applies every batch of the next bundle from `from` on `to`; returns the diff it showed.
json SyncAll(Side& from, Side& to, const std::string& peer) {
  auto diff = to.Load(from.Export(peer));
  EXPECT_TRUE(diff.ok()) << diff.status().ToString();
  if (!diff.ok()) return json();
  SyncDecisions d;
  for (const json& b : (*diff)["batches"]) d.accept.push_back(b["id"]);
  auto applied = to.sync->Apply(to.admin, (*diff)["import_id"], d);
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
  auto applied = low_->sync->Apply(low_->admin, (*diff)["import_id"], d);
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

// A bundle signed by `from` for `to` carrying `objects` (as a compromised server could make it).
std::string Forge(Side& from, Side& to, const json& objects, int64_t seq) {
  sync::BundleHeader h;
  h.source.name = "forged";
  h.source.verify_key = from.Key();
  h.source.server_id = from.settings->identity().server_id;
  h.source.side = from.sync->side();
  h.destination_verify_key = to.Key();
  h.seq = seq;
  h.created_at = 1;
  json doc = {{"objects", objects}, {"deleted", json::array()}, {"inventory", json::array()}};
  auto src = sync::BundleSource::Create(h, doc.dump(), {}, from.settings->identity().signing_key);
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
  ASSERT_TRUE(high_->sync->Apply(high_->admin, (*diff)["import_id"], d).ok());
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
  auto applied = high_->sync->Apply(high_->admin, (*diff)["import_id"], d);
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
  EXPECT_EQ(high_->sync->Apply(high_->admin, (*diff)["import_id"], d).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(high_->store->GetUserById("s1")->name, "Changed on high");
  d.overwrite = {"request:r1"};
  ASSERT_TRUE(high_->sync->Apply(high_->admin, (*diff)["import_id"], d).ok());
  EXPECT_EQ(high_->store->GetUserById("s1")->name, "Changed on low");
}

TEST_F(SyncTest, IgnoredBatchStaysOutUntilUnignored) {
  low_->AddUser("s1", "sci@example.org", auth::Role::kDataScientist);
  low_->AddRequest("s1", "c1", "r1");
  auto diff = high_->Load(low_->Export("high"));
  ASSERT_TRUE(diff.ok());
  SyncDecisions d;
  d.ignore = {"request:r1"};
  auto applied = high_->sync->Apply(high_->admin, (*diff)["import_id"], d);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ((*applied)["diff"]["batches"].size(), 0u);
  EXPECT_EQ((*applied)["diff"]["ignored"], json::array({"request:r1"}));
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
  low_->sync->SetApplyHookForTest([](const SyncObject& o) -> Status {
    if (o.kind == "asset") return InternalError("injected");
    return Status::Ok();
  });
  SyncDecisions d;
  d.accept = {"dataset:d1"};
  auto applied = low_->sync->Apply(low_->admin, (*diff)["import_id"], d);
  EXPECT_EQ(applied.status().code(), StatusCode::kInternal);
  EXPECT_FALSE(low_->store->GetDataset("d1").ok());
  EXPECT_EQ(low_->blobs->List()->size(), blobs_before);
  EXPECT_EQ(low_->store->GetSyncPeer("high")->last_applied_seq, 0);
  low_->sync->SetApplyHookForTest(nullptr);
  ASSERT_TRUE(low_->sync->Apply(low_->admin, (*diff)["import_id"], d).ok());
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
  ASSERT_TRUE(high_->sync->Apply(high_->admin, (*diff2)["import_id"], {}).ok());
  EXPECT_EQ(Reason(high_->Load(second).status()), "replayed");
  EXPECT_EQ(Reason(high_->Load(bundle).status()), "out of sequence");
  // Revoked.
  ASSERT_TRUE(high_->sync->RevokePeer(high_->admin, "low").ok());
  EXPECT_EQ(Reason(high_->Load(low_->Export("high")).status()), "revoked key");
  EXPECT_FALSE(high_->store->GetUserById("s1").ok());
}

TEST_F(SyncTest, PeersAreForAdminsOnly) {
  Principal owner;
  owner.role = auth::Role::kDataOwner;
  owner.user_id = "o";
  EXPECT_EQ(low_->sync->Identity(owner).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(low_->sync->Export(owner, "high").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(low_->sync->BeginImport(owner).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(low_->sync->AddPeer(low_->admin, "high", NewUuid()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(low_->sync->AddPeer(low_->admin, "again", high_->Key()).status().code(),
            StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace datasite::services
