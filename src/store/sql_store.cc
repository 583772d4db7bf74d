// The Store, written once over the SQL engines of sql.h (SQLite, PostgreSQL). One connection,
// serialized by a (recursive) mutex; every acknowledged write is durable (SQLite: WAL with
// synchronous=FULL; PostgreSQL: synchronous commits).
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "store/audit_log.h"
#include "store/postgres_schema.h"
#include "store/sql.h"
#include "store/store.h"

namespace datasite::store {
namespace {

// The schema version PostgreSQL support starts at: an empty PostgreSQL database gets
// kPostgresBaseline, equal to kMigrations up to this version; later versions are in kMigrations
// and, in PostgreSQL's form, in kPostgresMigrations.
constexpr int64_t kPostgresBaselineVersion = 18;

// Version 28 on both engines (SQLite reads BIGINT as INTEGER): grants, a data owner's approval of a
// request for repeated use (CodeService::Approve), who may run which code hash how often; each job
// admitted under one names it, and jobs_grant finds a user's runs under a grant in a window
// without reading their other jobs.
constexpr const char* kGrantsSchema = R"sql(
CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  request_id TEXT NOT NULL REFERENCES code_requests(id),
  code_id TEXT NOT NULL REFERENCES user_code(id),
  code_hash TEXT NOT NULL,
  inputs TEXT NOT NULL,
  per_minute BIGINT,
  per_hour BIGINT,
  per_day BIGINT,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT,
  revoked_by TEXT
);
CREATE INDEX grants_request ON grants(request_id);
CREATE INDEX grants_created ON grants(created_at);
CREATE TABLE grant_users (
  grant_id TEXT NOT NULL REFERENCES grants(id),
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  position BIGINT NOT NULL,
  PRIMARY KEY (user_id, grant_id)
);
CREATE INDEX grant_users_grant ON grant_users(grant_id, position);
ALTER TABLE jobs ADD COLUMN grant_id TEXT;
CREATE INDEX jobs_grant ON jobs(grant_id, user_id, created_at) WHERE grant_id IS NOT NULL;
)sql";

// Version 29 on both engines: a data owner's output checks per dataset (the rules a run nobody
// reviews must pass, services/output_checks.h), and why a run's output is held when a rule held it.
constexpr const char* kOutputChecksSchema = R"sql(
CREATE TABLE output_checks (
  dataset_id TEXT PRIMARY KEY REFERENCES datasets(id),
  rules TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
ALTER TABLE jobs ADD COLUMN held_reason TEXT NOT NULL DEFAULT '';
)sql";

// Version 30 on both engines: custom API endpoints (services/endpoints.h).
constexpr const char* kApiEndpointsSchema = R"sql(
CREATE TABLE api_endpoints (
  path TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  mock_state TEXT NOT NULL DEFAULT '{}',
  mock_state_version BIGINT NOT NULL DEFAULT 0,
  private_state TEXT NOT NULL DEFAULT '{}',
  private_state_version BIGINT NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX api_endpoints_created ON api_endpoints(created_at);
)sql";

// Version 31 on both engines: differential privacy (dp/, services/dp.h): a policy per asset, what
// each data scientist and all of them spent of its budget, and every release.
constexpr const char* kDpSchema = R"sql(
CREATE TABLE dp_policies (
  asset_id TEXT PRIMARY KEY,
  policy TEXT NOT NULL,
  bounding_key BIGINT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE dp_budgets (
  asset_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  rho_spent BIGINT NOT NULL DEFAULT 0,
  delta_spent BIGINT NOT NULL DEFAULT 0,
  rho_extra BIGINT NOT NULL DEFAULT 0,
  delta_extra BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (asset_id, user_id)
);
CREATE TABLE dp_releases (
  id TEXT PRIMARY KEY,
  asset_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  query TEXT NOT NULL,
  answer TEXT NOT NULL,
  rho BIGINT NOT NULL,
  delta BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX dp_releases_asset ON dp_releases(asset_id, created_at);
)sql";

// Version 32 on both engines: worker pools (services/pools.h): each environment ("image"), pool
// ("pool") and code's pool ("code", by code id) as a JSON document under its key.
constexpr const char* kWorkerPoolsSchema = R"sql(
CREATE TABLE worker_pool_records (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  doc TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (kind, key)
);
)sql";

// The schema, one entry per version. Never edit a released entry: append a new one.
constexpr const char* kMigrations[] = {
    // Version 1: accounts, sessions, settings, identity, audit.
    R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  role INTEGER NOT NULL,
  institution TEXT NOT NULL DEFAULT '',
  website TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,
  is_root INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE sessions (
  token_hash BLOB PRIMARY KEY,
  user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
  role INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE settings (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  organization TEXT NOT NULL,
  description TEXT NOT NULL,
  deployed_on TEXT NOT NULL,
  signup_enabled INTEGER NOT NULL,
  notifications_enabled INTEGER NOT NULL,
  admin_email TEXT NOT NULL,
  server_type TEXT NOT NULL,
  server_side_type TEXT NOT NULL,
  association_request_auto_approval INTEGER NOT NULL,
  allow_guest_sessions INTEGER NOT NULL,
  welcome_markdown TEXT NOT NULL
);
CREATE TABLE server_identity (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  server_id TEXT NOT NULL,
  verify_key BLOB NOT NULL,
  signing_key BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL
);
)sql",
    // Version 2: blobs, datasets, assets.
    R"sql(
CREATE TABLE blobs (
  id TEXT PRIMARY KEY,
  owner_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  format TEXT NOT NULL,
  schema TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE datasets (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  summary TEXT NOT NULL,
  description TEXT NOT NULL,
  citation TEXT NOT NULL,
  url TEXT NOT NULL,
  contributors TEXT NOT NULL,
  uploader_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
);
CREATE UNIQUE INDEX datasets_live_name ON datasets(name) WHERE deleted_at IS NULL;
CREATE INDEX datasets_created ON datasets(created_at);
CREATE TABLE assets (
  id TEXT PRIMARY KEY,
  dataset_id TEXT NOT NULL REFERENCES datasets(id),
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  format TEXT NOT NULL,
  mock_is_real INTEGER NOT NULL,
  data_blob_id TEXT UNIQUE REFERENCES blobs(id),
  mock_blob_id TEXT UNIQUE REFERENCES blobs(id),
  UNIQUE (dataset_id, name)
);
)sql",
    // Version 3: user code, requests, jobs; the output-review setting.
    R"sql(
ALTER TABLE settings ADD COLUMN output_review INTEGER NOT NULL DEFAULT 0;
CREATE TABLE user_code (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  source TEXT NOT NULL,
  code_hash TEXT NOT NULL,
  inputs TEXT NOT NULL,
  output_policy TEXT NOT NULL,
  output_limit INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (user_id, code_hash),
  UNIQUE (user_id, name, version)
);
CREATE TABLE code_requests (
  id TEXT PRIMARY KEY,
  code_id TEXT NOT NULL UNIQUE REFERENCES user_code(id),
  user_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  status TEXT NOT NULL,
  deny_reason TEXT,
  reviewer_id TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  code_id TEXT NOT NULL REFERENCES user_code(id),
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  inputs TEXT NOT NULL,
  timeout_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  result_format TEXT NOT NULL DEFAULT '',
  result_size INTEGER NOT NULL DEFAULT 0,
  result BLOB,
  held INTEGER NOT NULL DEFAULT 0,
  stdout TEXT NOT NULL DEFAULT '',
  stderr TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_status ON jobs(status, seq);
CREATE INDEX jobs_code ON jobs(code_id, kind, status);
CREATE INDEX jobs_user ON jobs(user_id, seq);
)sql",
    // Version 4: listing pages walk the live datasets newest first through this index; without a
    // search they skip rows (OFFSET) without reading the table. It replaces datasets_created.
    R"sql(
CREATE INDEX datasets_live ON datasets(deleted_at, created_at);
DROP INDEX datasets_created;
)sql",
    // Version 5: fair leasing (priority, users' turns), the bytes each job keeps (per-user quotas;
    // read through jobs_usage only, as they sit behind a row's large result and logs), and the
    // mock runs whose outputs expired.
    R"sql(
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN kept_result_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN kept_log_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET priority = 1 WHERE kind = 'review';
UPDATE jobs SET
  kept_result_bytes = CASE WHEN status = 'completed' THEN result_size ELSE 0 END,
  kept_log_bytes = length(CAST(stdout AS BLOB)) + length(CAST(stderr AS BLOB))
  WHERE status NOT IN ('queued', 'running');
CREATE INDEX jobs_usage ON jobs(user_id, kind, status, kept_result_bytes, kept_log_bytes);
CREATE TABLE job_turns (
  user_id TEXT PRIMARY KEY,
  turn INTEGER NOT NULL
);
CREATE INDEX job_turns_turn ON job_turns(turn);
CREATE TABLE expired_outputs (
  job_id TEXT PRIMARY KEY REFERENCES jobs(id),
  expired_at INTEGER NOT NULL
);
)sql",
    // Version 6: mocks generated before this version could reveal private data (keys, row counts,
    // null positions, lengths, ranges). The audit log names them ("blob.generate_mock" on
    // "blob:<id>"); a mock whose blob has no audit event at all (an append that failed) is flagged
    // too, since it can't be told from a generated one. Generated mocks no asset uses yet are
    // dropped (Datasets::Recover removes their files), so none can be published later.
    R"sql(
ALTER TABLE assets ADD COLUMN mock_needs_regeneration INTEGER NOT NULL DEFAULT 0;
CREATE TEMP TABLE generated_mocks AS
  SELECT DISTINCT substr(target, 6) AS id FROM audit_events
  WHERE action = 'blob.generate_mock' AND target LIKE 'blob:%';
UPDATE assets SET mock_needs_regeneration = 1
  WHERE mock_blob_id IS NOT NULL AND (
    mock_blob_id IN (SELECT id FROM generated_mocks) OR
    NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.action = 'blob.upload' AND
                e.target = 'blob:' || assets.mock_blob_id));
DELETE FROM blobs WHERE id IN (SELECT id FROM generated_mocks) AND NOT EXISTS (
  SELECT 1 FROM assets a WHERE a.data_blob_id = blobs.id OR a.mock_blob_id = blobs.id);
DROP TABLE generated_mocks;
)sql",
    // Version 7: an asset's descriptive metadata (contributors, data subjects) as a JSON object.
    R"sql(
ALTER TABLE assets ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
)sql",
    // Version 8: typed sidecars (what a CSV can't say: dtypes, index, categories, ...) beside a
    // blob and beside a job's CSV result; '' when there is none (files from before, JSON, .npy).
    R"sql(
ALTER TABLE blobs ADD COLUMN meta TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN result_meta TEXT NOT NULL DEFAULT '';
)sql",
    // Version 9: a failed run on private data keeps its error text apart (error_detail, for data
    // owners until one releases it) from what its requester sees (error: a fixed text of its
    // failure kind); the errors kept before this version move there. Results a data owner
    // deposited; each decision on a request, in order.
    R"sql(
ALTER TABLE jobs ADD COLUMN failure TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN error_detail TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN error_released INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN deposited INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET error_detail = error, failure = 'unknown',
  error = 'the run failed on private data (its error text is shown to data owners only)'
  WHERE kind != 'mock' AND error != '' AND status NOT IN ('queued', 'running', 'completed');
CREATE TABLE request_decisions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL REFERENCES code_requests(id),
  status TEXT NOT NULL,
  reason TEXT,
  reviewer_id TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX request_decisions_request ON request_decisions(request_id, seq);
INSERT INTO request_decisions (request_id, status, reason, reviewer_id, at)
  SELECT id, status, deny_reason, reviewer_id, updated_at FROM code_requests
  WHERE status != 'pending' AND reviewer_id IS NOT NULL ORDER BY updated_at;
)sql",
    // Version 10: custom policies of code (their source and init kwargs, fixed with the code) and
    // the state they keep between private runs.
    R"sql(
CREATE TABLE code_policies (
  code_id TEXT PRIMARY KEY REFERENCES user_code(id),
  spec TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT '',
  version INTEGER NOT NULL DEFAULT 0
);
)sql",
    // Version 11: projects (a name, a description, members and events in order); a request may
    // belong to one.
    R"sql(
CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (created_by, name)
);
CREATE TABLE project_members (
  project_id TEXT NOT NULL REFERENCES projects(id),
  user_id TEXT NOT NULL,
  PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members(user_id, project_id);
CREATE TABLE project_events (
  project_id TEXT NOT NULL REFERENCES projects(id),
  seq INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  request_id TEXT REFERENCES code_requests(id),
  status TEXT,
  text TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (project_id, seq)
);
ALTER TABLE code_requests ADD COLUMN project_id TEXT;
CREATE INDEX code_requests_project ON code_requests(project_id, created_at);
)sql",
    // Version 12: the server-wide data subject registry (PySyft's data_subject_registry), and
    // which subject is a member of which.
    R"sql(
CREATE TABLE data_subjects (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  aliases TEXT NOT NULL DEFAULT '[]',
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE data_subject_members (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  parent TEXT NOT NULL REFERENCES data_subjects(name),
  child TEXT NOT NULL REFERENCES data_subjects(name),
  UNIQUE (parent, child)
);
)sql",
    // Version 13: in-app notifications, the mail outbox, the mail settings (one row; its password
    // is a secret no route returns), users' opt-out of mail, and password reset tokens (hashed).
    R"sql(
CREATE TABLE notifications (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  from_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  link_kind TEXT NOT NULL,
  link_id TEXT NOT NULL,
  read INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX notifications_user ON notifications(user_id, seq);
CREATE TABLE mail_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient TEXT NOT NULL,
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  body_text TEXT NOT NULL,
  body_html TEXT NOT NULL,
  batchable INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  sent_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mail_outbox_unsent ON mail_outbox(sent_at, not_before);
CREATE INDEX mail_outbox_recipient ON mail_outbox(recipient, sent_at);
CREATE TABLE mail_settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  host TEXT NOT NULL,
  port INTEGER NOT NULL,
  security TEXT NOT NULL,
  username TEXT NOT NULL,
  password TEXT NOT NULL,
  sender TEXT NOT NULL,
  base_url TEXT NOT NULL
);
CREATE TABLE mail_opt_outs (
  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE
);
CREATE TABLE password_resets (
  token_hash BLOB PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  requested_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX password_resets_user ON password_resets(user_id);
)sql",
    // Version 14: the audit log becomes a hash chain (store/audit_log.h): each entry keeps the
    // hash of the one before it and its own. The entries written before this version are chained
    // in this same migration, in seq order, from the genesis of the server (ChainLegacyAudit), so
    // the whole history is covered; a retention prune leaves a signed checkpoint.
    R"sql(
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE TABLE audit_checkpoint (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  at INTEGER NOT NULL,
  signature BLOB NOT NULL
);
)sql",
    // Version 15: sync (issue 14). The change log, written by triggers on every syncable table in
    // the change's own transaction, with the origin a sync apply sets in change_origin (one row,
    // '' = a local change); synced jobs (origin = the peer's key: never leased, never re-run);
    // the peers, their revoked keys, what was exchanged with each per object, what each says it
    // holds from us, ignored batches and pending imports.
    R"sql(
CREATE TABLE change_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  object_id TEXT NOT NULL,
  op TEXT NOT NULL,
  origin TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX change_log_object ON change_log(kind, object_id, seq);
CREATE TABLE change_origin (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  origin TEXT NOT NULL
);
INSERT INTO change_origin (singleton, origin) VALUES (1, '');
ALTER TABLE jobs ADD COLUMN origin TEXT NOT NULL DEFAULT '';
CREATE TABLE sync_peers (
  name TEXT PRIMARY KEY,
  verify_key TEXT NOT NULL UNIQUE,
  side TEXT,
  added_at INTEGER NOT NULL,
  revoked_at INTEGER,
  last_sent_seq INTEGER NOT NULL DEFAULT 0,
  last_applied_seq INTEGER NOT NULL DEFAULT 0,
  peer_seq_seen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sync_revoked_keys (
  verify_key TEXT PRIMARY KEY,
  peer TEXT NOT NULL,
  revoked_at INTEGER NOT NULL
);
CREATE TABLE sync_objects (
  peer TEXT NOT NULL,
  kind TEXT NOT NULL,
  object_id TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (peer, kind, object_id)
);
CREATE TABLE sync_inventory (
  peer TEXT NOT NULL,
  kind TEXT NOT NULL,
  object_id TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (peer, kind, object_id)
);
CREATE TABLE sync_ignored (
  peer TEXT NOT NULL,
  batch TEXT NOT NULL,
  PRIMARY KEY (peer, batch)
);
CREATE TABLE sync_imports (
  id TEXT PRIMARY KEY,
  peer TEXT NOT NULL,
  seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL
);
CREATE TRIGGER change_users_insert AFTER INSERT ON users BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'user', NEW.id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_users_update AFTER UPDATE ON users BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'user', NEW.id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_users_delete AFTER DELETE ON users BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'user', OLD.id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_user_code_insert AFTER INSERT ON user_code BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'code', NEW.id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_user_code_update AFTER UPDATE ON user_code BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'code', NEW.id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_user_code_delete AFTER DELETE ON user_code BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'code', OLD.id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_code_policies_insert AFTER INSERT ON code_policies BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'code', NEW.code_id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_code_policies_update AFTER UPDATE ON code_policies BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'code', NEW.code_id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_code_policies_delete AFTER DELETE ON code_policies BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'code', OLD.code_id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_code_requests_insert AFTER INSERT ON code_requests BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'request', NEW.id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_code_requests_update AFTER UPDATE ON code_requests BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'request', NEW.id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_code_requests_delete AFTER DELETE ON code_requests BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'request', OLD.id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_request_decisions_insert AFTER INSERT ON request_decisions BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'decision', NEW.request_id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_request_decisions_update AFTER UPDATE ON request_decisions BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'decision', NEW.request_id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_request_decisions_delete AFTER DELETE ON request_decisions BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'decision', OLD.request_id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_datasets_insert AFTER INSERT ON datasets BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'dataset', NEW.id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_datasets_update AFTER UPDATE ON datasets BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'dataset', NEW.id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_datasets_delete AFTER DELETE ON datasets BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'dataset', OLD.id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_assets_insert AFTER INSERT ON assets BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'asset', NEW.id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_assets_update AFTER UPDATE ON assets BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'asset', NEW.id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_assets_delete AFTER DELETE ON assets BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'asset', OLD.id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_projects_insert AFTER INSERT ON projects BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', NEW.id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_projects_update AFTER UPDATE ON projects BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', NEW.id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_projects_delete AFTER DELETE ON projects BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', OLD.id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_project_members_insert AFTER INSERT ON project_members BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', NEW.project_id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_project_members_update AFTER UPDATE ON project_members BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', NEW.project_id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_project_members_delete AFTER DELETE ON project_members BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', OLD.project_id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_project_events_insert AFTER INSERT ON project_events BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', NEW.project_id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_project_events_update AFTER UPDATE ON project_events BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', NEW.project_id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_project_events_delete AFTER DELETE ON project_events BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'project', OLD.project_id, 'delete', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_jobs_insert AFTER INSERT ON jobs BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'job', NEW.id, 'insert', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_jobs_update AFTER UPDATE OF status, held, result_size, result, error, error_released ON jobs
  WHEN NEW.status NOT IN ('queued', 'running') BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'job', NEW.id, 'update', origin, unixepoch() FROM change_origin;
END;
CREATE TRIGGER change_jobs_delete AFTER DELETE ON jobs BEGIN
  INSERT INTO change_log (kind, object_id, op, origin, at)
    SELECT 'job', OLD.id, 'delete', origin, unixepoch() FROM change_origin;
END;
)sql",
    // Version 16: what each job charges its user's quota (see Store::ChargeJobBytes): the parts
    // of its output the user may read, never the sizes of those they may not. Existing rows get
    // the readable parts by the rules of CodeService::MaySee*.
    R"sql(
ALTER TABLE jobs ADD COLUMN charged_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET charged_bytes = CASE
  WHEN kind = 'mock' THEN kept_result_bytes + kept_log_bytes
  WHEN kind = 'review' OR held != 0 OR status IN ('queued', 'running') THEN 0
  ELSE CASE WHEN status = 'completed' THEN kept_result_bytes ELSE 0 END
    + CASE WHEN status = 'completed' OR error_released != 0 OR NOT EXISTS
        (SELECT 1 FROM code_policies p WHERE p.code_id = jobs.code_id)
      THEN kept_log_bytes - min(length(CAST(stderr AS BLOB)), kept_log_bytes) ELSE 0 END
    + CASE WHEN error_released != 0
      THEN min(length(CAST(stderr AS BLOB)), kept_log_bytes) ELSE 0 END
  END
  WHERE kept_result_bytes + kept_log_bytes > 0;
DROP INDEX jobs_usage;
CREATE INDEX jobs_usage ON jobs(user_id, kind, status, kept_result_bytes, kept_log_bytes,
  charged_bytes);
)sql",
    // Version 17: what each job counts against the server's storage limit (see
    // Store::SetJobMeteredBytes): a part its requester may read at its size, one they may not at
    // its ceiling. Existing rows keep counting their size (the ceilings are the server's options).
    R"sql(
ALTER TABLE jobs ADD COLUMN metered_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET metered_bytes = kept_result_bytes + kept_log_bytes;
)sql",
    // Version 18: the queue's contract in the database (issue 15): a running job's lease has an
    // owner (the worker process) and an expiry its heartbeat moves on; a kill of a running job is
    // a flag its owner acts on. Jobs running at the upgrade have an expired lease of no owner:
    // the next start recovers them, as before.
    R"sql(
ALTER TABLE jobs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN kill_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_lease ON jobs(status, lease_owner);
)sql",
    // Version 19: the versions caches check, as rows bumped in the change's own transaction
    // (issue 15), so that every process sharing the database sees a change to users and sessions
    // (auth), datasets and their assets (catalog) or the settings. PostgreSQL's form also notifies
    // listening processes (kPostgresMigrations).
    R"sql(
CREATE TABLE versions (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO versions (name, value) VALUES ('auth', 0), ('catalog', 0), ('settings', 0);
CREATE TRIGGER version_users_update AFTER UPDATE ON users BEGIN
  UPDATE versions SET value = value + 1 WHERE name IN ('auth', 'catalog');
END;
CREATE TRIGGER version_users_delete AFTER DELETE ON users BEGIN
  UPDATE versions SET value = value + 1 WHERE name IN ('auth', 'catalog');
END;
CREATE TRIGGER version_sessions_update AFTER UPDATE ON sessions BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'auth';
END;
CREATE TRIGGER version_sessions_delete AFTER DELETE ON sessions BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'auth';
END;
CREATE TRIGGER version_datasets_insert AFTER INSERT ON datasets BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'catalog';
END;
CREATE TRIGGER version_datasets_update AFTER UPDATE ON datasets BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'catalog';
END;
CREATE TRIGGER version_datasets_delete AFTER DELETE ON datasets BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'catalog';
END;
CREATE TRIGGER version_assets_insert AFTER INSERT ON assets BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'catalog';
END;
CREATE TRIGGER version_assets_update AFTER UPDATE ON assets BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'catalog';
END;
CREATE TRIGGER version_assets_delete AFTER DELETE ON assets BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'catalog';
END;
CREATE TRIGGER version_settings_insert AFTER INSERT ON settings BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'settings';
END;
CREATE TRIGGER version_settings_update AFTER UPDATE ON settings BEGIN
  UPDATE versions SET value = value + 1 WHERE name = 'settings';
END;
)sql",
    // Version 20: rate-limit events kept in the database (auth::SharedEventLog), so that the
    // login limits hold across servers sharing it. Used by PostgreSQL servers; SQLite's one
    // server keeps its events in memory.
    R"sql(
CREATE TABLE rate_events (
  key TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX rate_events_key ON rate_events(key, at);
)sql",
    // Version 21: the answers of requests sent with an Idempotency-Key, committed with the
    // request's changes (see Store::RunIdempotent); `body` is NULL when the answer was not kept.
    R"sql(
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  body BLOB,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
)sql",
    // Version 22: a mail whose body carries a secret (a password-reset token) says when that
    // secret dies; its body is blanked once sent and the mail dropped unsent once the secret has
    // died or been revoked (see MarkMailSent, DropExpiredMail). Bodies of reset mails sent before
    // are blanked here; an unsent one lives as long as its user's longest unused token.
    R"sql(
ALTER TABLE mail_outbox ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
UPDATE mail_outbox SET body_text = '', body_html = '' WHERE kind = 'password_reset' AND sent_at <> 0;
UPDATE mail_outbox SET expires_at = 1000 * coalesce(
    (SELECT max(r.expires_at) FROM password_resets r
     WHERE r.user_id = mail_outbox.user_id AND r.used_at = 0), 1)
  WHERE kind = 'password_reset' AND sent_at = 0;
)sql",
    // Version 23: PostgreSQL's jobs notifications say what changed (nothing on SQLite, whose one
    // server hears no notification).
    R"sql(
SELECT 1;
)sql",
    // Version 24: what each code version keeps (source, inputs, custom policies' spec), counted
    // against its author's quota and the storage limit (see Store::UserCodeUsage). A table of its
    // own: user_code's rows are immutable, and an update of them would be a change to sync.
    R"sql(
CREATE TABLE code_bytes (
  code_id TEXT PRIMARY KEY REFERENCES user_code(id),
  user_id TEXT NOT NULL,
  bytes INTEGER NOT NULL
);
INSERT INTO code_bytes (code_id, user_id, bytes)
  SELECT c.id, c.user_id, length(CAST(c.source AS BLOB)) + length(CAST(c.inputs AS BLOB)) +
    coalesce((SELECT length(CAST(p.spec AS BLOB)) FROM code_policies p WHERE p.code_id = c.id), 0)
  FROM user_code c;
CREATE INDEX code_bytes_user ON code_bytes(user_id, bytes);
)sql",
    // Version 25: what each user's projects (name, description) and project messages keep, and
    // how many of each they made, counted against their quota and per-user caps (see
    // Store::UserProjectUsage). One row per user, kept by InsertProject and AppendProjectEvent:
    // the caps are checked on every new project or message, which must not sum the texts.
    R"sql(
CREATE TABLE project_usage (
  user_id TEXT PRIMARY KEY,
  projects INTEGER NOT NULL,
  messages INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
INSERT INTO project_usage (user_id, projects, messages, bytes)
  SELECT user_id, sum(projects), sum(messages), sum(bytes) FROM (
    SELECT created_by AS user_id, 1 AS projects, 0 AS messages,
      length(CAST(name AS BLOB)) + length(CAST(description AS BLOB)) AS bytes FROM projects
    UNION ALL
    SELECT actor_id, 0, 1, length(CAST(text AS BLOB)) FROM project_events WHERE kind = 'message')
  GROUP BY user_id;
)sql",
    // Version 26: whose each kept answer is (a user id, or the session of a guest), so that a
    // user keeps at most kMaxIdempotentAnswersPerUser over all their sessions, found by an index
    // (RunIdempotent forgets the oldest past it).
    R"sql(
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX idempotency_keys_owner ON idempotency_keys(owner, created_at, scope, key);
)sql",
    // Version 27: each user's job usage (what UserJobUsage reports) as running sums in one row,
    // kept by triggers on jobs, so that a job's admission and its end no longer sum over every
    // job the user ever ran (a scan that grew with the history: 0.3 ms at 400 jobs, 1 ms at 800
    // on PostgreSQL).
    R"sql(
CREATE TABLE job_usage (
  user_id TEXT PRIMARY KEY,
  result_bytes INTEGER NOT NULL,
  log_bytes INTEGER NOT NULL,
  mock_bytes INTEGER NOT NULL,
  unfinished INTEGER NOT NULL,
  charged_bytes INTEGER NOT NULL
);
INSERT INTO job_usage (user_id, result_bytes, log_bytes, mock_bytes, unfinished, charged_bytes)
  SELECT user_id, sum(kept_result_bytes), sum(kept_log_bytes),
    sum(CASE WHEN kind = 'mock' THEN kept_result_bytes + kept_log_bytes ELSE 0 END),
    sum(CASE WHEN status IN ('queued', 'running') THEN 1 ELSE 0 END), sum(charged_bytes)
  FROM jobs GROUP BY user_id;
CREATE TRIGGER job_usage_insert AFTER INSERT ON jobs BEGIN
  INSERT INTO job_usage (user_id, result_bytes, log_bytes, mock_bytes, unfinished, charged_bytes)
    VALUES (NEW.user_id, NEW.kept_result_bytes, NEW.kept_log_bytes,
      CASE WHEN NEW.kind = 'mock' THEN NEW.kept_result_bytes + NEW.kept_log_bytes ELSE 0 END,
      CASE WHEN NEW.status IN ('queued', 'running') THEN 1 ELSE 0 END, NEW.charged_bytes)
    ON CONFLICT (user_id) DO UPDATE SET
      result_bytes = result_bytes + excluded.result_bytes,
      log_bytes = log_bytes + excluded.log_bytes,
      mock_bytes = mock_bytes + excluded.mock_bytes,
      unfinished = unfinished + excluded.unfinished,
      charged_bytes = charged_bytes + excluded.charged_bytes;
END;
CREATE TRIGGER job_usage_update
  AFTER UPDATE OF user_id, kind, status, kept_result_bytes, kept_log_bytes, charged_bytes ON jobs
  WHEN OLD.user_id IS NOT NEW.user_id OR OLD.kind IS NOT NEW.kind OR
    OLD.kept_result_bytes != NEW.kept_result_bytes OR OLD.kept_log_bytes != NEW.kept_log_bytes OR
    OLD.charged_bytes != NEW.charged_bytes OR
    (OLD.status IN ('queued', 'running')) != (NEW.status IN ('queued', 'running'))
BEGIN
  UPDATE job_usage SET
    result_bytes = result_bytes - OLD.kept_result_bytes,
    log_bytes = log_bytes - OLD.kept_log_bytes,
    mock_bytes = mock_bytes -
      CASE WHEN OLD.kind = 'mock' THEN OLD.kept_result_bytes + OLD.kept_log_bytes ELSE 0 END,
    unfinished = unfinished - CASE WHEN OLD.status IN ('queued', 'running') THEN 1 ELSE 0 END,
    charged_bytes = charged_bytes - OLD.charged_bytes
    WHERE user_id = OLD.user_id;
  INSERT INTO job_usage (user_id, result_bytes, log_bytes, mock_bytes, unfinished, charged_bytes)
    VALUES (NEW.user_id, NEW.kept_result_bytes, NEW.kept_log_bytes,
      CASE WHEN NEW.kind = 'mock' THEN NEW.kept_result_bytes + NEW.kept_log_bytes ELSE 0 END,
      CASE WHEN NEW.status IN ('queued', 'running') THEN 1 ELSE 0 END, NEW.charged_bytes)
    ON CONFLICT (user_id) DO UPDATE SET
      result_bytes = result_bytes + excluded.result_bytes,
      log_bytes = log_bytes + excluded.log_bytes,
      mock_bytes = mock_bytes + excluded.mock_bytes,
      unfinished = unfinished + excluded.unfinished,
      charged_bytes = charged_bytes + excluded.charged_bytes;
END;
CREATE TRIGGER job_usage_delete AFTER DELETE ON jobs BEGIN
  UPDATE job_usage SET
    result_bytes = result_bytes - OLD.kept_result_bytes,
    log_bytes = log_bytes - OLD.kept_log_bytes,
    mock_bytes = mock_bytes -
      CASE WHEN OLD.kind = 'mock' THEN OLD.kept_result_bytes + OLD.kept_log_bytes ELSE 0 END,
    unfinished = unfinished - CASE WHEN OLD.status IN ('queued', 'running') THEN 1 ELSE 0 END,
    charged_bytes = charged_bytes - OLD.charged_bytes
    WHERE user_id = OLD.user_id;
END;
)sql",
    // Version 28: grants (a request approved for repeated use, CodeService::Approve), in one form
    // for both engines (see kGrantsSchema).
    kGrantsSchema,
    // Version 29: output checks (see kOutputChecksSchema).
    kOutputChecksSchema,
    // Version 30: custom API endpoints (see kApiEndpointsSchema).
    kApiEndpointsSchema,
    // Version 31: differential privacy (see kDpSchema).
    kDpSchema,
    // Version 32: worker pools (see kWorkerPoolsSchema).
    kWorkerPoolsSchema,
};

// PostgreSQL's form of every migration after kPostgresBaselineVersion, in order.
constexpr const char* kPostgresMigrations[] = {
    // Version 19 (see above). The triggers also notify the processes that listen (SqlStore's
    // listener): "datasite_versions" with the names bumped, "datasite_jobs" when a job is queued,
    // changes status or is asked to stop (one notification per name and transaction).
    R"sql(
CREATE TABLE versions (
  name TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);
INSERT INTO versions (name, value) VALUES ('auth', 0), ('catalog', 0), ('settings', 0);
CREATE FUNCTION bump_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE versions SET value = value + 1 WHERE name = ANY (TG_ARGV);
  PERFORM pg_notify('datasite_versions', array_to_string(TG_ARGV, ','));
  RETURN NULL;
END $$;
CREATE TRIGGER version_users AFTER UPDATE OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION bump_versions('auth', 'catalog');
CREATE TRIGGER version_sessions AFTER UPDATE OR DELETE ON sessions
  FOR EACH ROW EXECUTE FUNCTION bump_versions('auth');
CREATE TRIGGER version_datasets AFTER INSERT OR UPDATE OR DELETE ON datasets
  FOR EACH ROW EXECUTE FUNCTION bump_versions('catalog');
CREATE TRIGGER version_assets AFTER INSERT OR UPDATE OR DELETE ON assets
  FOR EACH ROW EXECUTE FUNCTION bump_versions('catalog');
CREATE TRIGGER version_settings AFTER INSERT OR UPDATE ON settings
  FOR EACH ROW EXECUTE FUNCTION bump_versions('settings');
CREATE FUNCTION notify_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('datasite_jobs', '');
  RETURN NULL;
END $$;
-- Row triggers, fired by rows that change only: a lease attempt that finds nothing (an UPDATE of
-- no row) must not wake every listening queue, whose next attempt would wake them again.
CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
  FOR EACH ROW EXECUTE FUNCTION notify_jobs();
CREATE TRIGGER jobs_notify_update AFTER UPDATE OF status, kill_requested ON jobs
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR
                     OLD.kill_requested IS DISTINCT FROM NEW.kill_requested)
  EXECUTE FUNCTION notify_jobs();
)sql",
    // Version 20 (see above).
    R"sql(
CREATE TABLE rate_events (
  key TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX rate_events_key ON rate_events(key, at);
)sql",
    // Version 21 (see above).
    R"sql(
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status BIGINT NOT NULL,
  content_type TEXT NOT NULL,
  body BYTEA,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
)sql",
    // Version 22 (see above).
    R"sql(
ALTER TABLE mail_outbox ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
UPDATE mail_outbox SET body_text = '', body_html = '' WHERE kind = 'password_reset' AND sent_at <> 0;
UPDATE mail_outbox SET expires_at = 1000 * coalesce(
    (SELECT max(r.expires_at) FROM password_resets r
     WHERE r.user_id = mail_outbox.user_id AND r.used_at = 0), 1)
  WHERE kind = 'password_reset' AND sent_at = 0;
)sql",
    // Version 23 (see above): 'queued' wakes one idle worker slot, 'kill' the heartbeat of the
    // process running the job, 'ended' the waiters; a worker no longer wakes for a job's start
    // or end, nor renews its leases for them.
    R"sql(
CREATE OR REPLACE FUNCTION notify_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'queued' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'queued') THEN
    PERFORM pg_notify('datasite_jobs', 'queued');
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.kill_requested IS DISTINCT FROM NEW.kill_requested THEN
    PERFORM pg_notify('datasite_jobs', 'kill');
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.status IS DISTINCT FROM NEW.status AND
     NEW.status NOT IN ('queued', 'running') THEN
    PERFORM pg_notify('datasite_jobs', 'ended');
  END IF;
  RETURN NULL;
END $$;
)sql",
    // Version 24 (see above).
    R"sql(
CREATE TABLE code_bytes (
  code_id TEXT PRIMARY KEY REFERENCES user_code(id),
  user_id TEXT NOT NULL,
  bytes BIGINT NOT NULL
);
INSERT INTO code_bytes (code_id, user_id, bytes)
  SELECT c.id, c.user_id, octet_length(c.source) + octet_length(c.inputs) +
    coalesce((SELECT octet_length(p.spec) FROM code_policies p WHERE p.code_id = c.id), 0)
  FROM user_code c;
CREATE INDEX code_bytes_user ON code_bytes(user_id, bytes);
)sql",
    // Version 25 (see above).
    R"sql(
CREATE TABLE project_usage (
  user_id TEXT PRIMARY KEY,
  projects BIGINT NOT NULL,
  messages BIGINT NOT NULL,
  bytes BIGINT NOT NULL
);
INSERT INTO project_usage (user_id, projects, messages, bytes)
  SELECT user_id, sum(projects), sum(messages), sum(bytes) FROM (
    SELECT created_by AS user_id, 1 AS projects, 0 AS messages,
      octet_length(name) + octet_length(description) AS bytes FROM projects
    UNION ALL
    SELECT actor_id, 0, 1, octet_length(text) FROM project_events WHERE kind = 'message') AS kept
  GROUP BY user_id;
)sql",
    // Version 26 (see above).
    R"sql(
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX idempotency_keys_owner ON idempotency_keys(owner, created_at, scope, key);
)sql",
    // Version 27 (see above): one trigger function, whose update keeps to the user's one row
    // when the job stays theirs (always, today). Writers of jobs that don't take the writers' lock
    // (a lease, a kill, an older replica's) wait until the sums and their triggers are in place.
    R"sql(
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE job_usage (
  user_id TEXT PRIMARY KEY,
  result_bytes BIGINT NOT NULL,
  log_bytes BIGINT NOT NULL,
  mock_bytes BIGINT NOT NULL,
  unfinished BIGINT NOT NULL,
  charged_bytes BIGINT NOT NULL
);
INSERT INTO job_usage (user_id, result_bytes, log_bytes, mock_bytes, unfinished, charged_bytes)
  SELECT user_id, sum(kept_result_bytes), sum(kept_log_bytes),
    sum(CASE WHEN kind = 'mock' THEN kept_result_bytes + kept_log_bytes ELSE 0 END),
    sum(CASE WHEN status IN ('queued', 'running') THEN 1 ELSE 0 END), sum(charged_bytes)
  FROM jobs GROUP BY user_id;
CREATE FUNCTION count_job_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r BIGINT := 0; l BIGINT := 0; m BIGINT := 0; u BIGINT := 0; c BIGINT := 0;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    r := -OLD.kept_result_bytes;
    l := -OLD.kept_log_bytes;
    m := CASE WHEN OLD.kind = 'mock' THEN -(OLD.kept_result_bytes + OLD.kept_log_bytes) ELSE 0 END;
    u := CASE WHEN OLD.status IN ('queued', 'running') THEN -1 ELSE 0 END;
    c := -OLD.charged_bytes;
    IF TG_OP = 'DELETE' OR OLD.user_id IS DISTINCT FROM NEW.user_id THEN
      UPDATE job_usage SET result_bytes = result_bytes + r, log_bytes = log_bytes + l,
        mock_bytes = mock_bytes + m, unfinished = unfinished + u, charged_bytes = charged_bytes + c
        WHERE user_id = OLD.user_id;
      r := 0; l := 0; m := 0; u := 0; c := 0;
    END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    r := r + NEW.kept_result_bytes;
    l := l + NEW.kept_log_bytes;
    m := m + CASE WHEN NEW.kind = 'mock' THEN NEW.kept_result_bytes + NEW.kept_log_bytes ELSE 0 END;
    u := u + CASE WHEN NEW.status IN ('queued', 'running') THEN 1 ELSE 0 END;
    c := c + NEW.charged_bytes;
    INSERT INTO job_usage AS j (user_id, result_bytes, log_bytes, mock_bytes, unfinished,
                                charged_bytes)
      VALUES (NEW.user_id, r, l, m, u, c)
      ON CONFLICT (user_id) DO UPDATE SET result_bytes = j.result_bytes + r,
        log_bytes = j.log_bytes + l, mock_bytes = j.mock_bytes + m,
        unfinished = j.unfinished + u, charged_bytes = j.charged_bytes + c;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER job_usage_insert AFTER INSERT ON jobs
  FOR EACH ROW EXECUTE FUNCTION count_job_usage();
CREATE TRIGGER job_usage_update
  AFTER UPDATE OF user_id, kind, status, kept_result_bytes, kept_log_bytes, charged_bytes ON jobs
  FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.kind IS DISTINCT FROM NEW.kind OR
    OLD.kept_result_bytes <> NEW.kept_result_bytes OR OLD.kept_log_bytes <> NEW.kept_log_bytes OR
    OLD.charged_bytes <> NEW.charged_bytes OR
    (OLD.status IN ('queued', 'running')) <> (NEW.status IN ('queued', 'running')))
  EXECUTE FUNCTION count_job_usage();
CREATE TRIGGER job_usage_delete AFTER DELETE ON jobs
  FOR EACH ROW EXECUTE FUNCTION count_job_usage();
)sql",
    kGrantsSchema,        // Version 28 (see above).
    kOutputChecksSchema,  // Version 29 (see above).
    kApiEndpointsSchema,  // Version 30 (see above).
    kDpSchema,            // Version 31 (see above).
    kWorkerPoolsSchema,   // Version 32 (see above).
};
static_assert(std::size(kMigrations) == kPostgresBaselineVersion + std::size(kPostgresMigrations),
              "every migration after PostgreSQL's baseline needs its PostgreSQL form");

// The store whose RunIdempotent runs on this thread, if any: its changes wait for the answer.
thread_local const void* tls_idempotent_store = nullptr;

// Whether `sql` may change the database (a statement that only reads, or controls a transaction,
// needs no transaction of its own).
bool MayWrite(std::string_view sql) {
  size_t i = sql.find_first_not_of(" \t\r\n(");
  if (i == std::string_view::npos) return false;
  sql.remove_prefix(i);
  for (std::string_view reader : {"SELECT", "select", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT",
                                  "BEGIN", "PRAGMA", "END"}) {
    if (sql.substr(0, reader.size()) == reader) return false;
  }
  return true;
}

// Prepared statements kept for reuse, by SQL text: preparing a join costs more than running it
// on a small table. Not thread-safe (used under the store's mutex).
class StmtCache {
 public:
  explicit StmtCache(sql::Connection* conn) : conn_(conn) {}
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;

  // A statement for `sql`, from the cache or newly prepared.
  Result<std::unique_ptr<sql::Cursor>> Take(const std::string& sql) {
    auto it = idle_.find(sql);
    if (it != idle_.end()) {
      std::unique_ptr<sql::Cursor> c = std::move(it->second);
      idle_.erase(it);
      return c;
    }
    return conn_->Prepare(sql);
  }
  // Gives a statement back, reset, for the next use (or drops it when one is already idle).
  void Give(std::string sql, std::unique_ptr<sql::Cursor> c) {
    if (c == nullptr || !c->Reset()) return;
    if (idle_.size() < kMaxIdle) idle_.try_emplace(std::move(sql), std::move(c));
  }
  void Clear() { idle_.clear(); }
  sql::Engine engine() const { return conn_->engine(); }

  // Called with a statement's SQL before it first runs (see SqlStore::BeforeStatement).
  std::function<Status(const std::string& sql)> before_run;

 private:
  static constexpr size_t kMaxIdle = 256;
  sql::Connection* conn_;
  std::unordered_map<std::string, std::unique_ptr<sql::Cursor>> idle_;
};

// A prepared statement, taken from the cache and given back on destruction. Not thread-safe.
class Stmt {
 public:
  Stmt(StmtCache& cache, std::string sql) : cache_(cache), sql_(std::move(sql)) {
    auto c = cache_.Take(sql_);
    if (c.ok()) {
      cursor_ = std::move(c).value();
    } else {
      error_ = c.status();
    }
  }
  ~Stmt() {
    if (error_.ok()) cache_.Give(std::move(sql_), std::move(cursor_));
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(const std::string& v) {
    if (cursor_) cursor_->BindText(++idx_, v);
    return *this;
  }
  Stmt& BindBlob(const std::string& v) {
    if (cursor_) cursor_->BindBlob(++idx_, v);
    return *this;
  }
  Stmt& Bind(int64_t v) {
    if (cursor_) cursor_->BindInt(++idx_, v);
    return *this;
  }
  Stmt& Bind(bool v) { return Bind(static_cast<int64_t>(v ? 1 : 0)); }
  Stmt& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  Stmt& BindNull() {
    if (cursor_) cursor_->BindNull(++idx_);
    return *this;
  }
  // A job's stdout or stderr: any bytes (TEXT on SQLite, which keeps them as they are; BYTEA on
  // PostgreSQL, whose text holds no NUL and only UTF-8).
  Stmt& BindLog(const std::string& v) {
    if (!cursor_) return *this;
    if (cache_.engine() == sql::Engine::kPostgres) {
      cursor_->BindBlob(++idx_, v);
    } else {
      cursor_->BindText(++idx_, v);
    }
    return *this;
  }

  // Result<bool>: true when a row is available.
  Result<bool> Step() {
    if (!error_.ok()) return error_;
    if (!ran_) {
      ran_ = true;
      if (cache_.before_run) {
        error_ = cache_.before_run(sql_);
        if (!error_.ok()) return error_;
      }
    }
    auto r = cursor_->Step();
    if (!r.ok()) error_ = r.status();
    return r;
  }
  Status Run() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }

  std::string Text(int col) const { return cursor_->Text(col); }
  std::string Blob(int col) const { return cursor_->Blob(col); }
  bool IsNull(int col) const { return cursor_->IsNull(col); }
  int64_t Int(int col) const { return cursor_->Int(col); }

 private:
  StmtCache& cache_;
  std::string sql_;
  std::unique_ptr<sql::Cursor> cursor_;
  Status error_;
  int idx_ = 0;
  bool ran_ = false;
};

// Every remaining row of `s`, each read by `read`.
template <typename Read>
auto ReadAll(Stmt& s, Read read) -> Result<std::vector<decltype(read(s))>> {
  std::vector<decltype(read(s))> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(read(s));
  }
  return out;
}

constexpr const char* kAuditColumns = "seq, at, actor, action, target, detail, prev_hash, hash";

AuditEvent ReadAudit(const Stmt& s) {
  AuditEvent e;
  e.seq = s.Int(0);
  e.at = s.Int(1);
  e.actor = s.Text(2);
  e.action = s.Text(3);
  e.target = s.Text(4);
  e.detail = s.Text(5);
  e.prev_hash = s.Text(6);
  e.hash = s.Text(7);
  return e;
}

constexpr const char* kUserColumns =
    "id, email, name, role, institution, website, password_hash, is_root, created_at, updated_at";

User ReadUser(const Stmt& s) {
  User u;
  u.id = s.Text(0);
  u.email = s.Text(1);
  u.name = s.Text(2);
  u.role = static_cast<int>(s.Int(3));
  u.institution = s.Text(4);
  u.website = s.Text(5);
  u.password_hash = s.Text(6);
  u.is_root = s.Int(7) != 0;
  u.created_at = s.Int(8);
  u.updated_at = s.Int(9);
  return u;
}

// The dataset columns with the uploader's name and email, for "FROM datasets d LEFT JOIN users u
// ...".
constexpr const char* kDatasetSelect =
    "SELECT d.id, d.name, d.summary, d.description, d.citation, d.url, d.contributors, "
    "d.uploader_id, "
    "d.created_at, d.updated_at, coalesce(u.name, ''), coalesce(u.email, '') FROM datasets d LEFT "
    "JOIN "
    "users u ON u.id = d.uploader_id";

constexpr const char* kDatasetColumns =
    "id, name, summary, description, citation, url, contributors, uploader_id, created_at, "
    "updated_at";

std::string ContributorsJson(const std::vector<Contributor>& cs) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : cs) {
    nlohmann::json item = {{"name", c.name}, {"email", c.email}, {"role", c.role}};
    if (!c.phone.empty()) item["phone"] = c.phone;
    if (!c.note.empty()) item["note"] = c.note;
    j.push_back(std::move(item));
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Dataset ReadDataset(const Stmt& s) {
  Dataset d;
  d.id = s.Text(0);
  d.name = s.Text(1);
  d.summary = s.Text(2);
  d.description = s.Text(3);
  d.citation = s.Text(4);
  d.url = s.Text(5);
  auto j = nlohmann::json::parse(s.Text(6), nullptr, false);
  if (j.is_array()) {
    for (const auto& c : j) {
      d.contributors.push_back({c.value("name", ""), c.value("email", ""), c.value("role", ""),
                                c.value("phone", ""), c.value("note", "")});
    }
  }
  d.uploader_id = s.Text(7);
  d.created_at = s.Int(8);
  d.updated_at = s.Int(9);
  d.uploader_name = s.Text(10);
  d.uploader_email = s.Text(11);
  return d;
}

// Whether the grant ?9 admits a run at ?7: neither revoked nor expired, and its request still
// approved (a denial racing a second approval that added the grant must win).
constexpr const char* kLiveGrant =
    "SELECT 1 FROM grants g JOIN code_requests r ON r.id = g.request_id WHERE g.id = ?9 AND "
    "g.revoked_at IS NULL AND g.expires_at > ?7 AND r.status = 'approved'";

// A private run that counts against the output policy: every one that was queued, except runs that
// never reached the code (killed while queued, interrupted by crashes). Failed runs count: their
// errors and output may carry private values, so retrying them must not be free.
constexpr const char* kCountedRun =
    "NOT (status = 'interrupted' OR (status = 'killed' AND started_at = 0) OR "
    "failure = 'environment')";

// The held flag a running job's update writes: it stays raised once raised, rises when the caller
// asks, and rises for a private run when the stored settings ask for output review at that update,
// so a setting turned on while the job runs holds what it writes after the setting commits.
constexpr const char* kHeldOnUpdate =
    "greatest(held, ?, CASE WHEN kind = 'private' AND "
    "COALESCE((SELECT output_review FROM settings WHERE singleton = 1), 0) != 0 THEN 1 ELSE 0 END)";

// With `used`, the runs counted from the code's jobs; without it, 0.
// With `keep` (an SQL condition), the code's source, inputs and policies' spec are read only
// where it holds, else NULL (UserCode::source_omitted): a listing past its byte budget, a summary.
std::string CodeSelect(bool used, std::string_view keep = "") {
  auto kept = [keep](const char* column) {
    return keep.empty() ? std::string(column)
                        : "CASE WHEN " + std::string(keep) + " THEN " + column + " END";
  };
  return "SELECT c.id, c.user_id, c.name, c.version, " + kept("c.source") + ", c.code_hash, " +
         kept("c.inputs") +
         ", c.output_policy, c.output_limit, c.created_at, "
         "coalesce(u.name, ''), coalesce(u.email, ''), " +
         (used ? "(SELECT count(*) FROM jobs j WHERE j.code_id = c.id AND j.kind = 'private' AND "
                 "j.grant_id IS NULL AND "
                 "NOT (j.status = 'interrupted' OR (j.status = 'killed' AND j.started_at = 0) OR "
                 "j.failure = 'environment'))"
               : "0") +
         ", r.id, r.status, " + kept("coalesce(p.spec, '')") +
         ", coalesce(p.state, ''), coalesce(wp.doc, 'default'), coalesce(wa.doc, '') "
         "FROM user_code c LEFT JOIN users u ON u.id = c.user_id "
         "LEFT JOIN code_requests r ON r.code_id = c.id "
         "LEFT JOIN code_policies p ON p.code_id = c.id "
         "LEFT JOIN worker_pool_records wp ON wp.kind = 'code' AND wp.key = c.id "
         "LEFT JOIN worker_pool_records wa ON wa.kind = 'approval' AND wa.key = c.id";
}

// The columns of CodeSelect, from column `at` on.
UserCode ReadCodeAt(const Stmt& s, int at) {
  UserCode c;
  c.id = s.Text(at + 0);
  c.user_id = s.Text(at + 1);
  c.name = s.Text(at + 2);
  c.version = s.Int(at + 3);
  c.source_omitted = s.IsNull(at + 4);
  c.source = s.Text(at + 4);
  c.code_hash = s.Text(at + 5);
  c.inputs = s.Text(at + 6);
  c.output_policy = s.Text(at + 7);
  c.output_limit = s.Int(at + 8);
  c.created_at = s.Int(at + 9);
  c.user_name = s.Text(at + 10);
  c.user_email = s.Text(at + 11);
  c.used = s.Int(at + 12);
  if (!s.IsNull(at + 13)) c.request_id = s.Text(at + 13);
  if (!s.IsNull(at + 14)) c.request_status = s.Text(at + 14);
  c.policy_spec = s.Text(at + 15);
  c.policy_state = s.Text(at + 16);
  c.worker_pool_name = s.Text(at + 17);
  c.approved_environment = s.Text(at + 18);
  return c;
}

UserCode ReadCode(const Stmt& s) { return ReadCodeAt(s, 0); }

constexpr const char* kRequestSelect =
    "SELECT r.id, r.code_id, r.user_id, r.reason, r.status, r.deny_reason, r.reviewer_id, "
    "r.created_at, r.updated_at, coalesce(u.name, ''), coalesce(u.email, ''), "
    "coalesce(v.name, ''), coalesce(v.email, ''), r.project_id, coalesce(p.name, '') "
    "FROM code_requests r LEFT JOIN users u ON u.id = r.user_id "
    "LEFT JOIN users v ON v.id = r.reviewer_id LEFT JOIN projects p ON p.id = r.project_id";

CodeRequest ReadRequest(const Stmt& s) {
  CodeRequest r;
  r.id = s.Text(0);
  r.code_id = s.Text(1);
  r.user_id = s.Text(2);
  r.reason = s.Text(3);
  r.status = s.Text(4);
  if (!s.IsNull(5)) r.deny_reason = s.Text(5);
  if (!s.IsNull(6)) r.reviewer_id = s.Text(6);
  r.created_at = s.Int(7);
  r.updated_at = s.Int(8);
  r.user_name = s.Text(9);
  r.user_email = s.Text(10);
  r.reviewer_name = s.Text(11);
  r.reviewer_email = s.Text(12);
  if (!s.IsNull(13)) r.project_id = s.Text(13);
  r.project_name = s.Text(14);
  return r;
}

constexpr const char* kProjectSelect =
    "SELECT p.id, p.name, p.description, p.created_by, p.created_at, coalesce(u.name, ''), "
    "coalesce(u.email, '') FROM projects p LEFT JOIN users u ON u.id = p.created_by";

Project ReadProject(const Stmt& s) {
  Project p;
  p.id = s.Text(0);
  p.name = s.Text(1);
  p.description = s.Text(2);
  p.created_by = s.Text(3);
  p.created_at = s.Int(4);
  p.creator_name = s.Text(5);
  p.creator_email = s.Text(6);
  return p;
}

ProjectEvent ReadProjectEvent(const Stmt& s) {
  ProjectEvent e;
  e.project_id = s.Text(0);
  e.seq = s.Int(1);
  e.id = s.Text(2);
  e.kind = s.Text(3);
  e.actor_id = s.Text(4);
  if (!s.IsNull(5)) e.request_id = s.Text(5);
  if (!s.IsNull(6)) e.status = s.Text(6);
  e.text = s.Text(7);
  e.at = s.Int(8);
  e.actor_name = s.Text(9);
  e.actor_email = s.Text(10);
  return e;
}

// Jobs without their logs (read by GetJobLogs alone): polling a job must not read megabytes.
// `priority` chooses whether the priority is read (listings leave it out).
// A running job under a given run's lease (binds: id, lease_owner, attempts).
constexpr std::string_view kUnderLease =
    "id = ? AND status = 'running' AND lease_owner = ? AND attempts = ?";

Status NotUnderLease() {
  return FailedPreconditionError("the job is not running under this lease");
}

// The jobs of `from` (the table, or a statement's RETURNING rows named in a WITH).
// The columns ReadJob reads; `more` adds columns after them (kJobSelectColumns is the first).
std::string JobSelect(bool priority, std::string_view from = "jobs", std::string_view more = "") {
  return std::string(
             "SELECT j.id, j.code_id, j.user_id, j.kind, j.status, j.inputs, j.timeout_ms, "
             "j.attempts, j.error, j.result_format, j.result_size, j.held, '', '', ") +
         "j.created_at, j.started_at, j.finished_at, coalesce(c.name, ''), coalesce(u.name, ''), "
         "coalesce(u.email, ''), e.job_id IS NOT NULL, " +
         (priority ? "j.priority" : "0") +
         ", j.result_meta, j.failure, j.error_detail, j.error_released, j.deposited, "
         "j.lease_owner, j.lease_expires_at, j.kill_requested, coalesce(c.user_id, ''), "
         "j.grant_id, j.held_reason" +
         std::string(more) + " FROM " + std::string(from) +
         " j "
         "LEFT JOIN user_code c ON c.id = j.code_id LEFT JOIN users u ON u.id = j.user_id "
         "LEFT JOIN expired_outputs e ON e.job_id = j.id";
}

constexpr int kJobSelectColumns = 33;

Job ReadJob(const Stmt& s) {
  Job j;
  j.id = s.Text(0);
  j.code_id = s.Text(1);
  j.user_id = s.Text(2);
  j.kind = s.Text(3);
  j.status = s.Text(4);
  j.inputs = s.Text(5);
  j.timeout_ms = s.Int(6);
  j.attempts = s.Int(7);
  j.error = s.Text(8);
  j.result_format = s.Text(9);
  j.result_size = s.Int(10);
  j.held = s.Int(11) != 0;
  j.stdout_text = s.Text(12);
  j.stderr_text = s.Text(13);
  j.created_at = s.Int(14);
  j.started_at = s.Int(15);
  j.finished_at = s.Int(16);
  j.code_name = s.Text(17);
  j.user_name = s.Text(18);
  j.user_email = s.Text(19);
  j.result_expired = s.Int(20) != 0;
  j.priority = s.Int(21);
  j.result_meta = s.Text(22);
  j.failure = s.Text(23);
  j.error_detail = s.Text(24);
  j.error_released = s.Int(25) != 0;
  j.deposited = s.Int(26) != 0;
  j.lease_owner = s.Text(27);
  j.lease_expires_at = s.Int(28);
  j.kill_requested = s.Int(29) != 0;
  j.code_author_id = s.Text(30);
  if (!s.IsNull(31)) j.grant_id = s.Text(31);
  j.held_reason = s.Text(32);
  return j;
}

// The columns ReadGrant reads.
std::string GrantSelect() {
  return "SELECT g.id, g.request_id, g.code_id, g.code_hash, g.inputs, g.per_minute, g.per_hour, "
         "g.per_day, g.created_by, g.created_at, g.expires_at, g.revoked_at, g.revoked_by, "
         "coalesce(c.name, ''), coalesce(u.email, ''), (SELECT count(*) FROM jobs r WHERE "
         "r.grant_id = g.id AND r.grant_id IS NOT NULL) FROM grants g LEFT JOIN user_code c ON "
         "c.id = g.code_id LEFT JOIN users u ON u.id = g.created_by";
}

Grant ReadGrant(const Stmt& s) {
  Grant g;
  g.id = s.Text(0);
  g.request_id = s.Text(1);
  g.code_id = s.Text(2);
  g.code_hash = s.Text(3);
  g.inputs = s.Text(4);
  if (!s.IsNull(5)) g.per_minute = s.Int(5);
  if (!s.IsNull(6)) g.per_hour = s.Int(6);
  if (!s.IsNull(7)) g.per_day = s.Int(7);
  g.created_by = s.Text(8);
  g.created_at = s.Int(9);
  g.expires_at = s.Int(10);
  if (!s.IsNull(11)) g.revoked_at = s.Int(11);
  if (!s.IsNull(12)) g.revoked_by = s.Text(12);
  g.code_name = s.Text(13);
  g.created_by_email = s.Text(14);
  g.runs = s.Int(15);
  return g;
}

constexpr const char* kNotificationSelect =
    "SELECT n.id, n.user_id, n.from_id, n.kind, n.subject, n.link_kind, n.link_id, n.read, "
    "n.created_at, coalesce(u.name, '') FROM notifications n LEFT JOIN users u ON u.id = "
    "n.from_id";

Notification ReadNotification(Stmt& s) {
  Notification n;
  n.id = s.Text(0);
  n.user_id = s.Text(1);
  n.from_id = s.Text(2);
  n.kind = s.Text(3);
  n.subject = s.Text(4);
  n.link_kind = s.Text(5);
  n.link_id = s.Text(6);
  n.read = s.Int(7) != 0;
  n.created_at = s.Int(8);
  n.from_name = s.Text(9);
  return n;
}

constexpr const char* kOutboxSelect =
    "SELECT seq, recipient, user_id, kind, subject, body_text, body_html, batchable, created_at, "
    "not_before, attempts, last_error, sent_at, expires_at FROM mail_outbox";

OutboxMail ReadOutbox(Stmt& s) {
  OutboxMail m;
  m.seq = s.Int(0);
  m.recipient = s.Text(1);
  m.user_id = s.Text(2);
  m.kind = s.Text(3);
  m.subject = s.Text(4);
  m.text = s.Text(5);
  m.html = s.Text(6);
  m.batchable = s.Int(7) != 0;
  m.created_at = s.Int(8);
  m.not_before = s.Int(9);
  m.attempts = s.Int(10);
  m.last_error = s.Text(11);
  m.sent_at = s.Int(12);
  m.expires_at = s.Int(13);
  return m;
}

constexpr const char* kResetSelect =
    "SELECT r.token_hash, r.user_id, r.requested_by, r.created_at, r.expires_at, r.used_at, "
    "coalesce(u.email, '') FROM password_resets r LEFT JOIN users u ON u.id = r.user_id";

PasswordReset ReadReset(Stmt& s) {
  return {s.Blob(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4), s.Int(5), s.Text(6)};
}

class SqlStore : public Store {
 public:
  explicit SqlStore(std::unique_ptr<sql::Connection> conn)
      : conn_(std::move(conn)), stmts_(conn_.get()) {
    stmts_.before_run = [this](const std::string& sql) { return BeforeStatement(sql); };
  }
  ~SqlStore() override {
    listener_.reset();  // its thread calls into this store: stopped first
    stmts_.Clear();
  }

  // For a read-only connection: no migration; the schema must be current.
  Status InitReadOnly() {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(const int64_t version, conn_->SchemaVersion());
    const int64_t latest = LatestVersion();
    if (version != latest) {
      return FailedPreconditionError("database schema version " + std::to_string(version) +
                                     " is not this datasite's (" + std::to_string(latest) +
                                     "): start the server once to migrate it");
    }
    return Status::Ok();
  }

  Status Init() {
    std::lock_guard lock(mu_);
    return Migrate();
  }

  Result<std::optional<Identity>> GetIdentity() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT server_id, verify_key, signing_key, created_at FROM server_identity");
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<Identity>();
    return std::optional<Identity>(Identity{s.Text(0), s.Blob(1), s.Blob(2), s.Int(3)});
  }

  Status PutIdentity(const Identity& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO server_identity (singleton, server_id, verify_key, signing_key, "
           "created_at) VALUES (1, ?, ?, ?, ?) ON CONFLICT (singleton) DO UPDATE SET "
           "server_id = excluded.server_id, verify_key = excluded.verify_key, "
           "signing_key = excluded.signing_key, created_at = excluded.created_at");
    return s.Bind(id.server_id)
        .BindBlob(id.verify_key)
        .BindBlob(id.signing_key)
        .Bind(id.created_at)
        .Run();
  }

  Result<std::optional<Settings>> GetSettings() override {
    std::lock_guard lock(mu_);
    Stmt s(
        stmts_,
        "SELECT id, name, organization, description, deployed_on, signup_enabled, "
        "notifications_enabled, admin_email, server_type, server_side_type, "
        "association_request_auto_approval, allow_guest_sessions, welcome_markdown, output_review "
        "FROM settings");
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<Settings>();
    Settings st;
    st.id = s.Text(0);
    st.name = s.Text(1);
    st.organization = s.Text(2);
    st.description = s.Text(3);
    st.deployed_on = s.Text(4);
    st.signup_enabled = s.Int(5) != 0;
    st.notifications_enabled = s.Int(6) != 0;
    st.admin_email = s.Text(7);
    st.server_type = s.Text(8);
    st.server_side_type = s.Text(9);
    st.association_request_auto_approval = s.Int(10) != 0;
    st.allow_guest_sessions = s.Int(11) != 0;
    st.welcome_markdown = s.Text(12);
    st.output_review = s.Int(13) != 0;
    return std::optional<Settings>(std::move(st));
  }

  Status PutSettings(const Settings& st) override {
    std::lock_guard lock(mu_);
    ++settings_version_;  // before the change: no copy read before it is kept
    Stmt s(stmts_,
           "INSERT INTO settings (singleton, id, name, organization, description, deployed_on, "
           "signup_enabled, notifications_enabled, admin_email, server_type, server_side_type, "
           "association_request_auto_approval, allow_guest_sessions, welcome_markdown, "
           "output_review) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (singleton) DO UPDATE SET id = excluded.id, name = excluded.name, "
           "organization = excluded.organization, description = excluded.description, "
           "deployed_on = excluded.deployed_on, signup_enabled = excluded.signup_enabled, "
           "notifications_enabled = excluded.notifications_enabled, "
           "admin_email = excluded.admin_email, server_type = excluded.server_type, "
           "server_side_type = excluded.server_side_type, "
           "association_request_auto_approval = excluded.association_request_auto_approval, "
           "allow_guest_sessions = excluded.allow_guest_sessions, "
           "welcome_markdown = excluded.welcome_markdown, output_review = excluded.output_review");
    return s.Bind(st.id)
        .Bind(st.name)
        .Bind(st.organization)
        .Bind(st.description)
        .Bind(st.deployed_on)
        .Bind(st.signup_enabled)
        .Bind(st.notifications_enabled)
        .Bind(st.admin_email)
        .Bind(st.server_type)
        .Bind(st.server_side_type)
        .Bind(st.association_request_auto_approval)
        .Bind(st.allow_guest_sessions)
        .Bind(st.welcome_markdown)
        .Bind(st.output_review)
        .Run();
  }

  Status InsertUser(const User& u) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, (std::string("INSERT INTO users (") + kUserColumns +
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                       .c_str());
    return s.Bind(u.id)
        .Bind(u.email)
        .Bind(u.name)
        .Bind(u.role)
        .Bind(u.institution)
        .Bind(u.website)
        .Bind(u.password_hash)
        .Bind(u.is_root)
        .Bind(u.created_at)
        .Bind(u.updated_at)
        .Run();
  }

  Result<User> GetUserById(const std::string& id) override { return GetUserWhere("id", id); }
  Result<User> GetUserByEmail(const std::string& email) override {
    return GetUserWhere("email", email);
  }

  Result<UserPage> ListUsers(const std::string& search, int64_t offset, int64_t limit) override {
    std::lock_guard lock(mu_);
    // instr() rather than LIKE so that '%' and '_' in the search text are literal.
    const char* where =
        " WHERE (?1 = '' OR instr(lower(email), lower(?1)) > 0 OR "
        "instr(lower(name), lower(?1)) > 0)";
    UserPage page;
    ASSIGN_OR_RETURN(page.total, CountWhere("users", where, search));
    Stmt s(stmts_, (std::string("SELECT ") + kUserColumns + " FROM users" + where +
                    " ORDER BY created_at, rowid LIMIT ?2 OFFSET ?3")
                       .c_str());
    s.Bind(search).Bind(limit).Bind(offset);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      page.items.push_back(ReadUser(s));
    }
    return page;
  }

  Status UpdateUser(const User& u) override {
    std::lock_guard lock(mu_);
    ++catalog_version_;  // before the change: a reader never keeps a stale page
    ++auth_version_;     // before the change: no cached session outlives it
    Stmt s(stmts_,
           "UPDATE users SET email = ?, name = ?, role = ?, institution = ?, website = ?, "
           "password_hash = ?, updated_at = ? WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(u.email)
                        .Bind(u.name)
                        .Bind(u.role)
                        .Bind(u.institution)
                        .Bind(u.website)
                        .Bind(u.password_hash)
                        .Bind(u.updated_at)
                        .Bind(u.id)
                        .Run());
    if (conn_->Changes() == 0) return NotFoundError("user not found");
    return Status::Ok();
  }

  Status DeleteUser(const std::string& id) override {
    std::lock_guard lock(mu_);
    ++catalog_version_;  // before the change: a reader never keeps a stale page
    ++auth_version_;     // before the change: no cached session outlives it
    Stmt s(stmts_, "DELETE FROM users WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(id).Run());
    if (conn_->Changes() == 0) return NotFoundError("user not found");
    return Status::Ok();
  }

  Status InsertSession(const Session& ss) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO sessions (token_hash, user_id, role, created_at, expires_at) VALUES (?, ?, "
           "?, ?, ?)");
    s.BindBlob(ss.token_hash);
    if (ss.user_id) {
      s.Bind(*ss.user_id);
    } else {
      s.BindNull();
    }
    return s.Bind(ss.role).Bind(ss.created_at).Bind(ss.expires_at).Run();
  }

  Result<Session> GetSession(const std::string& token_hash) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT user_id, role, created_at, expires_at FROM sessions WHERE token_hash = ?");
    s.BindBlob(token_hash);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("session not found");
    Session out;
    out.token_hash = token_hash;
    if (!s.IsNull(0)) out.user_id = s.Text(0);
    out.role = static_cast<int>(s.Int(1));
    out.created_at = s.Int(2);
    out.expires_at = s.Int(3);
    return out;
  }

  Status DeleteSession(const std::string& token_hash) override {
    std::lock_guard lock(mu_);
    ++auth_version_;  // before the change: no cached session outlives it
    Stmt s(stmts_, "DELETE FROM sessions WHERE token_hash = ?");
    return s.BindBlob(token_hash).Run();
  }

  Status DeleteUserSessions(const std::string& user_id, const std::string& keep) override {
    std::lock_guard lock(mu_);
    ++auth_version_;  // before the change: no cached session outlives it
    Stmt s(stmts_, "DELETE FROM sessions WHERE user_id = ? AND token_hash != ?");
    return s.Bind(user_id).BindBlob(keep).Run();
  }

  Status DeleteExpiredSessions(int64_t now) override {
    std::lock_guard lock(mu_);
    ++auth_version_;  // before the change: no cached session outlives it
    Stmt s(stmts_, "DELETE FROM sessions WHERE expires_at <= ?");
    return s.Bind(now).Run();
  }

  Result<int64_t> CountGuestSessions(int64_t now) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT count(*) FROM sessions WHERE user_id IS NULL AND expires_at > ?");
    s.Bind(now);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return InternalError("count returned no row");
    return s.Int(0);
  }

  Status InsertBlob(const Blob& b) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO blobs (id, owner_id, size, sha256, format, schema, created_at, meta) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    return s.Bind(b.id)
        .Bind(b.owner_id)
        .Bind(b.size)
        .Bind(b.sha256)
        .Bind(b.format)
        .Bind(b.schema)
        .Bind(b.created_at)
        .Bind(b.meta)
        .Run();
  }

  Result<Blob> GetBlob(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT id, owner_id, size, sha256, format, schema, created_at, meta FROM blobs WHERE "
           "id = ?");
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no blob with id " + id);
    return Blob{s.Text(0), s.Text(1), s.Int(2), s.Text(3),
                s.Text(4), s.Text(5), s.Int(6), s.Text(7)};
  }

  Status DeleteBlob(const std::string& id) override {
    std::lock_guard lock(mu_);
    {
      Stmt u(stmts_, "SELECT 1 FROM assets WHERE data_blob_id = ?1 OR mock_blob_id = ?1");
      u.Bind(id);
      ASSIGN_OR_RETURN(bool used, u.Step());
      if (used) return FailedPreconditionError("blob " + id + " is used by an asset");
    }
    Stmt s(stmts_, "DELETE FROM blobs WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(id).Run());
    if (conn_->Changes() == 0) return NotFoundError("no blob with id " + id);
    return Status::Ok();
  }

  Result<std::vector<std::string>> AllBlobIds() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT id FROM blobs");
    return Column(s);
  }

  Result<std::vector<std::string>> UnusedBlobIds(int64_t before) override {
    std::lock_guard lock(mu_);
    Stmt s(
        stmts_,
        "SELECT id FROM blobs b WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM assets a WHERE "
        "a.data_blob_id = b.id OR a.mock_blob_id = b.id)");
    s.Bind(before);
    return Column(s);
  }

  Result<int64_t> TotalBlobBytes() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT coalesce(sum(size), 0) FROM blobs");
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : 0;
  }

  Result<int> InsertDataSubjects(const std::vector<DataSubject>& subjects,
                                 bool refuse_registered) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    auto added = InsertDataSubjectsLocked(subjects, refuse_registered);
    if (!added.ok()) {
      Rollback();
      return added.status();
    }
    RETURN_IF_ERROR(Commit());
    return added;
  }

  Result<std::vector<DataSubject>> ListDataSubjects() override {
    std::lock_guard lock(mu_);
    std::vector<DataSubject> out;
    std::unordered_map<std::string, size_t> at;
    {
      Stmt s(stmts_,
             "SELECT name, description, aliases, created_by, created_at FROM data_subjects "
             "ORDER BY seq");
      for (;;) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        DataSubject d;
        d.name = s.Text(0);
        d.description = s.Text(1);
        d.aliases = s.Text(2);
        d.created_by = s.Text(3);
        d.created_at = s.Int(4);
        at[d.name] = out.size();
        out.push_back(std::move(d));
      }
    }
    Stmt m(stmts_, "SELECT parent, child FROM data_subject_members ORDER BY seq");
    for (;;) {
      ASSIGN_OR_RETURN(bool row, m.Step());
      if (!row) break;
      auto it = at.find(m.Text(0));
      if (it != at.end()) out[it->second].members.push_back(m.Text(1));
    }
    return out;
  }

  Status InsertDataset(const Dataset& d) override {
    std::lock_guard lock(mu_);
    ++catalog_version_;  // before the change: a reader never keeps a stale page
    RETURN_IF_ERROR(Begin());
    Status st = InsertDatasetLocked(d);
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  int64_t CatalogVersion() override { return SharedVersion(catalog_version_); }
  int64_t AuthVersion() override { return SharedVersion(auth_version_); }
  int64_t SettingsVersion() override { return SharedVersion(settings_version_); }

  void SetJobsChangedListener(std::function<void(JobsChange)> fn) override {
    std::lock_guard lock(jobs_listener_mu_);
    jobs_listener_ = std::move(fn);
  }

  // Listens for other processes' changes on PostgreSQL (see SettingsVersion).
  Status StartListening(const std::string& url) {
    ASSIGN_OR_RETURN(listener_,
                     sql::ListenPostgres(
                         url, {"datasite_versions", "datasite_jobs"},
                         [this](const std::string& channel, const std::string& payload) {
                           if (channel == "datasite_jobs") {
                             // Payloads of schema 23's trigger; anything else (an older
                             // replica's empty payload) may mean anything.
                             return JobsChanged(payload == "queued"  ? JobsChange::kQueued
                                                : payload == "ended" ? JobsChange::kEnded
                                                : payload == "kill"  ? JobsChange::kKill
                                                                     : JobsChange::kAnything);
                           }
                           for (std::string_view rest = payload; !rest.empty();) {
                             const size_t comma = rest.find(',');
                             const std::string_view name = rest.substr(0, comma);
                             if (name == "auth") ++auth_version_;
                             if (name == "catalog") ++catalog_version_;
                             if (name == "settings") ++settings_version_;
                             rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
                           }
                         },
                         [this] {
                           // Whatever was notified while the listener was away is lost: all may
                           // have changed.
                           ++auth_version_;
                           ++catalog_version_;
                           ++settings_version_;
                           JobsChanged(JobsChange::kAnything);
                         }));
    return Status::Ok();
  }

  Result<Dataset> GetDataset(const std::string& id_or_name) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, (std::string(kDatasetSelect) +
                    " WHERE (d.id = ?1 OR d.name = ?1) AND d.deleted_at IS NULL")
                       .c_str());
    s.Bind(id_or_name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row)
      return NotFoundError("no dataset named or with id '" + id_or_name.substr(0, 128) + "'");
    std::vector<Dataset> one{ReadDataset(s)};
    RETURN_IF_ERROR(LoadAssets(one));
    return std::move(one[0]);
  }

  Result<Dataset> GetDatasetByAsset(const std::string& asset_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           (std::string(kDatasetSelect) +
            " WHERE d.id = (SELECT dataset_id FROM assets WHERE id = ?) AND d.deleted_at IS NULL")
               .c_str());
    s.Bind(asset_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no asset with id '" + asset_id.substr(0, 128) + "'");
    std::vector<Dataset> one{ReadDataset(s)};
    RETURN_IF_ERROR(LoadAssets(one));
    return std::move(one[0]);
  }

  Result<DatasetPage> ListDatasets(
      const std::string& search, int64_t offset, int64_t limit,
      const std::function<bool(const Dataset&)>& needs_assets) override {
    std::lock_guard lock(mu_);
    const char* where =
        " WHERE deleted_at IS NULL AND (?1 = '' OR instr(lower(name), lower(?1)) > 0 OR "
        "instr(lower(description), lower(?1)) > 0)";
    DatasetPage page;
    ASSIGN_OR_RETURN(page.total, CountWhere("datasets", where, search));
    Stmt s(stmts_,
           (std::string(kDatasetSelect) + " WHERE d.rowid IN (SELECT rowid FROM datasets" + where +
            " ORDER BY created_at, rowid LIMIT ?2 OFFSET ?3) ORDER BY d.created_at, d.rowid")
               .c_str());
    s.Bind(search).Bind(limit).Bind(offset);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      page.items.push_back(ReadDataset(s));
    }
    if (!needs_assets) {
      RETURN_IF_ERROR(LoadAssets(page.items));
      return page;
    }
    std::vector<size_t> at;
    for (size_t i = 0; i < page.items.size(); ++i) {
      if (needs_assets(page.items[i])) at.push_back(i);
    }
    std::vector<Dataset> need;
    for (size_t i : at) need.push_back(std::move(page.items[i]));
    RETURN_IF_ERROR(LoadAssets(need));
    for (size_t k = 0; k < at.size(); ++k) page.items[at[k]] = std::move(need[k]);
    return page;
  }

  Status UpdateDataset(const Dataset& d) override {
    std::lock_guard lock(mu_);
    ++catalog_version_;  // before the change: a reader never keeps a stale page
    Stmt s(stmts_,
           "UPDATE datasets SET name = ?, summary = ?, description = ?, citation = ?, url = ?, "
           "contributors = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL");
    RETURN_IF_ERROR(s.Bind(d.name)
                        .Bind(d.summary)
                        .Bind(d.description)
                        .Bind(d.citation)
                        .Bind(d.url)
                        .Bind(ContributorsJson(d.contributors))
                        .Bind(d.updated_at)
                        .Bind(d.id)
                        .Run());
    if (conn_->Changes() == 0) return NotFoundError("no dataset with id " + d.id);
    return Status::Ok();
  }

  Result<std::optional<std::string>> ReplaceAssetMock(const std::string& asset_id,
                                                      const std::string& mock_blob_id,
                                                      int64_t now) override {
    std::lock_guard lock(mu_);
    ++catalog_version_;  // before the change: a reader never keeps a stale page
    RETURN_IF_ERROR(Begin());
    auto done = [&]() -> Result<std::optional<std::string>> {
      std::optional<std::string> old;
      std::string dataset_id;
      {
        Stmt q(stmts_,
               "SELECT a.mock_blob_id, a.dataset_id FROM assets a JOIN datasets d ON d.id = "
               "a.dataset_id WHERE a.id = ? AND d.deleted_at IS NULL");
        q.Bind(asset_id);
        ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) return NotFoundError("no asset with id " + asset_id);
        if (!q.IsNull(0)) old = q.Text(0);
        dataset_id = q.Text(1);
      }
      {
        Stmt used(stmts_, "SELECT 1 FROM assets WHERE data_blob_id = ?1 OR mock_blob_id = ?1");
        used.Bind(mock_blob_id);
        ASSIGN_OR_RETURN(bool row, used.Step());
        if (row) return FailedPreconditionError("blob " + mock_blob_id + " is used by an asset");
      }
      Stmt a(stmts_,
             "UPDATE assets SET mock_blob_id = ?, mock_is_real = 0, mock_needs_regeneration = 0 "
             "WHERE id = ?");
      RETURN_IF_ERROR(a.Bind(mock_blob_id).Bind(asset_id).Run());
      Stmt d(stmts_, "UPDATE datasets SET updated_at = ? WHERE id = ?");
      RETURN_IF_ERROR(d.Bind(now).Bind(dataset_id).Run());
      return old;
    }();
    if (!done.ok()) {
      Rollback();
      return done.status();
    }
    RETURN_IF_ERROR(Commit());
    return *done;
  }

  Status InsertAsset(const std::string& dataset_id, const Asset& a, int64_t now) override {
    std::lock_guard lock(mu_);
    ++catalog_version_;  // before the change: a reader never keeps a stale page
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      int64_t position = 0;
      {
        Stmt q(stmts_,
               "SELECT coalesce((SELECT max(position) + 1 FROM assets WHERE dataset_id = ?1), 0) "
               "FROM datasets WHERE id = ?1 AND deleted_at IS NULL");
        q.Bind(dataset_id);
        ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) return NotFoundError("no dataset with id " + dataset_id);
        position = q.Int(0);
      }
      RETURN_IF_ERROR(InsertAssetLocked(a, dataset_id, position));
      Stmt d(stmts_, "UPDATE datasets SET updated_at = ? WHERE id = ?");
      return d.Bind(now).Bind(dataset_id).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  // Inserts one asset row of `dataset_id` at `position`, recording its blobs' sidecars; refuses a
  // blob another asset uses and a name or id already taken. Called with mu_ held, in a transaction.
  Status InsertAssetLocked(const Asset& a, const std::string& dataset_id, int64_t position) {
    for (const auto& id : {a.data_blob_id, a.mock_blob_id}) {
      if (!id) continue;
      Stmt used(stmts_, "SELECT 1 FROM assets WHERE data_blob_id = ?1 OR mock_blob_id = ?1");
      used.Bind(*id);
      ASSIGN_OR_RETURN(bool taken, used.Step());
      if (taken)
        return FailedPreconditionError("blob " + *id + " is already used by another asset");
    }
    for (const auto& [id, meta] :
         {std::pair{a.data_blob_id, &a.data_meta}, {a.mock_blob_id, &a.mock_meta}}) {
      if (!id || meta->empty()) continue;
      Stmt set(stmts_, "UPDATE blobs SET meta = ? WHERE id = ?");
      RETURN_IF_ERROR(set.Bind(*meta).Bind(*id).Run());
    }
    Stmt ins(
        stmts_,
        "INSERT INTO assets (id, dataset_id, position, name, description, format, mock_is_real, "
        "data_blob_id, mock_blob_id, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins.Bind(a.id)
        .Bind(dataset_id)
        .Bind(position)
        .Bind(a.name)
        .Bind(a.description)
        .Bind(a.format)
        .Bind(a.mock_is_real);
    for (const auto& id : {a.data_blob_id, a.mock_blob_id}) {
      if (id) {
        ins.Bind(*id);
      } else {
        ins.BindNull();
      }
    }
    ins.Bind(a.metadata);
    Status st = ins.Run();
    if (st.code() == StatusCode::kAlreadyExists) {
      return FailedPreconditionError("asset '" + a.name +
                                     "': its name or id, or a blob it names, is used by another "
                                     "asset");
    }
    return st;
  }

  Status SoftDeleteDataset(const std::string& id, int64_t now) override {
    std::lock_guard lock(mu_);
    ++catalog_version_;  // before the change: a reader never keeps a stale page
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt s(
          stmts_,
          "UPDATE datasets SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL");
      RETURN_IF_ERROR(s.Bind(now).Bind(now).Bind(id).Run());
      if (conn_->Changes() == 0) return NotFoundError("no dataset with id " + id);
      Stmt a(stmts_,
             "UPDATE assets SET data_blob_id = NULL, mock_blob_id = NULL WHERE dataset_id = ?");
      return a.Bind(id).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Result<std::vector<std::pair<std::string, int64_t>>> ListDeletedDatasets() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT id, deleted_at FROM datasets WHERE deleted_at IS NOT NULL "
           "ORDER BY deleted_at, id");
    std::vector<std::pair<std::string, int64_t>> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.emplace_back(s.Text(0), s.Int(1));
    }
    return out;
  }

  Result<IdempotentRun> RunIdempotent(const std::string& scope, const std::string& key,
                                      const std::string& owner,
                                      const std::function<IdempotentAnswer()>& handler) override {
    const void* outer = tls_idempotent_store;
    if (outer == this) return FailedPreconditionError("RunIdempotent does not nest");
    tls_idempotent_store = this;
    IdempotentAnswer answer;
    try {
      answer = handler();
    } catch (...) {
      tls_idempotent_store = outer;
      std::lock_guard lock(mu_);
      if (deferred_open_) {
        deferred_open_ = false;
        DropDeferred();
        mu_.unlock();
      }
      throw;
    }
    tls_idempotent_store = outer;
    std::lock_guard lock(mu_);
    if (!deferred_open_) return IdempotentRun::kNoChange;
    deferred_open_ = false;
    // Gives back the hold HoldDeferred took once the lock_guard's own is released.
    std::unique_lock<std::recursive_mutex> held(mu_, std::adopt_lock);
    Stmt s(stmts_,
           "INSERT INTO idempotency_keys (scope, key, fingerprint, status, content_type, body, "
           "created_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO "
           "NOTHING");
    s.Bind(scope).Bind(key).Bind(answer.fingerprint).Bind(static_cast<int64_t>(answer.status));
    s.Bind(answer.content_type);
    if (answer.body) {
      s.BindBlob(*answer.body);
    } else {
      s.BindNull();
    }
    Status st = s.Bind(answer.created_at).Bind(owner).Run();
    if (!st.ok()) {
      DropDeferred();
      return st;
    }
    if (conn_->Changes() == 0) {  // another server answered this key first: its run stands
      DropDeferred();
      return IdempotentRun::kLostRace;
    }
    // The owner's oldest answers past the cap go (one, once the cap is reached), never the one
    // just kept; the owner's index holds every column the choice reads.
    Stmt evict(stmts_,
               "DELETE FROM idempotency_keys WHERE owner = ?1 AND (scope, key) IN (SELECT scope, "
               "key FROM idempotency_keys WHERE owner = ?1 AND NOT (scope = ?3 AND key = ?4) "
               "ORDER BY created_at DESC, scope DESC, key DESC LIMIT 1000000000 OFFSET ?2)");
    st = evict.Bind(owner).Bind(kMaxIdempotentAnswersPerUser - 1).Bind(scope).Bind(key).Run();
    if (!st.ok()) {
      DropDeferred();
      return st;
    }
    tx_depth_ = 0;
    st = CommitOutermost();
    if (!st.ok()) {
      DropDeferred();
      return st;
    }
    return IdempotentRun::kCommitted;
  }

  Result<std::optional<IdempotentAnswer>> GetIdempotentAnswer(const std::string& scope,
                                                              const std::string& key) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT fingerprint, status, content_type, body, created_at FROM idempotency_keys "
           "WHERE scope = ? AND key = ?");
    s.Bind(scope).Bind(key);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<IdempotentAnswer>();
    IdempotentAnswer a;
    a.fingerprint = s.Text(0);
    a.status = static_cast<int>(s.Int(1));
    a.content_type = s.Text(2);
    if (!s.IsNull(3)) a.body = s.Blob(3);
    a.created_at = s.Int(4);
    return std::optional<IdempotentAnswer>(std::move(a));
  }

  Result<int64_t> DeleteIdempotentAnswersBefore(int64_t before) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "DELETE FROM idempotency_keys WHERE created_at < ?");
    RETURN_IF_ERROR(s.Bind(before).Run());
    return conn_->Changes();
  }

  void AfterCommit(std::function<void()> fn) override {
    {
      std::lock_guard lock(mu_);
      // Open only on this thread: another thread's transaction holds mu_ until it ends.
      if (tx_depth_ > 0) {
        after_commit_.emplace_back(tx_depth_, std::move(fn));
        return;
      }
    }
    fn();
  }

  void AfterRollback(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    if (tx_depth_ > 0) after_rollback_.emplace_back(tx_depth_, std::move(fn));
  }

  Status InTransaction(const std::function<Status(Store&)>& body) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = body(*this);
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Status AppendAudit(const AuditEvent& e) override {
    std::lock_guard lock(mu_);
    // Inside a caller's transaction, no savepoint of its own (two more round trips on
    // PostgreSQL): what it writes is one INSERT, which fails whole, and the caller's
    // transaction holds the writers' lock that orders the chain.
    if (tx_depth_ > 0) return AppendAuditLocked(e);
    RETURN_IF_ERROR(Begin());
    Status st = AppendAuditLocked(e);
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Result<std::vector<AuditEvent>> RecentAudit(int64_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(
        stmts_,
        std::string("SELECT ") + kAuditColumns +
            " FROM (SELECT * FROM audit_events ORDER BY seq DESC LIMIT ?) AS newest ORDER BY seq");
    s.Bind(limit);
    return ReadAll(s, ReadAudit);
  }

  Result<std::vector<AuditEvent>> ListAudit(int64_t after_seq, int64_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string("SELECT ") + kAuditColumns +
                       " FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?");
    s.Bind(after_seq).Bind(limit);
    return ReadAll(s, ReadAudit);
  }

  Result<std::optional<AuditCheckpoint>> GetAuditCheckpoint() override {
    std::lock_guard lock(mu_);
    return GetAuditCheckpointLocked();
  }

  Status PruneAudit(const AuditCheckpoint& cp) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt q(stmts_, "SELECT hash FROM audit_events WHERE seq = ?");
      q.Bind(cp.seq);
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row || q.Text(0) != cp.hash) {
        return FailedPreconditionError("audit entry " + std::to_string(cp.seq) +
                                       " is not the one the checkpoint names");
      }
      Stmt d(stmts_, "DELETE FROM audit_events WHERE seq <= ?");
      RETURN_IF_ERROR(d.Bind(cp.seq).Run());
      Stmt w(stmts_,
             "INSERT INTO audit_checkpoint (singleton, seq, hash, at, signature) "
             "VALUES (1, ?, ?, ?, ?) ON CONFLICT (singleton) DO UPDATE SET seq = excluded.seq, "
             "hash = excluded.hash, at = excluded.at, signature = excluded.signature");
      return w.Bind(cp.seq).Bind(cp.hash).Bind(cp.at).BindBlob(cp.signature).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Status InsertNotification(const Notification& n) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO notifications (id, user_id, from_id, kind, subject, link_kind, link_id, "
           "read, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    return s.Bind(n.id)
        .Bind(n.user_id)
        .Bind(n.from_id)
        .Bind(n.kind)
        .Bind(n.subject)
        .Bind(n.link_kind)
        .Bind(n.link_id)
        .Bind(n.read)
        .Bind(n.created_at)
        .Run();
  }

  Result<NotificationPage> ListNotifications(const std::string& user_id, int64_t offset,
                                             int64_t limit) override {
    std::lock_guard lock(mu_);
    NotificationPage page;
    {
      Stmt c(stmts_, "SELECT count(*) FROM notifications WHERE user_id = ?");
      c.Bind(user_id);
      ASSIGN_OR_RETURN(bool row, c.Step());
      page.total = row ? c.Int(0) : 0;
    }
    Stmt s(stmts_, std::string(kNotificationSelect) +
                       " WHERE n.user_id = ? ORDER BY n.seq LIMIT ? OFFSET ?");
    s.Bind(user_id).Bind(limit).Bind(offset);
    ASSIGN_OR_RETURN(page.items, ReadAll(s, ReadNotification));
    return page;
  }

  Result<Notification> GetNotification(const std::string& user_id, const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string(kNotificationSelect) + " WHERE n.user_id = ? AND n.id = ?");
    s.Bind(user_id).Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("notification not found");
    return ReadNotification(s);
  }

  Status SetNotificationRead(const std::string& user_id, const std::string& id,
                             bool read) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "UPDATE notifications SET read = ? WHERE user_id = ? AND id = ?");
    RETURN_IF_ERROR(s.Bind(read).Bind(user_id).Bind(id).Run());
    if (conn_->Changes() == 0) return NotFoundError("notification not found");
    return Status::Ok();
  }

  Result<int64_t> EnqueueMail(const OutboxMail& m) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO mail_outbox (recipient, user_id, kind, subject, body_text, body_html, "
           "batchable, created_at, not_before, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
           "RETURNING seq");
    s.Bind(m.recipient)
        .Bind(m.user_id)
        .Bind(m.kind)
        .Bind(m.subject)
        .Bind(m.text)
        .Bind(m.html)
        .Bind(m.batchable)
        .Bind(m.created_at)
        .Bind(m.not_before)
        .Bind(m.expires_at);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return InternalError("the outbox insert returned no sequence number");
    return s.Int(0);
  }

  Result<std::vector<OutboxMail>> DueMail(int64_t now_ms, int64_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string(kOutboxSelect) +
                       " WHERE sent_at = 0 AND recipient IN (SELECT recipient FROM mail_outbox "
                       "WHERE sent_at = 0 AND not_before <= ?) ORDER BY seq LIMIT ?");
    s.Bind(now_ms).Bind(limit);
    return ReadAll(s, ReadOutbox);
  }

  Status MarkMailSent(const std::vector<int64_t>& seqs, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    bool secret = false;
    for (int64_t seq : seqs) {
      // A secret's body is not kept once it has gone out. (A reset mail queued by a binary from
      // before schema 22 has no expiry: its kind says it.)
      Stmt blank(stmts_,
                 "UPDATE mail_outbox SET sent_at = ?, body_text = '', body_html = '' "
                 "WHERE seq = ? AND (expires_at <> 0 OR kind = 'password_reset')");
      Status st = blank.Bind(now_ms).Bind(seq).Run();
      if (st.ok() && conn_->Changes() > 0) {
        secret = true;
        continue;
      }
      if (st.ok()) {
        Stmt s(stmts_, "UPDATE mail_outbox SET sent_at = ? WHERE seq = ?");
        st = s.Bind(now_ms).Bind(seq).Run();
      }
      if (!st.ok()) {
        Rollback();
        return st;
      }
    }
    if (secret) ForgetOldPagesAfterCommit();
    return Commit();
  }

  Status DropExpiredMail(int64_t now_ms) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "DELETE FROM mail_outbox WHERE sent_at = 0 AND expires_at <> 0 AND expires_at <= ?");
    RETURN_IF_ERROR(s.Bind(now_ms).Run());
    int64_t changed = conn_->Changes();
    // Secrets that a binary from before schema 22 sent without blanking (during a rolling
    // upgrade): blanked now.
    Stmt b(stmts_,
           "UPDATE mail_outbox SET body_text = '', body_html = '' WHERE sent_at <> 0 AND "
           "(expires_at <> 0 OR kind = 'password_reset') AND (body_text <> '' OR body_html <> '')");
    RETURN_IF_ERROR(b.Run());
    changed += conn_->Changes();
    if (changed > 0) ForgetOldPagesAfterCommit();
    return Status::Ok();
  }

  // After a change that removed a secret from the outbox: on SQLite the WAL still holds the pages
  // written before (the INSERT's among them) until later writes overwrite them, so a copy of the
  // data directory would keep the secret. A TRUNCATE checkpoint copies the current pages into the
  // database file (whose freed bytes secure_delete zeroed) and empties the WAL. PostgreSQL's WAL
  // is the database server's, beyond our reach (docs/API.md says so). REQUIRES: mu_ held.
  void ForgetOldPagesAfterCommit() {
    if (conn_->engine() != sql::Engine::kSqlite) return;
    AfterCommit([this] {
      std::lock_guard lock(mu_);
      if (tx_depth_ > 0) return;  // another transaction began: the next secret's turn will do
      if (Status st = conn_->Exec("PRAGMA wal_checkpoint(TRUNCATE)"); !st.ok()) {
        spdlog::warn("store: cannot empty the WAL after a secret was removed: {}", st.ToString());
      }
    });
  }

  Status MarkMailFailed(const std::vector<int64_t>& seqs, int64_t retry_at_ms,
                        const std::string& error) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    for (int64_t seq : seqs) {
      Stmt s(stmts_,
             "UPDATE mail_outbox SET attempts = attempts + 1, not_before = ?, last_error = ? "
             "WHERE seq = ? AND sent_at = 0");
      if (Status st = s.Bind(retry_at_ms).Bind(error).Bind(seq).Run(); !st.ok()) {
        Rollback();
        return st;
      }
    }
    return Commit();
  }

  Result<std::vector<OutboxMail>> ListOutbox(int64_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string(kOutboxSelect) + " ORDER BY seq LIMIT ?");
    s.Bind(limit);
    return ReadAll(s, ReadOutbox);
  }

  Result<std::optional<MailSettings>> GetMailSettings() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT host, port, security, username, password, sender, base_url FROM mail_settings "
           "WHERE id = 1");
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<MailSettings>();
    return std::optional<MailSettings>(
        MailSettings{s.Text(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5), s.Text(6)});
  }

  Status PutMailSettings(const MailSettings& m) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO mail_settings (id, host, port, security, username, password, sender, "
           "base_url) VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
           "host = excluded.host, port = excluded.port, security = excluded.security, "
           "username = excluded.username, password = excluded.password, "
           "sender = excluded.sender, base_url = excluded.base_url");
    return s.Bind(m.host)
        .Bind(m.port)
        .Bind(m.security)
        .Bind(m.username)
        .Bind(m.password)
        .Bind(m.sender)
        .Bind(m.base_url)
        .Run();
  }

  Status DeleteMailSettings() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "DELETE FROM mail_settings");
    return s.Run();
  }

  Result<bool> UserWantsMail(const std::string& user_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT 1 FROM mail_opt_outs WHERE user_id = ?");
    s.Bind(user_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    return !row;
  }

  Status SetUserWantsMail(const std::string& user_id, bool wants) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, wants ? "DELETE FROM mail_opt_outs WHERE user_id = ?"
                         : "INSERT INTO mail_opt_outs (user_id) VALUES (?) ON CONFLICT DO NOTHING");
    return s.Bind(user_id).Run();
  }

  Status InsertPasswordReset(const PasswordReset& r) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO password_resets (token_hash, user_id, requested_by, created_at, "
           "expires_at) VALUES (?, ?, ?, ?, ?)");
    return s.BindBlob(r.token_hash)
        .Bind(r.user_id)
        .Bind(r.requested_by)
        .Bind(r.created_at)
        .Bind(r.expires_at)
        .Run();
  }

  Result<PasswordReset> ConsumePasswordReset(const std::string& token_hash, int64_t now) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string(kResetSelect) +
                       " WHERE r.token_hash = ? AND r.used_at = 0 AND r.expires_at > ?");
    s.BindBlob(token_hash).Bind(now);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("the token is wrong, expired or used");
    PasswordReset r = ReadReset(s);
    Stmt u(stmts_, "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at = 0");
    RETURN_IF_ERROR(u.Bind(now).BindBlob(token_hash).Run());
    if (conn_->Changes() == 0) return NotFoundError("the token is wrong, expired or used");
    r.used_at = now;
    return r;
  }

  Status DeletePendingPasswordResets(const std::string& user_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "DELETE FROM password_resets WHERE user_id = ? AND used_at = 0");
    RETURN_IF_ERROR(s.Bind(user_id).Run());
    // Their mails, if still unsent, go too: nobody needs a dead token, and it is not kept.
    Stmt m(stmts_,
           "DELETE FROM mail_outbox WHERE user_id = ? AND kind = 'password_reset' AND sent_at = 0");
    RETURN_IF_ERROR(m.Bind(user_id).Run());
    if (conn_->Changes() > 0) ForgetOldPagesAfterCommit();
    return Status::Ok();
  }

  Result<std::vector<PasswordReset>> PendingPasswordResets(int64_t now) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string(kResetSelect) +
                       " WHERE r.used_at = 0 AND r.expires_at > ? ORDER BY r.created_at, r.rowid");
    s.Bind(now);
    return ReadAll(s, ReadReset);
  }

  Status SetChangeOrigin(const std::string& origin) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "UPDATE change_origin SET origin = ?");
    return s.Bind(origin).Run();
  }

  Result<std::optional<ChangeInfo>> LatestChange(const std::string& kind,
                                                 const std::string& object_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT seq, op, origin FROM change_log WHERE kind = ? AND object_id = ? "
           "ORDER BY seq DESC LIMIT 1");
    s.Bind(kind).Bind(object_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<ChangeInfo>();
    return std::optional<ChangeInfo>(ChangeInfo{s.Int(0), s.Text(1), s.Text(2)});
  }

  Result<int64_t> ChangeLogHead() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT coalesce(max(seq), 0) FROM change_log");
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : int64_t{0};
  }

  static constexpr const char* kSyncPeerColumns =
      "name, verify_key, coalesce(side, ''), added_at, coalesce(revoked_at, 0), last_sent_seq, "
      "last_applied_seq, peer_seq_seen FROM sync_peers";
  static SyncPeer ReadSyncPeer(const Stmt& s) {
    return {s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4), s.Int(5), s.Int(6), s.Int(7)};
  }

  // REQUIRES: mu_ held.
  Result<bool> IsRevokedSyncKeyLocked(const std::string& key) {
    Stmt s(stmts_, "SELECT 1 FROM sync_revoked_keys WHERE verify_key = ?");
    s.Bind(key);
    return s.Step();
  }

  Status InsertSyncPeer(const SyncPeer& p) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(bool revoked, IsRevokedSyncKeyLocked(p.verify_key));
    if (revoked) return AlreadyExistsError("this key was revoked");
    Stmt s(stmts_,
           "INSERT INTO sync_peers (name, verify_key, side, added_at) VALUES (?, ?, NULLIF(?, ''), "
           "?)");
    return s.Bind(p.name).Bind(p.verify_key).Bind(p.side).Bind(p.added_at).Run();
  }

  Result<std::vector<SyncPeer>> ListSyncPeers() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string("SELECT ") + kSyncPeerColumns + " ORDER BY added_at, rowid");
    return ReadAll(s, ReadSyncPeer);
  }

  Result<SyncPeer> GetSyncPeer(const std::string& name) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string("SELECT ") + kSyncPeerColumns + " WHERE name = ?");
    s.Bind(name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no such peer");
    return ReadSyncPeer(s);
  }

  Result<SyncPeer> FindSyncPeerByKey(const std::string& key) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string("SELECT ") + kSyncPeerColumns + " WHERE verify_key = ?");
    s.Bind(key);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no peer has this key");
    return ReadSyncPeer(s);
  }

  Result<bool> IsRevokedSyncKey(const std::string& key) override {
    std::lock_guard lock(mu_);
    return IsRevokedSyncKeyLocked(key);
  }

  Status RotateSyncPeerKey(const std::string& name, const std::string& key, int64_t now) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      ASSIGN_OR_RETURN(bool revoked, IsRevokedSyncKeyLocked(key));
      if (revoked) return AlreadyExistsError("this key was revoked");
      Stmt old(stmts_,
               "INSERT INTO sync_revoked_keys (verify_key, peer, revoked_at) SELECT verify_key, "
               "name, ? FROM sync_peers WHERE name = ?");
      RETURN_IF_ERROR(old.Bind(now).Bind(name).Run());
      if (conn_->Changes() == 0) return NotFoundError("no such peer");
      Stmt u(stmts_, "UPDATE sync_peers SET verify_key = ?, revoked_at = NULL WHERE name = ?");
      return u.Bind(key).Bind(name).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Status RevokeSyncPeer(const std::string& name, int64_t now) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt u(stmts_,
             "UPDATE sync_peers SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
             "RETURNING verify_key");
      u.Bind(now).Bind(name);
      ASSIGN_OR_RETURN(bool row, u.Step());
      if (!row) {
        Stmt e(stmts_, "SELECT 1 FROM sync_peers WHERE name = ?");
        e.Bind(name);
        ASSIGN_OR_RETURN(bool exists, e.Step());
        return exists ? FailedPreconditionError("the peer is revoked already")
                      : NotFoundError("no such peer");
      }
      const std::string key = u.Text(0);
      ASSIGN_OR_RETURN(bool more, u.Step());
      (void)more;
      Stmt k(stmts_,
             "INSERT INTO sync_revoked_keys (verify_key, peer, revoked_at) "
             "VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
      return k.Bind(key).Bind(name).Bind(now).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Status UpdateSyncPeerState(const SyncPeer& p) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "UPDATE sync_peers SET side = NULLIF(?, ''), last_sent_seq = ?, last_applied_seq = ?, "
           "peer_seq_seen = ? WHERE name = ?");
    RETURN_IF_ERROR(s.Bind(p.side)
                        .Bind(p.last_sent_seq)
                        .Bind(p.last_applied_seq)
                        .Bind(p.peer_seq_seen)
                        .Bind(p.name)
                        .Run());
    if (conn_->Changes() == 0) return NotFoundError("no such peer");
    return Status::Ok();
  }

  static const char* LedgerTable(SyncLedger ledger) {
    return ledger == SyncLedger::kExchanged ? "sync_objects" : "sync_inventory";
  }

  Result<std::vector<SyncObjectState>> ListSyncObjects(SyncLedger ledger,
                                                       const std::string& peer) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string("SELECT kind, object_id, hash FROM ") + LedgerTable(ledger) +
                       " WHERE peer = ? ORDER BY kind, object_id");
    s.Bind(peer);
    return ReadAll(s, [](const Stmt& r) {
      return SyncObjectState{r.Text(0), r.Text(1), r.Text(2)};
    });
  }

  Status PutSyncObject(SyncLedger ledger, const std::string& peer,
                       const SyncObjectState& o) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string("INSERT INTO ") + LedgerTable(ledger) +
                       " (peer, kind, object_id, hash) VALUES (?, ?, ?, ?) ON CONFLICT (peer, "
                       "kind, object_id) DO UPDATE SET hash = excluded.hash");
    return s.Bind(peer).Bind(o.kind).Bind(o.object_id).Bind(o.hash).Run();
  }

  Status ReplaceSyncInventory(const std::string& peer,
                              const std::vector<SyncObjectState>& objects) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt d(stmts_, "DELETE FROM sync_inventory WHERE peer = ?");
      RETURN_IF_ERROR(d.Bind(peer).Run());
      for (const SyncObjectState& o : objects) {
        Stmt s(stmts_,
               "INSERT INTO sync_inventory (peer, kind, object_id, hash) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (peer, kind, object_id) DO UPDATE SET hash = excluded.hash");
        RETURN_IF_ERROR(s.Bind(peer).Bind(o.kind).Bind(o.object_id).Bind(o.hash).Run());
      }
      return Status::Ok();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Result<std::vector<std::pair<std::string, std::string>>> ListSyncIgnored() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT peer, batch FROM sync_ignored ORDER BY rowid");
    return ReadAll(s, [](const Stmt& r) { return std::make_pair(r.Text(0), r.Text(1)); });
  }

  Status SetSyncIgnored(const std::string& peer, const std::string& batch, bool ignored) override {
    std::lock_guard lock(mu_);
    if (ignored) {
      Stmt s(stmts_, "INSERT INTO sync_ignored (peer, batch) VALUES (?, ?) ON CONFLICT DO NOTHING");
      return s.Bind(peer).Bind(batch).Run();
    }
    Stmt s(stmts_, "DELETE FROM sync_ignored WHERE peer = ? AND batch = ?");
    RETURN_IF_ERROR(s.Bind(peer).Bind(batch).Run());
    if (conn_->Changes() == 0) return NotFoundError("the batch is not ignored");
    return Status::Ok();
  }

  Status PutSyncImport(const SyncImport& i) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO sync_imports (id, peer, seq, created_at, state) VALUES (?, ?, ?, ?, ?) "
           "ON CONFLICT (id) DO UPDATE SET peer = excluded.peer, seq = excluded.seq, "
           "created_at = excluded.created_at, state = excluded.state");
    return s.Bind(i.id).Bind(i.peer).Bind(i.seq).Bind(i.created_at).Bind(i.state).Run();
  }

  Result<SyncImport> GetSyncImport(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT id, peer, seq, created_at, state FROM sync_imports WHERE id = ?");
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no such import");
    return SyncImport{s.Text(0), s.Text(1), s.Int(2), s.Int(3), s.Text(4)};
  }

  Result<int64_t> PutSyncedJob(const Job& j, const std::string& origin) override {
    std::lock_guard lock(mu_);
    if (origin.empty()) return InvalidArgumentError("a synced job needs its origin");
    if (j.status == "queued" || j.status == "running") {
      return InvalidArgumentError("a synced job must have ended");
    }
    RETURN_IF_ERROR(Begin());
    // A synced job is a released one: its requester reads its result and stdout, which count
    // against their quota and the storage limit at their size.
    const int64_t kept = (j.status == "completed" ? j.result_size : int64_t{0}) +
                         static_cast<int64_t>(j.stdout_text.size());
    auto st = [&]() -> Result<int64_t> {
      Stmt e(stmts_, "SELECT origin, metered_bytes FROM jobs WHERE id = ?");
      e.Bind(j.id);
      ASSIGN_OR_RETURN(bool row, e.Step());
      if (row && e.Text(0).empty()) return AlreadyExistsError("a local job has this id");
      const int64_t replaced = row ? e.Int(1) : 0;
      if (row) {
        Stmt d(stmts_, "DELETE FROM jobs WHERE id = ?");
        RETURN_IF_ERROR(d.Bind(j.id).Run());
      }
      Stmt s(
          stmts_,
          "INSERT INTO jobs (id, code_id, user_id, kind, status, inputs, timeout_ms, created_at, "
          "started_at, finished_at, error, failure, result_format, result_size, result, held, "
          "stdout, result_meta, origin, kept_result_bytes, kept_log_bytes, charged_bytes, "
          "metered_bytes) VALUES (?1, ?2, ?3, 'private', ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11, "
          "?12, ?13, 0, ?14, ?15, ?16, ?17, ?18, ?17 + ?18, ?17 + ?18)");
      s.Bind(j.id).Bind(j.code_id).Bind(j.user_id).Bind(j.status).Bind(j.inputs);
      s.Bind(j.created_at).Bind(j.started_at).Bind(j.finished_at).Bind(j.error).Bind(j.failure);
      s.Bind(j.result_format).Bind(j.result_size);
      if (j.result_data) {
        s.BindBlob(*j.result_data);
      } else {
        s.BindNull();
      }
      s.BindLog(j.stdout_text).Bind(j.result_meta).Bind(origin);
      RETURN_IF_ERROR(s.Bind(j.status == "completed" ? j.result_size : int64_t{0})
                          .Bind(static_cast<int64_t>(j.stdout_text.size()))
                          .Run());
      return kept - replaced;
    }();
    if (!st.ok()) {
      Rollback();
      return st.status();
    }
    RETURN_IF_ERROR(Commit());
    return st;
  }

  Result<Job> LastSyncedJob(const std::string& code_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, (JobSelect(true) +
                    " WHERE j.code_id = ? AND j.origin != '' ORDER BY j.finished_at DESC, j.seq "
                    "DESC LIMIT 1"));
    s.Bind(code_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no synced run");
    return ReadJob(s);
  }

  Result<std::pair<int64_t, int64_t>> RateEventsSince(const std::string& key,
                                                      int64_t since_ms) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT count(*), coalesce(min(at), 0) FROM rate_events WHERE key = ? AND at > ?");
    s.Bind(key).Bind(since_ms);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::make_pair(int64_t{0}, int64_t{0});
    return std::make_pair(s.Int(0), s.Int(1));
  }

  Status AddRateEvent(const std::string& key, int64_t at_ms, int64_t forget_before_ms) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt d(stmts_, "DELETE FROM rate_events WHERE key = ? AND at <= ?");
      RETURN_IF_ERROR(d.Bind(key).Bind(forget_before_ms).Run());
      Stmt i(stmts_, "INSERT INTO rate_events (key, at) VALUES (?, ?)");
      return i.Bind(key).Bind(at_ms).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Status ClearRateEvents(const std::string& key) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "DELETE FROM rate_events WHERE key = ?");
    return s.Bind(key).Run();
  }

  Status Ping() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT 1");
    return s.Run();
  }

  Status CheckIntegrity() override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(const std::string report, conn_->IntegrityCheck());
    if (report != "ok") return InternalError("database integrity check failed: " + report);
    return Status::Ok();
  }

 private:
  // Rows of `table` matching `where` (with ?1 bound to `search`). REQUIRES: mu_ held.
  Result<int64_t> CountWhere(const char* table, const char* where, const std::string& search) {
    Stmt c(stmts_, (std::string("SELECT count(*) FROM ") + table + where));
    c.Bind(search);
    ASSIGN_OR_RETURN(bool row, c.Step());
    return row ? c.Int(0) : 0;
  }

  // REQUIRES: mu_ held.
  Result<std::vector<std::string>> Column(Stmt& s) {
    std::vector<std::string> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(s.Text(0));
    }
    return out;
  }

  // REQUIRES: mu_ held, inside a transaction.
  // REQUIRES: mu_ held, inside a transaction.
  Result<int> InsertDataSubjectsLocked(const std::vector<DataSubject>& subjects,
                                       bool refuse_registered) {
    int added = 0;
    for (size_t i = 0; i < subjects.size(); ++i) {
      const DataSubject& d = subjects[i];
      Stmt s(stmts_,
             "INSERT INTO data_subjects (name, description, aliases, created_by, created_at) "
             "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING");
      RETURN_IF_ERROR(s.Bind(d.name)
                          .Bind(d.description)
                          .Bind(d.aliases)
                          .Bind(d.created_by)
                          .Bind(d.created_at)
                          .Run());
      const bool inserted = conn_->Changes() > 0;
      if (!inserted && i == 0 && refuse_registered) {
        return AlreadyExistsError("a data subject named '" + d.name + "' is registered already");
      }
      added += inserted ? 1 : 0;
      if (d.parent.empty()) continue;
      Stmt link(stmts_,
                "INSERT INTO data_subject_members (parent, child) VALUES (?, ?) "
                "ON CONFLICT (parent, child) DO NOTHING");
      RETURN_IF_ERROR(link.Bind(d.parent).Bind(d.name).Run());
    }
    return added;
  }

  Status InsertDatasetLocked(const Dataset& d) {
    Stmt s(stmts_, (std::string("INSERT INTO datasets (") + kDatasetColumns +
                    ", deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)")
                       .c_str());
    Status st = s.Bind(d.id)
                    .Bind(d.name)
                    .Bind(d.summary)
                    .Bind(d.description)
                    .Bind(d.citation)
                    .Bind(d.url)
                    .Bind(ContributorsJson(d.contributors))
                    .Bind(d.uploader_id)
                    .Bind(d.created_at)
                    .Bind(d.updated_at)
                    .Run();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("a dataset named '" + d.name + "' already exists");
    }
    RETURN_IF_ERROR(st);
    int64_t position = 0;
    for (const Asset& a : d.assets) {
      // A blob serves one asset file, in one role, ever: never private data here and a mock there.
      RETURN_IF_ERROR(InsertAssetLocked(a, d.id, position++));
    }
    return Status::Ok();
  }

  Result<int64_t> InsertCode(const UserCode& c) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    auto version = InsertCodeLocked(c);
    if (!version.ok()) {
      Rollback();
      return version.status();
    }
    RETURN_IF_ERROR(Commit());
    return *version;
  }

  Result<CodeUsage> UserCodeUsage(const std::string& user_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT coalesce(sum(bytes), 0), count(*) FROM code_bytes WHERE user_id = ?");
    s.Bind(user_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    CodeUsage u;
    if (!row) return u;
    u.bytes = s.Int(0);
    u.versions = s.Int(1);
    return u;
  }

  Result<int64_t> TotalCodeBytes() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT coalesce(sum(bytes), 0) FROM code_bytes");
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : 0;
  }

  Result<std::string> GetCodeAuthor(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT user_id FROM user_code WHERE id = ?");
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("code not found");
    return s.Text(0);
  }

  Result<UserCode> GetCode(const std::string& id) override { return ReadCodeById(id, true); }
  Result<UserCode> GetCodeToRun(const std::string& id) override { return ReadCodeById(id, false); }
  Result<UserCode> GetCodeSummary(const std::string& id) override {
    return ReadCodeById(id, true, "1 = 0");
  }

  Result<UserCode> ReadCodeById(const std::string& id, bool used, std::string_view keep = "") {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, (CodeSelect(used, keep) + " WHERE c.id = ?"));
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("code not found");
    return ReadCode(s);
  }

  Status PutCodePolicy(const std::string& code_id, const std::string& spec) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "INSERT INTO code_policies (code_id, spec) VALUES (?, ?)");
    return s.Bind(code_id).Bind(spec).Run();  // kAlreadyExists from the primary key
  }

  Result<std::optional<CodePolicy>> GetCodePolicy(const std::string& code_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT spec, state, version FROM code_policies WHERE code_id = ?");
    s.Bind(code_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<CodePolicy>();
    return std::optional<CodePolicy>(CodePolicy{code_id, s.Text(0), s.Text(1), s.Int(2)});
  }

  Result<bool> UpdateCodePolicyState(const std::string& code_id, int64_t expected_version,
                                     const std::string& state) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "UPDATE code_policies SET state = ?, version = version + 1 "
           "WHERE code_id = ? AND version = ?");
    RETURN_IF_ERROR(s.Bind(state).Bind(code_id).Bind(expected_version).Run());
    return conn_->Changes() == 1;
  }

  Result<UserCode> FindCodeByHash(const std::string& user_id, const std::string& hash) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, (CodeSelect(true) + " WHERE c.user_id = ? AND c.code_hash = ?"));
    s.Bind(user_id).Bind(hash);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("code not found");
    return ReadCode(s);
  }

  Result<CodePage> ListCode(const std::optional<std::string>& user_id,
                            const std::optional<std::string>& name, int64_t offset, int64_t limit,
                            int64_t max_bytes) override {
    std::lock_guard lock(mu_);
    const std::string where =
        " WHERE (CAST(?1 AS TEXT) IS NULL OR c.user_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR "
        "c.name = ?2)";
    CodePage page;
    {
      Stmt c(stmts_, ("SELECT count(*) FROM user_code c" + where).c_str());
      BindOptional(c, user_id);
      BindOptional(c, name);
      ASSIGN_OR_RETURN(bool row, c.Step());
      page.total = row ? c.Int(0) : 0;
    }
    // The page's rows in order with a running sum of their variable bytes (counted in
    // characters), and the source and policies of those within the budget: the rest are left
    // unread.
    const std::string page_rows =
        " JOIN (SELECT q.id, q.created_at, q.rid, sum(q.len) OVER (ORDER BY q.created_at, q.rid "
        "ROWS UNBOUNDED PRECEDING) AS running FROM (SELECT c.id, c.created_at, c.rowid AS rid, "
        "length(c.source) + length(c.inputs) + coalesce(length(p.spec), 0) + "
        "coalesce(length(p.state), 0) AS len "
        "FROM user_code c LEFT JOIN code_policies p ON p.code_id = c.id" +
        where + " ORDER BY c.created_at, c.rowid LIMIT ?3 OFFSET ?4) q) pg ON pg.id = c.id";
    Stmt s(stmts_,
           CodeSelect(true, "pg.running <= ?5") + page_rows + " ORDER BY pg.created_at, pg.rid");
    BindOptional(s, user_id);
    BindOptional(s, name);
    s.Bind(limit).Bind(offset).Bind(max_bytes);
    ASSIGN_OR_RETURN(page.items, ReadAll(s, ReadCode));
    return page;
  }

  Status InsertRequest(const CodeRequest& r) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO code_requests (id, code_id, user_id, reason, status, deny_reason, "
           "reviewer_id, created_at, updated_at, project_id) "
           "VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)");
    s.Bind(r.id)
        .Bind(r.code_id)
        .Bind(r.user_id)
        .Bind(r.reason)
        .Bind(r.status)
        .Bind(r.created_at)
        .Bind(r.updated_at);
    BindOptional(s, r.project_id);
    return s.Run();
  }

  Result<CodeRequest> GetRequest(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, (std::string(kRequestSelect) + " WHERE r.id = ?"));
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("request not found");
    return ReadRequest(s);
  }

  Result<RequestPage> ListRequests(const std::optional<std::string>& user_id,
                                   const std::optional<std::string>& status,
                                   const std::optional<std::string>& project_id, int64_t offset,
                                   int64_t limit) override {
    std::lock_guard lock(mu_);
    const std::string where =
        " WHERE (CAST(?1 AS TEXT) IS NULL OR r.user_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR "
        "r.status = ?2) AND "
        "(CAST(?3 AS TEXT) IS NULL OR r.project_id = ?3)";
    RequestPage page;
    {
      Stmt c(stmts_, ("SELECT count(*) FROM code_requests r" + where).c_str());
      BindOptional(c, user_id);
      BindOptional(c, status);
      BindOptional(c, project_id);
      ASSIGN_OR_RETURN(bool row, c.Step());
      page.total = row ? c.Int(0) : 0;
    }
    Stmt s(stmts_,
           (kRequestSelect + where + " ORDER BY r.created_at, r.rowid LIMIT ?4 OFFSET ?5").c_str());
    BindOptional(s, user_id);
    BindOptional(s, status);
    BindOptional(s, project_id);
    s.Bind(limit).Bind(offset);
    ASSIGN_OR_RETURN(page.items, ReadAll(s, ReadRequest));
    return page;
  }

  Status DecideRequest(const std::string& id, const std::string& status,
                       const std::optional<std::string>& deny_reason,
                       const std::string& reviewer_id, int64_t now) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      std::string code_id, was;
      {
        Stmt q(stmts_, "SELECT code_id, status FROM code_requests WHERE id = ?");
        q.Bind(id);
        ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) return NotFoundError("request not found");
        code_id = q.Text(0);
        was = q.Text(1);
      }
      if (was == status) return FailedPreconditionError("the request is already " + was);
      if (was == "approved") {
        Stmt r(stmts_,
               "SELECT count(*) FROM jobs WHERE code_id = ? AND kind = 'private' AND "
               "status = 'completed' AND held = 0");
        r.Bind(code_id);
        ASSIGN_OR_RETURN(bool row, r.Step());
        if (row && r.Int(0) > 0) {
          return FailedPreconditionError(
              "a result of this request was already released to its requester, so the approval "
              "can no longer be withdrawn");
        }
        Stmt h(stmts_,
               "UPDATE jobs SET held = 1 WHERE code_id = ? AND kind = 'private' AND "
               "status IN ('queued', 'running')");
        RETURN_IF_ERROR(h.Bind(code_id).Run());
      }
      if (status == "approved") {
        Stmt d(stmts_, "UPDATE jobs SET held = 0 WHERE code_id = ? AND deposited = 1");
        RETURN_IF_ERROR(d.Bind(code_id).Run());
      }
      Stmt u(stmts_,
             "UPDATE code_requests SET status = ?, deny_reason = ?, reviewer_id = ?, "
             "updated_at = ? WHERE id = ?");
      u.Bind(status);
      BindOptional(u, deny_reason);
      RETURN_IF_ERROR(u.Bind(reviewer_id).Bind(now).Bind(id).Run());
      Stmt hist(stmts_,
                "INSERT INTO request_decisions (request_id, status, reason, reviewer_id, at) "
                "VALUES (?, ?, ?, ?, ?)");
      hist.Bind(id).Bind(status);
      BindOptional(hist, deny_reason);
      return hist.Bind(reviewer_id).Bind(now).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Result<std::vector<RequestDecision>> RequestHistory(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT d.status, d.reason, d.reviewer_id, coalesce(u.name, ''), "
           "coalesce(u.email, ''), d.at FROM request_decisions d LEFT JOIN users u ON "
           "u.id = d.reviewer_id WHERE d.request_id = ? ORDER BY d.seq");
    s.Bind(id);
    return ReadAll(s, [](const Stmt& r) {
      RequestDecision d;
      d.status = r.Text(0);
      if (!r.IsNull(1)) d.reason = r.Text(1);
      d.reviewer_id = r.Text(2);
      d.reviewer_name = r.Text(3);
      d.reviewer_email = r.Text(4);
      d.at = r.Int(5);
      return d;
    });
  }

  Status SetOutputChecks(const std::string& dataset_id, const std::string& rules,
                         const std::string& by, int64_t now) override {
    std::lock_guard lock(mu_);
    if (rules.empty()) {
      Stmt d(stmts_, "DELETE FROM output_checks WHERE dataset_id = ?");
      return d.Bind(dataset_id).Run();
    }
    Stmt s(stmts_,
           "INSERT INTO output_checks (dataset_id, rules, updated_by, updated_at) VALUES (?, ?, ?, "
           "?) ON CONFLICT (dataset_id) DO UPDATE SET rules = excluded.rules, updated_by = "
           "excluded.updated_by, updated_at = excluded.updated_at");
    return s.Bind(dataset_id).Bind(rules).Bind(by).Bind(now).Run();
  }

  Result<std::string> GetOutputChecks(const std::string& dataset_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT rules FROM output_checks WHERE dataset_id = ?");
    s.Bind(dataset_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Text(0) : std::string();
  }

  Status InsertApiEndpoint(const ApiEndpoint& e) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO api_endpoints (path, definition, created_by, created_at, updated_at) "
           "VALUES (?, ?, ?, ?, ?)");
    return s.Bind(e.path)
        .Bind(e.definition)
        .Bind(e.created_by)
        .Bind(e.created_at)
        .Bind(e.updated_at)
        .Run();
  }

  static constexpr const char* kApiEndpointColumns =
      "SELECT path, definition, mock_state, mock_state_version, private_state, "
      "private_state_version, created_by, created_at, updated_at FROM api_endpoints";

  static ApiEndpoint ReadApiEndpoint(const Stmt& r) {
    ApiEndpoint e;
    e.path = r.Text(0);
    e.definition = r.Text(1);
    e.mock_state = r.Text(2);
    e.mock_state_version = r.Int(3);
    e.private_state = r.Text(4);
    e.private_state_version = r.Int(5);
    e.created_by = r.Text(6);
    e.created_at = r.Int(7);
    e.updated_at = r.Int(8);
    return e;
  }

  Result<ApiEndpoint> GetApiEndpoint(const std::string& path) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string(kApiEndpointColumns) + " WHERE path = ?");
    s.Bind(path);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no API endpoint at '" + path.substr(0, 200) + "'");
    return ReadApiEndpoint(s);
  }

  Result<std::vector<ApiEndpoint>> ListApiEndpoints() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, std::string(kApiEndpointColumns) + " ORDER BY created_at, path");
    return ReadAll(s, ReadApiEndpoint);
  }

  Status UpdateApiEndpoint(const std::string& path, const std::string& definition,
                           int64_t now) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "UPDATE api_endpoints SET definition = ?, updated_at = ? WHERE path = ?");
    RETURN_IF_ERROR(s.Bind(definition).Bind(now).Bind(path).Run());
    if (conn_->Changes() == 0)
      return NotFoundError("no API endpoint at '" + path.substr(0, 200) + "'");
    return Status::Ok();
  }

  Status DeleteApiEndpoint(const std::string& path) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "DELETE FROM api_endpoints WHERE path = ?");
    RETURN_IF_ERROR(s.Bind(path).Run());
    if (conn_->Changes() == 0)
      return NotFoundError("no API endpoint at '" + path.substr(0, 200) + "'");
    return Status::Ok();
  }

  Result<bool> UpdateApiEndpointState(const std::string& path, bool private_side,
                                      int64_t expected_version, const std::string& state) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, private_side
                       ? "UPDATE api_endpoints SET private_state = ?, private_state_version "
                         "= private_state_version + 1 WHERE path = ? AND "
                         "private_state_version = ?"
                       : "UPDATE api_endpoints SET mock_state = ?, mock_state_version = "
                         "mock_state_version + 1 WHERE path = ? AND mock_state_version = ?");
    RETURN_IF_ERROR(s.Bind(state).Bind(path).Bind(expected_version).Run());
    return conn_->Changes() == 1;
  }

  Status SetDpPolicy(const DpPolicyRecord& r) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO dp_policies (asset_id, policy, bounding_key, updated_by, updated_at) "
           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (asset_id) DO UPDATE SET policy = excluded.policy, "
           "updated_by = excluded.updated_by, updated_at = excluded.updated_at");
    return s.Bind(r.asset_id)
        .Bind(r.policy)
        .Bind(r.bounding_key)
        .Bind(r.updated_by)
        .Bind(r.updated_at)
        .Run();
  }

  Result<DpPolicyRecord> GetDpPolicy(const std::string& asset_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT asset_id, policy, bounding_key, updated_by, updated_at FROM dp_policies WHERE "
           "asset_id = ?");
    s.Bind(asset_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("the asset has no DP policy");
    return DpPolicyRecord{s.Text(0), s.Text(1), s.Int(2), s.Text(3), s.Int(4)};
  }

  Status PutPoolRecord(const PoolRecord& r) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO worker_pool_records (kind, key, doc, updated_at) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc, "
           "updated_at = excluded.updated_at");
    return s.Bind(r.kind).Bind(r.key).Bind(r.doc).Bind(r.updated_at).Run();
  }

  Result<PoolRecord> GetPoolRecord(const std::string& kind, const std::string& key) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT kind, key, doc, updated_at FROM worker_pool_records WHERE kind = ? AND key = ?");
    s.Bind(kind).Bind(key);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError(kind + " '" + key + "' not found");
    return PoolRecord{s.Text(0), s.Text(1), s.Text(2), s.Int(3)};
  }

  Result<std::vector<PoolRecord>> ListPoolRecords(const std::string& kind) override {
    std::lock_guard lock(mu_);
    Stmt s(
        stmts_,
        "SELECT kind, key, doc, updated_at FROM worker_pool_records WHERE kind = ? ORDER BY key");
    s.Bind(kind);
    std::vector<PoolRecord> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(PoolRecord{s.Text(0), s.Text(1), s.Text(2), s.Int(3)});
    }
    return out;
  }

  Status DeletePoolRecord(const std::string& kind, const std::string& key) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "DELETE FROM worker_pool_records WHERE kind = ? AND key = ?");
    return s.Bind(kind).Bind(key).Run();
  }

  Status DeleteDpPolicy(const std::string& asset_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "DELETE FROM dp_policies WHERE asset_id = ?");
    return s.Bind(asset_id).Run();
  }

  Result<bool> ChargeDpRelease(const DpRelease& r, DpLimits user_limit,
                               DpLimits total_limit) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Result<bool> charged = [&]() -> Result<bool> {
      for (const auto& [user, limit] : {std::pair{r.user_id, user_limit},
                                        std::pair{std::string(kDpAllScientists), total_limit}}) {
        Stmt insert(stmts_,
                    "INSERT INTO dp_budgets (asset_id, user_id) VALUES (?, ?) ON CONFLICT "
                    "(asset_id, user_id) DO NOTHING");
        RETURN_IF_ERROR(insert.Bind(r.asset_id).Bind(user).Run());
        // The row lock taken here orders concurrent charges; each one's condition is checked
        // against what the others committed.
        Stmt charge(stmts_,
                    "UPDATE dp_budgets SET rho_spent = rho_spent + ?1, delta_spent = delta_spent "
                    "+ ?2 WHERE asset_id = ?3 AND user_id = ?4 AND rho_spent + ?1 <= ?5 + "
                    "rho_extra AND delta_spent + ?2 <= ?6 + delta_extra");
        RETURN_IF_ERROR(charge.Bind(r.rho)
                            .Bind(r.delta)
                            .Bind(r.asset_id)
                            .Bind(user)
                            .Bind(limit.rho)
                            .Bind(limit.delta)
                            .Run());
        if (conn_->Changes() != 1) return false;
      }
      Stmt release(stmts_,
                   "INSERT INTO dp_releases (id, asset_id, user_id, query, answer, rho, delta, "
                   "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      RETURN_IF_ERROR(release.Bind(r.id)
                          .Bind(r.asset_id)
                          .Bind(r.user_id)
                          .Bind(r.query)
                          .Bind(r.answer)
                          .Bind(r.rho)
                          .Bind(r.delta)
                          .Bind(r.created_at)
                          .Run());
      return true;
    }();
    if (!charged.ok() || !*charged) {
      Rollback();
      return charged;
    }
    RETURN_IF_ERROR(Commit());
    return true;
  }

  Result<std::vector<DpBudgetRow>> ListDpBudgets(const std::string& asset_id,
                                                 const std::string& user_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT asset_id, user_id, rho_spent, delta_spent, rho_extra, delta_extra FROM "
           "dp_budgets WHERE (?1 = '' OR asset_id = ?1) AND (?2 = '' OR user_id = ?2 OR "
           "user_id = '*') ORDER BY asset_id, user_id");
    s.Bind(asset_id).Bind(user_id);
    std::vector<DpBudgetRow> rows;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      rows.push_back({s.Text(0), s.Text(1), s.Int(2), s.Int(3), s.Int(4), s.Int(5)});
    }
    return rows;
  }

  Status AdjustDpBudget(const std::string& asset_id, const std::string& user_id, int64_t add_rho,
                        int64_t add_delta, bool reset) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt insert(stmts_,
                  "INSERT INTO dp_budgets (asset_id, user_id) VALUES (?, ?) ON CONFLICT "
                  "(asset_id, user_id) DO NOTHING");
      RETURN_IF_ERROR(insert.Bind(asset_id).Bind(user_id).Run());
      Stmt update(stmts_,
                  reset ? "UPDATE dp_budgets SET rho_spent = 0, delta_spent = 0 WHERE asset_id "
                          "= ? AND user_id = ?"
                        : "UPDATE dp_budgets SET rho_extra = rho_extra + ?, delta_extra = "
                          "delta_extra + ? WHERE asset_id = ? AND user_id = ?");
      if (!reset) update.Bind(add_rho).Bind(add_delta);
      return update.Bind(asset_id).Bind(user_id).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Result<std::vector<DpRelease>> ListDpReleases(const std::string& asset_id,
                                                int64_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT id, asset_id, user_id, query, answer, rho, delta, created_at FROM dp_releases "
           "WHERE asset_id = ? ORDER BY created_at DESC, id DESC LIMIT ?");
    s.Bind(asset_id).Bind(limit);
    std::vector<DpRelease> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(
          {s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Int(5), s.Int(6), s.Int(7)});
    }
    return out;
  }

  Status InsertGrant(const Grant& g) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt s(stmts_,
             "INSERT INTO grants (id, request_id, code_id, code_hash, inputs, per_minute, "
             "per_hour, per_day, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
             "?, ?, ?, ?)");
      s.Bind(g.id).Bind(g.request_id).Bind(g.code_id).Bind(g.code_hash).Bind(g.inputs);
      for (const auto& limit : {g.per_minute, g.per_hour, g.per_day}) {
        if (limit) {
          s.Bind(*limit);
        } else {
          s.BindNull();
        }
      }
      RETURN_IF_ERROR(s.Bind(g.created_by).Bind(g.created_at).Bind(g.expires_at).Run());
      for (size_t i = 0; i < g.user_ids.size(); ++i) {
        Stmt u(stmts_,
               "INSERT INTO grant_users (grant_id, user_id, position) SELECT ?1, id, ?3 FROM "
               "users WHERE id = ?2");
        RETURN_IF_ERROR(u.Bind(g.id).Bind(g.user_ids[i]).Bind(static_cast<int64_t>(i)).Run());
        if (conn_->Changes() == 0) return NotFoundError("user not found");
      }
      return Status::Ok();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Result<Grant> GetGrant(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, GrantSelect() + " WHERE g.id = ?");
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("grant not found");
    Grant g = ReadGrant(s);
    RETURN_IF_ERROR(ReadGrantUsers(g));
    return g;
  }

  Result<GrantPage> ListGrants(const std::optional<std::string>& user_id,
                               const std::optional<std::string>& status, int64_t now_ms,
                               int64_t offset, int64_t limit) override {
    std::lock_guard lock(mu_);
    // ?1 the user (null: all), ?2 now; the status is a condition of the query's own text.
    std::string where =
        " WHERE (CAST(?1 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM grant_users w WHERE w.grant_id "
        "= g.id AND "
        "w.user_id = ?1)) AND ?2 = ?2";
    if (status == "active") where += " AND g.revoked_at IS NULL AND g.expires_at > ?2";
    if (status == "revoked") where += " AND g.revoked_at IS NOT NULL";
    if (status == "expired") where += " AND g.revoked_at IS NULL AND g.expires_at <= ?2";
    GrantPage page;
    {
      Stmt c(stmts_, "SELECT count(*) FROM grants g" + where);
      BindOptional(c, user_id);
      c.Bind(now_ms);
      ASSIGN_OR_RETURN(bool row, c.Step());
      page.total = row ? c.Int(0) : 0;
    }
    Stmt s(stmts_, GrantSelect() + where + " ORDER BY g.created_at DESC, g.id LIMIT ?3 OFFSET ?4");
    BindOptional(s, user_id);
    s.Bind(now_ms).Bind(limit).Bind(offset);
    ASSIGN_OR_RETURN(page.items, ReadAll(s, [](const Stmt& r) { return ReadGrant(r); }));
    for (Grant& g : page.items) RETURN_IF_ERROR(ReadGrantUsers(g));
    return page;
  }

  Result<std::vector<Grant>> GrantsFor(const std::string& code_hash,
                                       const std::string& user_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, GrantSelect() +
                       " JOIN grant_users w ON w.grant_id = g.id AND w.user_id = ? WHERE "
                       "g.code_hash = ? ORDER BY g.created_at DESC, g.id");
    s.Bind(user_id).Bind(code_hash);
    ASSIGN_OR_RETURN(std::vector<Grant> grants,
                     ReadAll(s, [](const Stmt& r) { return ReadGrant(r); }));
    for (Grant& g : grants) RETURN_IF_ERROR(ReadGrantUsers(g));
    return grants;
  }

  Status RevokeGrant(const std::string& id, const std::string& by, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt s(
          stmts_,
          "UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL");
      RETURN_IF_ERROR(s.Bind(now_ms).Bind(by).Bind(id).Run());
      if (conn_->Changes() > 0) {
        // What its runs still going produce waits for a data owner (they are killed next).
        Stmt h(stmts_,
               "UPDATE jobs SET held = 1 WHERE grant_id = ? AND status IN ('queued', 'running')");
        return h.Bind(id).Run();
      }
      Stmt e(stmts_, "SELECT 1 FROM grants WHERE id = ?");
      e.Bind(id);
      ASSIGN_OR_RETURN(bool row, e.Step());
      return row ? FailedPreconditionError("the grant was revoked already")
                 : NotFoundError("grant not found");
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Status RevokeRequestGrants(const std::string& request_id, const std::string& by,
                             int64_t now_ms) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt h(stmts_,
             "UPDATE jobs SET held = 1 WHERE grant_id IN (SELECT id FROM grants WHERE request_id = "
             "? AND revoked_at IS NULL) AND status IN ('queued', 'running')");
      RETURN_IF_ERROR(h.Bind(request_id).Run());
      Stmt s(stmts_,
             "UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE request_id = ? AND "
             "revoked_at IS NULL");
      return s.Bind(now_ms).Bind(by).Bind(request_id).Run();
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Result<std::vector<int64_t>> GrantRunTimes(const std::string& grant_id,
                                             const std::string& user_id,
                                             int64_t since_ms) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT created_at FROM jobs WHERE grant_id = ? AND grant_id IS NOT NULL AND user_id = "
           "? AND created_at > ? ORDER BY created_at");
    s.Bind(grant_id).Bind(user_id).Bind(since_ms);
    return ReadAll(s, [](const Stmt& r) { return r.Int(0); });
  }

  Status InsertProject(const Project& p) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Begin());
    Status st = [&]() -> Status {
      Stmt s(stmts_,
             "INSERT INTO projects (id, name, description, created_by, created_at) "
             "VALUES (?, ?, ?, ?, ?)");
      RETURN_IF_ERROR(s.Bind(p.id)
                          .Bind(p.name)
                          .Bind(p.description)
                          .Bind(p.created_by)
                          .Bind(p.created_at)
                          .Run());
      for (const auto& m : p.members) {
        Stmt i(stmts_,
               "INSERT INTO project_members (project_id, user_id) VALUES (?, ?) ON CONFLICT DO "
               "NOTHING");
        RETURN_IF_ERROR(i.Bind(p.id).Bind(m.user_id).Run());
      }
      return CountProjectUsageLocked(p.created_by, 1, 0,
                                     static_cast<int64_t>(p.name.size() + p.description.size()));
    }();
    if (!st.ok()) {
      Rollback();
      return st;
    }
    return Commit();
  }

  Result<Project> GetProject(const std::string& id) override {
    std::lock_guard lock(mu_);
    Project p;
    {
      Stmt s(stmts_, std::string(kProjectSelect) + " WHERE p.id = ?");
      s.Bind(id);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return NotFoundError("project not found");
      p = ReadProject(s);
    }
    RETURN_IF_ERROR(ReadMembersLocked(p));
    return p;
  }

  Result<ProjectPage> ListProjects(const std::optional<std::string>& member_id,
                                   const std::optional<std::string>& name, int64_t offset,
                                   int64_t limit) override {
    std::lock_guard lock(mu_);
    const std::string where =
        " WHERE (CAST(?1 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM project_members m WHERE "
        "m.project_id = p.id "
        "AND m.user_id = ?1)) AND (CAST(?2 AS TEXT) IS NULL OR p.name = ?2)";
    ProjectPage page;
    {
      Stmt c(stmts_, "SELECT count(*) FROM projects p" + where);
      BindOptional(c, member_id);
      BindOptional(c, name);
      ASSIGN_OR_RETURN(bool row, c.Step());
      page.total = row ? c.Int(0) : 0;
    }
    {
      Stmt s(stmts_, kProjectSelect + where + " ORDER BY p.created_at, p.rowid LIMIT ?3 OFFSET ?4");
      BindOptional(s, member_id);
      BindOptional(s, name);
      s.Bind(limit).Bind(offset);
      ASSIGN_OR_RETURN(page.items, ReadAll(s, ReadProject));
    }
    for (auto& p : page.items) RETURN_IF_ERROR(ReadMembersLocked(p));
    return page;
  }

  Result<int64_t> AppendProjectEvent(const ProjectEvent& e) override {
    std::lock_guard lock(mu_);
    {
      Stmt q(stmts_, "SELECT 1 FROM projects WHERE id = ?");
      q.Bind(e.project_id);
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return NotFoundError("project not found");
    }
    // A message's usage commits with it.
    const bool own = tx_depth_ == 0;
    if (own) RETURN_IF_ERROR(Begin());
    auto appended = [&]() -> Result<int64_t> {
      int64_t seq = 0;
      {
        // One statement picks the next seq and inserts, so two appends can't take the same one.
        Stmt s(stmts_,
               "INSERT INTO project_events (project_id, seq, id, kind, actor_id, request_id, "
               "status, text, at) SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, "
               "?8 FROM project_events WHERE project_id = ?1 RETURNING seq");
        s.Bind(e.project_id).Bind(e.id).Bind(e.kind).Bind(e.actor_id);
        BindOptional(s, e.request_id);
        BindOptional(s, e.status);
        s.Bind(e.text).Bind(e.at);
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return InternalError("the event was not appended");
        seq = s.Int(0);
        ASSIGN_OR_RETURN(row, s.Step());
      }
      if (e.kind == "message") {
        RETURN_IF_ERROR(
            CountProjectUsageLocked(e.actor_id, 0, 1, static_cast<int64_t>(e.text.size())));
      }
      return seq;
    }();
    return EndOwn(own, std::move(appended));
  }

  Result<std::vector<ProjectEvent>> ProjectEvents(const std::string& project_id, int64_t after_seq,
                                                  int64_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT e.project_id, e.seq, e.id, e.kind, e.actor_id, e.request_id, e.status, e.text, "
           "e.at, coalesce(u.name, ''), coalesce(u.email, '') FROM project_events e "
           "LEFT JOIN users u ON u.id = e.actor_id WHERE e.project_id = ? AND e.seq > ? "
           "ORDER BY e.seq LIMIT ?");
    s.Bind(project_id).Bind(after_seq).Bind(limit);
    return ReadAll(s, ReadProjectEvent);
  }

  Result<ProjectUsage> UserProjectUsage(const std::string& user_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT projects, messages, bytes FROM project_usage WHERE user_id = ?");
    s.Bind(user_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    ProjectUsage u;
    if (!row) return u;
    u.projects = s.Int(0);
    u.messages = s.Int(1);
    u.bytes = s.Int(2);
    return u;
  }

  // Adds to the user's ProjectUsage, in the caller's transaction. REQUIRES: mu_ held.
  Status CountProjectUsageLocked(const std::string& user_id, int64_t projects, int64_t messages,
                                 int64_t bytes) {
    Stmt s(stmts_,
           "INSERT INTO project_usage (user_id, projects, messages, bytes) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (user_id) DO UPDATE SET projects = project_usage.projects + "
           "excluded.projects, messages = project_usage.messages + excluded.messages, "
           "bytes = project_usage.bytes + excluded.bytes");
    return s.Bind(user_id).Bind(projects).Bind(messages).Bind(bytes).Run();
  }

  Status SetRequestProject(const std::string& request_id, const std::string& project_id) override {
    std::lock_guard lock(mu_);
    {
      Stmt q(stmts_, "SELECT 1 FROM projects WHERE id = ?");
      q.Bind(project_id);
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return NotFoundError("project not found");
    }
    Stmt q(stmts_, "SELECT project_id FROM code_requests WHERE id = ?");
    q.Bind(request_id);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return NotFoundError("request not found");
    if (!q.IsNull(0)) return FailedPreconditionError("the request is in a project already");
    Stmt u(stmts_, "UPDATE code_requests SET project_id = ? WHERE id = ? AND project_id IS NULL");
    RETURN_IF_ERROR(u.Bind(project_id).Bind(request_id).Run());
    if (conn_->Changes() == 0) {
      return FailedPreconditionError("the request is in a project already");
    }
    return Status::Ok();
  }

  Result<JobAdmission> InsertJob(const Job& j, const JobLimits& limits) override {
    return InsertJob(j, limits, nullptr);
  }
  Result<JobAdmission> InsertJob(const Job& j, const JobLimits& limits, Job* stored) override {
    std::lock_guard lock(mu_);
    const bool private_run = j.kind == "private";
    const bool runs_capped = limits.max_private_runs && private_run;
    const bool one_at_a_time = limits.one_unfinished_private && private_run;
    const bool unfinished_capped = limits.max_unfinished.has_value();
    // The limits are the INSERT's own condition (one statement where three were: the callers
    // hold the writers' lock, so no other admission counts meanwhile); a refusal looks again to
    // say which limit it was. A kill (which takes no writers' lock) may end the run a limit
    // counted between the two: then nothing explains the refusal, and the insert is tried again.
    auto run_count = [](const std::string& code) {
      return "SELECT count(*) FROM jobs WHERE code_id = " + code +
             " AND kind = 'private' AND grant_id IS NULL AND " + std::string(kCountedRun);
    };
    auto private_unfinished = [](const std::string& code) {
      return "SELECT count(*) FROM jobs WHERE code_id = " + code +
             " AND kind = 'private' AND status IN ('queued', 'running')";
    };
    const bool granted = j.grant_id.has_value();
    // The limits are bound (a run limit is each code's own): numbered after the job's nine.
    std::string sql =
        "INSERT INTO jobs (id, code_id, user_id, kind, status, inputs, timeout_ms, created_at, "
        "priority, grant_id) SELECT ?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8, ?9 WHERE 1 = 1";
    std::vector<int64_t> bounds;
    auto bound = [&](int64_t value) {
      bounds.push_back(value);
      return "?" + std::to_string(9 + bounds.size());
    };
    // A grant's runs: each window counts the user's runs under it created after (created_at -
    // window), so a run leaves a window `window_ms` after it was admitted.
    auto grant_runs = [](const std::string& grant, const std::string& user,
                         const std::string& since) {
      return "SELECT count(*) FROM jobs WHERE grant_id = " + grant + " AND grant_id IS NOT NULL " +
             "AND user_id = " + user + " AND created_at > " + since;
    };
    if (granted) {
      sql += std::string(" AND EXISTS (") + kLiveGrant + ")";
      for (const GrantWindow& w : limits.grant_windows) {
        sql +=
            " AND (" + grant_runs("?9", "?3", "?7 - " + bound(w.window_ms)) + ") < " + bound(w.max);
      }
    }
    if (runs_capped) {
      sql += " AND (" + run_count("?2") + ") < " + bound(*limits.max_private_runs);
    }
    if (one_at_a_time) sql += " AND (" + private_unfinished("?2") + ") = 0";
    if (unfinished_capped) {
      sql +=
          " AND (SELECT count(*) FROM jobs WHERE user_id = ?3 AND status IN ('queued', "
          "'running')) < " +
          bound(*limits.max_unfinished);
    }
    auto count = [&](const std::string& query) -> Result<int64_t> {
      Stmt c(stmts_, query);
      c.Bind(j.code_id);
      ASSIGN_OR_RETURN(bool row, c.Step());
      return row ? c.Int(0) : int64_t{0};
    };
    // On PostgreSQL the insert reads the row back as GetJob does, in the same round trip.
    const bool read_back = stored && conn_->engine() == sql::Engine::kPostgres;
    if (read_back) sql = "WITH ins AS (" + sql + " RETURNING *) " + JobSelect(true, "ins");
    for (int attempt = 0; attempt < 2; ++attempt) {
      {
        Stmt s(stmts_, sql);
        s.Bind(j.id)
            .Bind(j.code_id)
            .Bind(j.user_id)
            .Bind(j.kind)
            .Bind(j.inputs)
            .Bind(j.timeout_ms)
            .Bind(j.created_at)
            .Bind(j.priority);
        if (granted) {
          s.Bind(*j.grant_id);
        } else {
          s.BindNull();
        }
        for (int64_t b : bounds) s.Bind(b);
        if (read_back) {
          ASSIGN_OR_RETURN(bool row, s.Step());
          if (row) {
            *stored = ReadJob(s);
            ASSIGN_OR_RETURN(bool more, s.Step());
            (void)more;
            return JobAdmission::kInserted;
          }
        } else {
          RETURN_IF_ERROR(s.Run());
          if (conn_->Changes() > 0) {
            if (stored) {
              ASSIGN_OR_RETURN(*stored, GetJobLocked(j.id));
            }
            return JobAdmission::kInserted;
          }
        }
      }
      // The first limit that refused, in the order they are documented.
      if (runs_capped) {
        ASSIGN_OR_RETURN(int64_t runs, count(run_count("?1")));
        if (runs >= *limits.max_private_runs) return JobAdmission::kPolicyUsedUp;
      }
      if (one_at_a_time) {
        ASSIGN_OR_RETURN(int64_t open, count(private_unfinished("?1")));
        if (open > 0) return JobAdmission::kPrivateRunUnfinished;
      }
      if (unfinished_capped) {
        Stmt c(stmts_,
               "SELECT count(*) FROM jobs WHERE user_id = ?1 AND status IN ('queued', 'running')");
        c.Bind(j.user_id);
        ASSIGN_OR_RETURN(bool row, c.Step());
        if (row && c.Int(0) >= *limits.max_unfinished) return JobAdmission::kTooManyUnfinished;
      }
      if (granted) {
        Stmt g(stmts_, std::string("SELECT count(*) FROM (") + kLiveGrant + ") live");
        g.Bind(j.id)
            .Bind(j.code_id)
            .Bind(j.user_id)
            .Bind(j.kind)
            .Bind(j.inputs)
            .Bind(j.timeout_ms)
            .Bind(j.created_at)
            .Bind(j.priority)
            .Bind(*j.grant_id);
        ASSIGN_OR_RETURN(bool row, g.Step());
        if (!row || g.Int(0) == 0) return JobAdmission::kGrantEnded;
        for (const GrantWindow& w : limits.grant_windows) {
          Stmt c(stmts_, grant_runs("?1", "?2", "?3 - ?4"));
          c.Bind(*j.grant_id).Bind(j.user_id).Bind(j.created_at).Bind(w.window_ms);
          ASSIGN_OR_RETURN(bool counted, c.Step());
          if (counted && c.Int(0) >= w.max) return JobAdmission::kGrantWindowFull;
        }
      }
    }
    return UnavailableError("database: the job's limits changed while it was admitted; try again");
  }

  Result<Job> GetJob(const std::string& id, int64_t result_up_to) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, JobSelect(true, "jobs",
                             ", CASE WHEN j.status = 'completed' AND j.result_size <= ?2 AND "
                             "j.held = 0 AND j.kind != 'review' THEN j.result END") +
                       " WHERE j.id = ?1");
    s.Bind(id).Bind(result_up_to);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("job not found");
    Job j = ReadJob(s);
    if (!s.IsNull(kJobSelectColumns)) j.result_data = s.Blob(kJobSelectColumns);
    return j;
  }

  Result<Job> GetJob(const std::string& id) override {
    std::lock_guard lock(mu_);
    return GetJobLocked(id);
  }

  Result<std::pair<std::string, std::string>> GetJobLogs(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT stdout, stderr FROM jobs WHERE id = ?");
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("job not found");
    return std::pair(s.Text(0), s.Text(1));
  }

  Result<JobOutput> ReadJobOutput(const std::string& id, int64_t stdout_from) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT bytes_after(stdout, ?1), octet_length(stdout), stderr, "
           "status, held FROM jobs WHERE id = ?2");
    s.Bind(std::max<int64_t>(stdout_from, 0)).Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("job not found");
    JobOutput out;
    out.stdout_text = s.Blob(0);
    out.stdout_bytes = s.Int(1);
    out.stderr_text = s.Text(2);
    out.status = s.Text(3);
    out.held = s.Int(4) != 0;
    return out;
  }

  Status AppendJobStdout(const Job& run, std::string_view chunk, bool held) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, ("UPDATE jobs SET stdout = stdout || ?, held = " + std::string(kHeldOnUpdate) +
                    " WHERE " + std::string(kUnderLease)));
    RETURN_IF_ERROR(s.BindLog(std::string(chunk))
                        .Bind(held)
                        .Bind(run.id)
                        .Bind(run.lease_owner)
                        .Bind(run.attempts)
                        .Run());
    if (conn_->Changes() == 0) return NotUnderLease();
    return Status::Ok();
  }

  Status AppendJobStderr(const Job& run, std::string_view chunk) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "UPDATE jobs SET stderr = stderr || ? WHERE " + std::string(kUnderLease));
    RETURN_IF_ERROR(
        s.BindLog(std::string(chunk)).Bind(run.id).Bind(run.lease_owner).Bind(run.attempts).Run());
    if (conn_->Changes() == 0) return NotUnderLease();
    return Status::Ok();
  }

  Result<std::vector<std::pair<std::string, int64_t>>> CountJobsByStatus() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status");
    return ReadAll(s, [](Stmt& r) { return std::make_pair(r.Text(0), r.Int(1)); });
  }

  Result<JobPage> ListJobs(const JobFilter& f) override {
    std::lock_guard lock(mu_);
    // A grant's filter (rare) is its own statement: ?7, after the page's two.
    const std::string where =
        " WHERE (CAST(?1 AS TEXT) IS NULL OR j.user_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR "
        "j.code_id = ?2) AND "
        "(CAST(?3 AS TEXT) IS NULL OR j.status = ?3) AND (?4 = 1 OR j.kind != 'review')" +
        std::string(f.grant_id           ? " AND j.grant_id = ?7"
                    : f.grant_request_id ? " AND j.grant_id IN (SELECT id FROM grants WHERE "
                                           "request_id = ?7)"
                                         : "");
    const std::optional<std::string>& grant_filter = f.grant_id ? f.grant_id : f.grant_request_id;
    auto bind = [&](Stmt& s) {
      BindOptional(s, f.user_id);
      BindOptional(s, f.code_id);
      BindOptional(s, f.status);
      s.Bind(f.include_review);
    };
    JobPage page;
    {
      Stmt c(stmts_, ("SELECT count(*) FROM jobs j" + where +
                      (grant_filter ? " AND ?5 = ?5 AND ?6 = ?6" : ""))
                         .c_str());
      bind(c);
      if (grant_filter) c.Bind(f.limit).Bind(f.offset).Bind(*grant_filter);
      ASSIGN_OR_RETURN(bool row, c.Step());
      page.total = row ? c.Int(0) : 0;
    }
    Stmt s(stmts_, (JobSelect(false) + where + " ORDER BY j.seq" + (f.newest_first ? " DESC" : "") +
                    " LIMIT ?5 OFFSET ?6")
                       .c_str());
    bind(s);
    s.Bind(f.limit).Bind(f.offset);
    if (grant_filter) s.Bind(*grant_filter);
    ASSIGN_OR_RETURN(page.items, ReadAll(s, ReadJob));
    return page;
  }

  Result<Job> LastCompletedPrivateJob(const std::string& code_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, (JobSelect(true) +
                    " WHERE j.code_id = ? AND j.kind = 'private' AND j.status = 'completed' "
                    "ORDER BY j.seq DESC LIMIT 1")
                       .c_str());
    s.Bind(code_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("no completed run");
    return ReadJob(s);
  }

  using Store::LeaseNextJob;
  using Store::RecoverJobs;

  Result<std::optional<Job>> LeaseNextJob(int64_t now, std::string_view owner,
                                          int64_t lease_expires_at,
                                          std::string_view pool) override {
    std::lock_guard lock(mu_);
    // A lease need not be durable: lost in a crash, the job is simply still queued and runs
    // again, which is what recovery does with a running job anyway. Not syncing it saves one
    // disk sync per job.
    RETURN_IF_ERROR(conn_->SetDurableCommits(false));
    auto leased = LeaseNextJobLocked(now, owner, lease_expires_at, pool);
    RestoreFullSync();
    return leased;
  }

  // Opens a lease's transaction: without the writers' lock where the engine has row locks (see
  // LeaseNextJobLocked), or a savepoint inside the transaction InTransaction holds (which has
  // the writers' lock). REQUIRES: mu_ held.
  Status BeginLease() {
    if (tx_depth_ > 0) return Begin();
    RETURN_IF_ERROR(conn_->BeginRowLocking());
    ++tx_depth_;
    return Status::Ok();
  }

  // Back to synchronous=FULL after a write that need not be durable. REQUIRES: mu_ held.
  void RestoreFullSync() {
    Status full = conn_->SetDurableCommits(true);
    if (!full.ok()) full = conn_->SetDurableCommits(true);
    if (!full.ok()) {
      // Every later commit must be durable: going on without FULL would lose acknowledged writes
      // on a power cut, so stop here (the next start recovers).
      std::fprintf(stderr, "fatal: cannot restore synchronous=FULL: %s\n", full.ToString().c_str());
      std::abort();
    }
  }

  // On PostgreSQL a lease takes no writers' lock: its transaction locks the one job row it takes,
  // and `FOR UPDATE OF j SKIP LOCKED` passes the rows other leases hold, so workers leasing at
  // once neither wait on each other nor take the same job (a row another lease took and committed
  // meanwhile is read again under its lock, is no longer queued, and is passed too). SQLite has
  // one writer at a time, so there leases follow one another.
  //
  // The per-user limits still hold however many leases run at once, for one user or many: they
  // are checked when a job is queued (InsertJob, under the writers' lock) and count a user's jobs
  // queued or running, and a lease turns one of these into the other within one row, so it never
  // changes what they count; an InsertJob beside a lease counts that row in either state.
  //
  // The order is the one LeaseNextJob documents, among the jobs no other lease holds. A lease that
  // overlaps no other chooses exactly as before; two at once both read the turns as they were, so
  // they may take two jobs of one user (the second passes the first's row) and give their users
  // the same turn. No deadlock: a lease never waits for a job row, and waits for a job_turns row
  // only while another lease of the same user, which waits for nothing more, commits.
  //
  // REQUIRES: mu_ held.
  Result<std::optional<Job>> LeaseNextJobLocked(int64_t now, std::string_view owner,
                                                int64_t lease_expires_at, std::string_view pool) {
    RETURN_IF_ERROR(BeginLease());
    // Queued jobs are few (each scientist may queue only so many) and their rows small.
    const bool postgres = conn_->engine() == sql::Engine::kPostgres;
    const std::string take =
        std::string(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?1, "
            "lease_owner = ?2, lease_expires_at = ?3, kill_requested = 0 WHERE seq = (SELECT "
            "j.seq FROM jobs j LEFT JOIN job_turns t ON t.user_id = j.user_id WHERE j.status = "
            "'queued' AND j.origin = '' " +
            (pool.empty() ? std::string()
                          : "AND coalesce((SELECT w.doc FROM worker_pool_records w WHERE w.kind = "
                            "'code' AND w.key = j.code_id), 'default') = ?4 ") +
            "ORDER BY j.priority DESC, coalesce(t.turn, 0), j.seq LIMIT 1") +
        (postgres ? " FOR UPDATE OF j SKIP LOCKED" : "") + ")";
    constexpr const char* kNextTurn = "(SELECT coalesce(max(turn), 0) + 1 FROM job_turns)";
    constexpr const char* kOnConflict = " ON CONFLICT (user_id) DO UPDATE SET turn = excluded.turn";
    if (postgres) {
      // One statement takes the job, gives its user the next turn and reads the job as GetJob
      // does (a lease is a round trip per statement on this engine, and a worker leases once a
      // job). The read's joins see the tables as the statement began: only the job changes.
      Result<std::optional<Job>> leased = std::optional<Job>();
      {
        // ... and its code as GetCodeToRun reads it, which the run needs next. The job is running
        // from this statement on (status, started_at): a denial committed after it is a running
        // job's (its result held, the run killed), as one after the sandbox started always was.
        Stmt s(stmts_, "WITH l AS (" + take +
                           " RETURNING *), t AS (INSERT INTO job_turns (user_id, turn) SELECT "
                           "user_id, " +
                           kNextTurn + " FROM l" + kOnConflict + ") " +
                           JobSelect(true, "l", ", k.*") + " LEFT JOIN LATERAL (" +
                           CodeSelect(false) + " WHERE c.id = j.code_id) k ON true");
        s.Bind(now).Bind(std::string(owner)).Bind(lease_expires_at);
        if (!pool.empty()) s.Bind(std::string(pool));
        auto row = s.Step();
        if (!row.ok()) {
          leased = row.status();
        } else if (*row) {
          Job job = ReadJob(s);
          if (!s.IsNull(kJobSelectColumns)) {
            job.code_to_run = std::make_shared<const UserCode>(ReadCodeAt(s, kJobSelectColumns));
          }
          leased = std::optional<Job>(std::move(job));
          if (auto more = s.Step(); !more.ok()) leased = more.status();
        }
      }
      if (!leased.ok()) {
        Rollback();
        return leased.status();
      }
      RETURN_IF_ERROR(Commit());
      return leased;
    }
    auto leased = [&]() -> Result<std::optional<std::string>> {
      std::string id, user_id;
      {
        Stmt s(stmts_, take + " RETURNING id, user_id");
        s.Bind(now).Bind(std::string(owner)).Bind(lease_expires_at);
        if (!pool.empty()) s.Bind(std::string(pool));
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return std::optional<std::string>();
        id = s.Text(0);
        user_id = s.Text(1);
        ASSIGN_OR_RETURN(bool more, s.Step());
        (void)more;
      }
      Stmt t(stmts_, std::string("INSERT INTO job_turns (user_id, turn) VALUES (?1, ") + kNextTurn +
                         ")" + kOnConflict);
      RETURN_IF_ERROR(t.Bind(user_id).Run());
      return std::optional<std::string>(id);
    }();
    if (!leased.ok()) {
      Rollback();
      return leased.status();
    }
    RETURN_IF_ERROR(Commit());
    if (!*leased) return std::optional<Job>();
    ASSIGN_OR_RETURN(Job job, GetJobLocked(**leased));
    return std::optional<Job>(std::move(job));
  }

  Result<bool> FinishJob(const Job& j) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           ("UPDATE jobs SET status = ?, error = ?, failure = ?, error_detail = ?, "
            "result_format = ?, result_size = ?, result = ?, held = " +
            std::string(kHeldOnUpdate) +
            ", stdout = ?, stderr = ?, finished_at = ?, kept_result_bytes = ?, "
            "kept_log_bytes = ?, result_meta = ?, held_reason = ?, charged_bytes = CASE WHEN " +
            std::string(kHeldOnUpdate) + " != 0 THEN 0 ELSE charged_bytes END WHERE " +
            std::string(kUnderLease) + " RETURNING held"));
    s.Bind(j.status).Bind(j.error).Bind(j.failure).Bind(j.error_detail);
    s.Bind(j.result_format).Bind(j.result_size);
    if (j.result_data) {
      s.BindBlob(*j.result_data);
    } else {
      s.BindNull();
    }
    s.Bind(j.held)
        .BindLog(j.stdout_text)
        .BindLog(j.stderr_text)
        .Bind(j.finished_at)
        .Bind(j.status == "completed" ? j.result_size : int64_t{0})
        .Bind(static_cast<int64_t>(j.stdout_text.size() + j.stderr_text.size()))
        .Bind(j.status == "completed" ? j.result_meta : std::string())
        .Bind(j.held_reason)
        .Bind(j.held)
        .Bind(j.id)
        .Bind(j.lease_owner)
        .Bind(j.attempts);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotUnderLease();
    const bool held = s.Int(0) != 0;
    ASSIGN_OR_RETURN(bool more, s.Step());
    (void)more;
    return held;
  }

  Result<std::vector<HeldLease>> RenewJobLeases(std::string_view owner,
                                                const std::vector<HeldLease>& runs,
                                                int64_t expires_at) override {
    std::lock_guard lock(mu_);
    if (runs.empty()) return std::vector<HeldLease>();
    // Not synced, as a lease is not: lost in a crash, it is recovered like an expired one.
    RETURN_IF_ERROR(conn_->SetDurableCommits(false));
    auto held = [&]() -> Result<std::vector<HeldLease>> {
      RETURN_IF_ERROR(Begin());
      std::vector<HeldLease> out;
      for (const HeldLease& run : runs) {
        Stmt s(stmts_, "UPDATE jobs SET lease_expires_at = ? WHERE " + std::string(kUnderLease) +
                           " RETURNING kill_requested");
        s.Bind(expires_at).Bind(run.job_id).Bind(std::string(owner)).Bind(run.attempts);
        auto row = s.Step();
        if (!row.ok()) {
          Rollback();
          return row.status();
        }
        if (*row) out.push_back({run.job_id, run.attempts, s.Int(0) != 0});
      }
      RETURN_IF_ERROR(Commit());
      return out;
    }();
    RestoreFullSync();
    return held;
  }

  using Store::ChargeJobBytes;
  Result<bool> ChargeJobBytes(const Job& run, int64_t result_bytes, int64_t log_bytes,
                              int64_t charged_bytes, int64_t metered_bytes,
                              std::optional<int64_t> max_user_bytes) override {
    std::lock_guard lock(mu_);
    // One statement when it counts (the worker charges inside the transaction that records the
    // job's end): the quota is checked in the UPDATE's own condition. Alone, a transaction under
    // the writers' lock keeps concurrent charges of one user from both passing it.
    const bool own = tx_depth_ == 0;
    if (own) RETURN_IF_ERROR(Begin());
    auto charged = [&]() -> Result<bool> {
      // Nothing more is always allowed, even to a user already past the quota.
      const bool capped = max_user_bytes && charged_bytes > 0;
      Stmt s(stmts_,
             std::string("UPDATE jobs SET kept_result_bytes = ?1, kept_log_bytes = ?2, "
                         "charged_bytes = ?3, metered_bytes = ?7 WHERE id = ?4 AND "
                         "status = 'running' AND lease_owner = ?5 AND attempts = ?6") +
                 (capped ? " AND ?3 - jobs.charged_bytes + (SELECT coalesce(sum(o.charged_bytes), "
                           "0) FROM job_usage o WHERE o.user_id = jobs.user_id) + (SELECT "
                           "coalesce(sum(b.bytes), 0) FROM code_bytes b WHERE b.user_id = "
                           "jobs.user_id) + (SELECT coalesce(sum(pu.bytes), 0) FROM "
                           "project_usage pu WHERE pu.user_id = jobs.user_id) <= ?8"
                         : ""));
      s.Bind(result_bytes).Bind(log_bytes).Bind(charged_bytes).Bind(run.id);
      s.Bind(run.lease_owner).Bind(run.attempts).Bind(metered_bytes);
      if (capped) s.Bind(*max_user_bytes);
      RETURN_IF_ERROR(s.Run());
      if (conn_->Changes() > 0) return true;
      Stmt q(stmts_, "SELECT 1 FROM jobs WHERE " + std::string(kUnderLease));
      q.Bind(run.id).Bind(run.lease_owner).Bind(run.attempts);
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return NotUnderLease();
      return false;  // under its lease: the quota refused it
    }();
    return EndOwn(own, std::move(charged));
  }

  Result<JobUsage> UserJobUsage(const std::string& user_id) override {
    return UserJobUsageOf(user_id, nullptr);
  }
  Result<JobUsage> UserJobUsage(const std::string& user_id, const std::string& job_id) override {
    return UserJobUsageOf(user_id, &job_id);
  }
  Result<JobUsage> UserJobUsageOf(const std::string& user_id, const std::string* job_id) {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           std::string(
               // The running sums of version 27's triggers: one row, however many jobs.
               "SELECT coalesce(u.result_bytes, 0), coalesce(u.log_bytes, 0), "
               "coalesce(u.mock_bytes, 0), coalesce(u.unfinished, 0), "
               "coalesce(u.charged_bytes, 0), (SELECT coalesce(sum(b.bytes), 0) FROM "
               "code_bytes b WHERE b.user_id = ?1), (SELECT coalesce(sum(pu.bytes), 0) FROM "
               "project_usage pu WHERE pu.user_id = ?1)") +
               (job_id ? ", (SELECT h.held FROM jobs h WHERE h.id = ?2)" : "") +
               " FROM (SELECT 1 AS one) d LEFT JOIN job_usage u ON u.user_id = ?1");
    s.Bind(user_id);
    if (job_id) s.Bind(*job_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    JobUsage u;
    if (!row) return u;
    if (job_id && !s.IsNull(7)) u.job_held = s.Int(7) != 0;
    u.result_bytes = s.Int(0);
    u.log_bytes = s.Int(1);
    u.mock_bytes = s.Int(2);
    u.unfinished = s.Int(3);
    u.charged_bytes = s.Int(4);
    u.code_bytes = s.Int(5);
    u.project_bytes = s.Int(6);
    return u;
  }

  Result<std::vector<KeptOutput>> UserKeptOutputs(const std::string& user_id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "SELECT id, code_id, kind, status, held, error_released, kept_result_bytes, "
           "kept_log_bytes, least(octet_length(stderr), kept_log_bytes), metered_bytes, "
           "deposited FROM jobs WHERE user_id = ? AND (kept_result_bytes + kept_log_bytes > 0 OR "
           "metered_bytes > 0)");
    s.Bind(user_id);
    std::vector<KeptOutput> out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      KeptOutput k;
      k.job.id = s.Text(0);
      k.job.code_id = s.Text(1);
      k.job.user_id = user_id;
      k.job.kind = s.Text(2);
      k.job.status = s.Text(3);
      k.job.held = s.Int(4) != 0;
      k.job.error_released = s.Int(5) != 0;
      k.result_bytes = s.Int(6);
      k.stderr_bytes = s.Int(8);
      k.stdout_bytes = s.Int(7) - k.stderr_bytes;
      k.metered_bytes = s.Int(9);
      k.job.deposited = s.Int(10) != 0;
      out.push_back(std::move(k));
    }
    return out;
  }

  Result<int64_t> TotalJobBytes() override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT coalesce(sum(metered_bytes), 0) FROM jobs");
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : 0;
  }

  Result<std::vector<ExpiredOutput>> ExpireMockOutputs(const std::string& user_id, int64_t keep,
                                                       int64_t min_free_bytes,
                                                       int64_t now) override {
    std::lock_guard lock(mu_);
    // Alone, the look and the deletes are one transaction. Inside a caller's, the look needs none
    // of its own, and the deletes a savepoint only when there are some (a job's end looks, and
    // seldom deletes).
    const bool nested = tx_depth_ > 0;
    if (!nested) RETURN_IF_ERROR(Begin());
    // Newest first, each marked when it is past the newest `keep`.
    std::vector<std::pair<ExpiredOutput, bool>> candidates;
    Status looked = [&]() -> Status {
      Stmt s(stmts_,
             "SELECT j.id, j.metered_bytes, j.status = 'completed' AND "
             "j.result IS NULL, j.attempts FROM jobs j WHERE j.user_id = ? AND "
             "j.kind = 'mock' AND j.status NOT IN ('queued', 'running') AND NOT EXISTS "
             "(SELECT 1 FROM expired_outputs e WHERE e.job_id = j.id) ORDER BY j.seq DESC");
      s.Bind(user_id);
      int64_t newer = 0;
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return Status::Ok();
        ExpiredOutput e{s.Text(0), s.Int(1), s.Int(2) != 0, s.Int(3)};
        candidates.emplace_back(std::move(e), newer++ >= keep);
      }
    }();
    if (!looked.ok()) {
      if (!nested) Rollback();
      return looked;
    }
    const bool deletes = !candidates.empty() && (candidates.back().second || min_free_bytes > 0);
    if (nested && deletes) RETURN_IF_ERROR(Begin());
    auto expired = [&]() -> Result<std::vector<ExpiredOutput>> {
      std::vector<ExpiredOutput> out;
      int64_t freed = 0;
      for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
        if (!it->second && freed >= min_free_bytes) break;
        Stmt u(stmts_,
               "UPDATE jobs SET result = NULL, stdout = '', stderr = '', kept_result_bytes = 0, "
               "kept_log_bytes = 0, charged_bytes = 0, metered_bytes = 0 WHERE id = ?");
        RETURN_IF_ERROR(u.Bind(it->first.job_id).Run());
        Stmt e(stmts_, "INSERT INTO expired_outputs (job_id, expired_at) VALUES (?, ?)");
        RETURN_IF_ERROR(e.Bind(it->first.job_id).Bind(now).Run());
        freed += it->first.freed_bytes;
        out.push_back(std::move(it->first));
      }
      return out;
    }();
    if (nested && !deletes) return expired;
    if (!expired.ok()) {
      Rollback();
      return expired.status();
    }
    RETURN_IF_ERROR(Commit());
    return expired;
  }

  Result<std::optional<std::string>> GetJobResult(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "SELECT result FROM jobs WHERE id = ?");
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("job not found");
    if (s.IsNull(0)) return std::optional<std::string>();
    return std::optional<std::string>(s.Blob(0));
  }

  Result<JobKill> KillJob(const std::string& id, int64_t now) override {
    std::lock_guard lock(mu_);
    {
      Stmt s(stmts_,
             "UPDATE jobs SET status = 'killed', error = 'killed before it started', "
             "finished_at = ? WHERE id = ? AND status = 'queued'");
      RETURN_IF_ERROR(s.Bind(now).Bind(id).Run());
      if (conn_->Changes() > 0) return JobKill::kKilled;
    }
    {
      Stmt s(stmts_, "UPDATE jobs SET kill_requested = 1 WHERE id = ? AND status = 'running'");
      RETURN_IF_ERROR(s.Bind(id).Run());
      if (conn_->Changes() > 0) return JobKill::kRequested;
    }
    Stmt s(stmts_, "SELECT status FROM jobs WHERE id = ?");
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("job not found");
    return FailedPreconditionError("the job already ended: " + s.Text(0));
  }

  Status ReleaseJobError(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "UPDATE jobs SET error_released = 1 WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(id).Run());
    if (conn_->Changes() == 0) return NotFoundError("job not found");
    return Status::Ok();
  }

  Status InsertDepositedJob(const Job& j) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           "INSERT INTO jobs (id, code_id, user_id, kind, status, inputs, timeout_ms, created_at, "
           "started_at, finished_at, result_format, result_size, result, held, stdout, stderr, "
           "kept_result_bytes, kept_log_bytes, result_meta, priority, deposited, charged_bytes, "
           "metered_bytes) VALUES (?1, ?2, ?3, 'private', 'completed', ?4, 0, ?5, ?6, ?7, ?8, ?9, "
           "?10, ?11, ?12, ?13, ?14, ?15, ?16, 1, 1, ?17, ?14 + ?15)");
    s.Bind(j.id).Bind(j.code_id).Bind(j.user_id).Bind(j.inputs);
    s.Bind(j.created_at).Bind(j.started_at).Bind(j.finished_at);
    s.Bind(j.result_format).Bind(j.result_size);
    if (j.result_data) {
      s.BindBlob(*j.result_data);
    } else {
      s.BindNull();
    }
    return s.Bind(j.held)
        .BindLog(j.stdout_text)
        .BindLog(j.stderr_text)
        .Bind(j.result_size)
        .Bind(static_cast<int64_t>(j.stdout_text.size() + j.stderr_text.size()))
        .Bind(j.result_meta)
        // A completed private run shows its requester its result and stdout unless held.
        .Bind(j.held ? int64_t{0} : j.result_size + static_cast<int64_t>(j.stdout_text.size()))
        .Run();
  }

  Status SetJobChargedBytes(const std::string& id, int64_t bytes) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "UPDATE jobs SET charged_bytes = ? WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(bytes).Bind(id).Run());
    if (conn_->Changes() == 0) return NotFoundError("job not found");
    return Status::Ok();
  }

  Result<int64_t> SetJobMeteredBytes(const std::string& id, int64_t bytes) override {
    std::lock_guard lock(mu_);
    // Inside a caller's transaction the read and the write are atomic already (and a failed single
    // write leaves nothing to undo): no savepoint.
    const bool own = tx_depth_ == 0;
    if (own) RETURN_IF_ERROR(Begin());
    auto was = [&]() -> Result<int64_t> {
      Stmt q(stmts_, "SELECT metered_bytes FROM jobs WHERE id = ?");
      q.Bind(id);
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return NotFoundError("job not found");
      const int64_t before = q.Int(0);
      Stmt u(stmts_, "UPDATE jobs SET metered_bytes = ? WHERE id = ?");
      RETURN_IF_ERROR(u.Bind(bytes).Bind(id).Run());
      return before;
    }();
    return EndOwn(own, std::move(was));
  }

  Status ReleaseJob(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(stmts_, "UPDATE jobs SET held = 0 WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(id).Run());
    if (conn_->Changes() == 0) return NotFoundError("job not found");
    return Status::Ok();
  }

  Result<std::pair<int64_t, int64_t>> RecoverJobs(int64_t max_attempts, int64_t now,
                                                  std::optional<std::string_view> owner) override {
    std::lock_guard lock(mu_);
    // The jobs whose worker is gone (?1 now, ?2 whether an owner is given, ?3 that owner).
    constexpr std::string_view kGone =
        " WHERE status = 'running' AND origin = '' AND (lease_expires_at < ?1 OR "
        "(?2 = 1 AND lease_owner = ?3))";
    constexpr std::string_view kForget =
        "kept_result_bytes = 0, kept_log_bytes = 0, charged_bytes = 0, metered_bytes = 0, "
        "stdout = '', stderr = '', lease_owner = '', lease_expires_at = 0";
    auto bind = [&](Stmt& s) -> Stmt& {
      return s.Bind(now).Bind(owner.has_value()).Bind(std::string(owner.value_or("")));
    };
    // Every heartbeat of every worker comes here; almost always nothing has expired, which a
    // read finds out without a write transaction (on PostgreSQL, without the writers' lock).
    {
      Stmt any(stmts_, "SELECT 1 FROM jobs" + std::string(kGone) + " LIMIT 1");
      ASSIGN_OR_RETURN(bool found, bind(any).Step());
      if (!found) return std::make_pair(int64_t{0}, int64_t{0});
    }
    RETURN_IF_ERROR(Begin());
    auto done = [&]() -> Result<std::pair<int64_t, int64_t>> {
      Stmt k(stmts_, "UPDATE jobs SET status = 'killed', finished_at = ?1, error = 'killed', " +
                         std::string(kForget) + std::string(kGone) + " AND kill_requested = 1");
      RETURN_IF_ERROR(bind(k).Run());
      int64_t ended = conn_->Changes();
      // A private run that had written output, which its requester may have read as it ran: run
      // again, each crash would give more of it for one use (and `interrupted` counts none). It
      // ends as a failed run, which counts.
      Stmt o(stmts_,
             "UPDATE jobs SET status = 'errored', finished_at = ?1, " + std::string(kForget) +
                 ", error = 'interrupted: the server stopped while this private run ran, after it "
                 "had written output; it counts as a run and is not run again'" +
                 std::string(kGone) + " AND kind = 'private' AND stdout != ''");
      RETURN_IF_ERROR(bind(o).Run());
      ended += conn_->Changes();
      Stmt q(stmts_, "UPDATE jobs SET status = 'queued', " + std::string(kForget) +
                         std::string(kGone) + " AND attempts < ?4");
      RETURN_IF_ERROR(bind(q).Bind(max_attempts).Run());
      int64_t requeued = conn_->Changes();
      Stmt i(stmts_,
             "UPDATE jobs SET status = 'interrupted', finished_at = ?1, " + std::string(kForget) +
                 ", error = 'interrupted: the server stopped while the job ran, ' || attempts || "
                 "' times'" +
                 std::string(kGone));
      RETURN_IF_ERROR(bind(i).Run());
      ended += conn_->Changes();
      return std::make_pair(requeued, ended);
    }();
    if (!done.ok()) {
      Rollback();
      return done.status();
    }
    RETURN_IF_ERROR(Commit());
    return *done;
  }

  // Fills the assets of `datasets`, with their blobs, in one query. REQUIRES: mu_ held.
  Status LoadAssets(std::vector<Dataset>& datasets) {
    if (datasets.empty()) return Status::Ok();
    std::string sql =
        "SELECT a.dataset_id, a.id, a.name, a.description, a.format, a.mock_is_real, "
        "b.id, b.owner_id, b.size, b.sha256, b.format, b.schema, b.created_at, "
        "m.id, m.owner_id, m.size, m.sha256, m.format, m.schema, m.created_at, "
        "a.mock_needs_regeneration, a.metadata, b.meta, m.meta "
        "FROM assets a LEFT JOIN blobs b ON b.id = a.data_blob_id LEFT JOIN blobs m ON m.id = "
        "a.mock_blob_id "
        "WHERE a.dataset_id IN (";
    for (size_t i = 0; i < datasets.size(); ++i) sql += i ? ",?" : "?";
    sql += ") ORDER BY a.dataset_id, a.position";
    Stmt s(stmts_, sql.c_str());
    std::unordered_map<std::string, Dataset*> by_id;
    for (auto& d : datasets) {
      s.Bind(d.id);
      by_id[d.id] = &d;
    }
    auto blob_at = [&](int col) -> std::optional<Blob> {
      if (s.IsNull(col)) return std::nullopt;
      return Blob{s.Text(col),     s.Text(col + 1), s.Int(col + 2), s.Text(col + 3),
                  s.Text(col + 4), s.Text(col + 5), s.Int(col + 6)};
    };
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      Asset a;
      a.dataset_id = s.Text(0);
      a.id = s.Text(1);
      a.name = s.Text(2);
      a.description = s.Text(3);
      a.format = s.Text(4);
      a.mock_is_real = s.Int(5) != 0;
      a.data_blob = blob_at(6);
      a.mock_blob = blob_at(13);
      if (a.data_blob) a.data_blob_id = a.data_blob->id;
      if (a.mock_blob) a.mock_blob_id = a.mock_blob->id;
      a.mock_needs_regeneration = s.Int(20) != 0;
      a.metadata = s.Text(21);
      if (a.data_blob) a.data_blob->meta = s.Text(22);
      if (a.mock_blob) a.mock_blob->meta = s.Text(23);
      by_id[a.dataset_id]->assets.push_back(std::move(a));
    }
    return Status::Ok();
  }

  // REQUIRES: mu_ held.
  Status Exec(const std::string& sql) {
    RETURN_IF_ERROR(BeforeStatement(sql));
    return conn_->Exec(sql);
  }

  // Whether this thread runs RunIdempotent's handler on this store.
  bool Deferring() const { return tls_idempotent_store == this; }

  // A change made outside any transaction while this thread defers its changes: it opens the
  // deferred transaction (see RunIdempotent). REQUIRES: mu_ held.
  Status BeforeStatement(const std::string& sql) {
    if (tx_depth_ != 0 || !Deferring() || !MayWrite(sql)) return Status::Ok();
    RETURN_IF_ERROR(conn_->BeginWrite());
    tx_depth_ = 1;
    HoldDeferred();
    return Status::Ok();
  }
  // The deferred transaction stays open past the method that opened it: the store stays held by
  // this thread (one more hold of the recursive mu_) until RunIdempotent ends it.
  // REQUIRES: mu_ held, tx_depth_ == 1.
  void HoldDeferred() {
    if (deferred_open_) return;
    mu_.lock();
    deferred_open_ = true;
  }
  // Ends the deferred transaction without keeping it. Caches may have seen its changes: every
  // version moves, so that they read again. REQUIRES: mu_ held, deferred_open_.
  void DropDeferred() {
    tx_depth_ = 0;
    RolledBackAbove(0);
    (void)conn_->Exec("ROLLBACK");
    ForgetCachedVersions();
  }
  // Every version moves: caches that may hold what a rolled-back transaction wrote read again.
  void ForgetCachedVersions() {
    ++settings_version_;
    ++catalog_version_;
    ++auth_version_;
  }

  // Opens a transaction, or a savepoint inside the one InTransaction holds, so that a method's
  // own all-or-nothing block nests in a caller's. REQUIRES: mu_ held.
  Status Begin() {
    if (tx_depth_ == 0) {
      RETURN_IF_ERROR(conn_->BeginWrite());
    } else {
      RETURN_IF_ERROR(Savepoint("SAVEPOINT sp" + std::to_string(tx_depth_)));
    }
    ++tx_depth_;
    return Status::Ok();
  }
  // Ends the transaction a method opened for itself (`own`: it was outside any), committing
  // unless `r` failed; inside a caller's transaction, returns `r` as it is. REQUIRES: mu_ held.
  template <typename T>
  Result<T> EndOwn(bool own, Result<T> r) {
    if (!own) return r;
    if (!r.ok()) {
      Rollback();
      return r;
    }
    RETURN_IF_ERROR(Commit());
    return r;
  }
  Status Commit() {
    if (tx_depth_ == 1 && Deferring()) {
      HoldDeferred();  // commits with the answer (RunIdempotent)
      return Status::Ok();
    }
    --tx_depth_;
    if (tx_depth_ == 0) return CommitOutermost();
    // What waited for the released savepoint now waits with its parent (and goes if it rolls back).
    for (auto& entry : after_commit_) entry.first = std::min(entry.first, tx_depth_);
    for (auto& entry : after_rollback_) entry.first = std::min(entry.first, tx_depth_);
    return Savepoint("RELEASE sp" + std::to_string(tx_depth_));
  }
  // COMMIT, then what waited for it (AfterCommit). REQUIRES: mu_ held, tx_depth_ == 0.
  Status CommitOutermost() {
    Status st = conn_->Exec("COMMIT");
    std::vector<std::pair<int, std::function<void()>>> after, undo;
    after.swap(after_commit_);
    undo.swap(after_rollback_);
    if (!st.ok()) {
      for (auto& [depth, fn] : undo) fn();
      return st;
    }
    for (auto& [depth, fn] : after) fn();
    return Status::Ok();
  }
  // Forgets what waited for the changes made above `depth`, which are rolled back.
  // REQUIRES: mu_ held.
  void RolledBackAbove(int depth) {
    std::erase_if(after_commit_, [depth](const auto& e) { return e.first > depth; });
    // ... and runs what waited for them to be rolled back, newest first.
    std::vector<std::function<void()>> undo;
    for (auto it = after_rollback_.rbegin(); it != after_rollback_.rend(); ++it) {
      if (it->first > depth) undo.push_back(std::move(it->second));
    }
    std::erase_if(after_rollback_, [depth](const auto& e) { return e.first > depth; });
    for (auto& fn : undo) fn();
  }
  void Rollback() {
    --tx_depth_;
    RolledBackAbove(tx_depth_);
    if (tx_depth_ == 0) {
      (void)Exec("ROLLBACK");
      return;
    }
    const std::string sp = "sp" + std::to_string(tx_depth_);
    (void)Exec("ROLLBACK TO " + sp);
    (void)Exec("RELEASE " + sp);
  }
  // SQLite keeps savepoint statements prepared (a store method inside a large transaction opens
  // thousands); PostgreSQL runs them as they come.
  Status Savepoint(const std::string& sql) {
    if (conn_->engine() == sql::Engine::kSqlite) return Stmt(stmts_, sql).Run();
    return Exec(sql);
  }

  int64_t LatestVersion() const { return static_cast<int64_t>(std::size(kMigrations)); }

  // Brings the schema to this binary's version, one version per transaction. Each step takes
  // the writers' lock and reads the version under it, so that servers starting together against
  // one database migrate it once, one after the other. REQUIRES: mu_ held.
  Status Migrate() {
    const int64_t latest = LatestVersion();
    for (;;) {
      RETURN_IF_ERROR(conn_->BeginWrite());
      auto step = [&]() -> Result<bool> {
        ASSIGN_OR_RETURN(const int64_t v, conn_->SchemaVersion());
        if (v > latest) {
          return FailedPreconditionError("database schema version " + std::to_string(v) +
                                         " is newer than this datasite (" + std::to_string(latest) +
                                         "): upgrade the datasite");
        }
        if (v == latest) return false;
        int64_t next = v + 1;
        if (conn_->engine() == sql::Engine::kPostgres && v < kPostgresBaselineVersion) {
          // PostgreSQL support starts at this version: an empty database gets its schema at once.
          if (v != 0)
            return InternalError("unknown PostgreSQL schema version " + std::to_string(v));
          RETURN_IF_ERROR(Exec(kPostgresBaseline));
          next = kPostgresBaselineVersion;
        } else if (conn_->engine() == sql::Engine::kPostgres) {
          RETURN_IF_ERROR(Exec(kPostgresMigrations[v - kPostgresBaselineVersion]));
        } else {
          RETURN_IF_ERROR(Exec(kMigrations[v]));
          if (std::string_view(kMigrations[v]).find("ADD COLUMN hash") != std::string_view::npos) {
            ++tx_depth_;  // the migration's own transaction: AppendAuditLocked runs inside it
            Status st = ChainLegacyAudit();
            --tx_depth_;
            RETURN_IF_ERROR(st);
          }
        }
        RETURN_IF_ERROR(conn_->SetSchemaVersion(next));
        return true;
      }();
      if (!step.ok()) {
        (void)Exec("ROLLBACK");
        return step.status();
      }
      RETURN_IF_ERROR(Exec("COMMIT"));
      if (!*step) return Status::Ok();
    }
  }

  // Fills p.members, oldest member first. REQUIRES: mu_ held.
  Status ReadMembersLocked(Project& p) {
    Stmt s(stmts_,
           "SELECT m.user_id, coalesce(u.name, ''), coalesce(u.email, '') FROM project_members m "
           "LEFT JOIN users u ON u.id = m.user_id WHERE m.project_id = ? ORDER BY m.rowid");
    s.Bind(p.id);
    ASSIGN_OR_RETURN(p.members, ReadAll(s, [](const Stmt& r) {
                       return ProjectMember{r.Text(0), r.Text(1), r.Text(2)};
                     }));
    return Status::Ok();
  }

  // REQUIRES: mu_ held. Fills g.user_ids, in the order the grant named them.
  Status ReadGrantUsers(Grant& g) {
    Stmt s(stmts_, "SELECT user_id FROM grant_users WHERE grant_id = ? ORDER BY position");
    s.Bind(g.id);
    ASSIGN_OR_RETURN(g.user_ids, ReadAll(s, [](const Stmt& r) { return r.Text(0); }));
    return Status::Ok();
  }

  static void BindOptional(Stmt& s, const std::optional<std::string>& v) {
    if (v) {
      s.Bind(*v);
    } else {
      s.BindNull();
    }
  }

  // REQUIRES: mu_ held.
  Result<int64_t> InsertCodeLocked(const UserCode& c) {
    int64_t version = 1;
    {
      Stmt v(stmts_,
             "SELECT coalesce(max(version), 0) + 1 FROM user_code WHERE user_id = ? AND name = ?");
      v.Bind(c.user_id).Bind(c.name);
      ASSIGN_OR_RETURN(bool row, v.Step());
      if (row) version = v.Int(0);
    }
    Stmt s(stmts_,
           "INSERT INTO user_code (id, user_id, name, version, source, code_hash, inputs, "
           "output_policy, output_limit, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    RETURN_IF_ERROR(s.Bind(c.id)
                        .Bind(c.user_id)
                        .Bind(c.name)
                        .Bind(version)
                        .Bind(c.source)
                        .Bind(c.code_hash)
                        .Bind(c.inputs)
                        .Bind(c.output_policy)
                        .Bind(c.output_limit)
                        .Bind(c.created_at)
                        .Run());
    Stmt b(stmts_, "INSERT INTO code_bytes (code_id, user_id, bytes) VALUES (?, ?, ?)");
    RETURN_IF_ERROR(b.Bind(c.id).Bind(c.user_id).Bind(c.stored_bytes).Run());
    return version;
  }

  // REQUIRES: mu_ held.
  Result<Job> GetJobLocked(const std::string& id) {
    Stmt s(stmts_, (JobSelect(true) + " WHERE j.id = ?"));
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("job not found");
    return ReadJob(s);
  }

  // REQUIRES: mu_ held.
  Result<std::optional<AuditCheckpoint>> GetAuditCheckpointLocked() {
    Stmt s(stmts_, "SELECT seq, hash, at, signature FROM audit_checkpoint");
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<AuditCheckpoint>();
    return std::optional<AuditCheckpoint>(
        AuditCheckpoint{s.Int(0), s.Text(1), s.Int(2), s.Blob(3)});
  }

  // The chain's head: the last entry's seq and hash, else the checkpoint's, else (seq 0) the
  // genesis of this server. REQUIRES: mu_ held, inside a transaction (so nothing appends between
  // this read and the insert that follows it).
  Result<std::pair<int64_t, std::string>> AuditHeadLocked() {
    {
      Stmt s(stmts_, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1");
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) return std::make_pair(s.Int(0), s.Text(1));
    }
    ASSIGN_OR_RETURN(auto cp, GetAuditCheckpointLocked());
    if (cp) return std::make_pair(cp->seq, cp->hash);
    Stmt s(stmts_, "SELECT server_id FROM server_identity");
    ASSIGN_OR_RETURN(bool row, s.Step());
    return std::make_pair(int64_t{0}, AuditGenesisHash(row ? s.Text(0) : std::string()));
  }

  // REQUIRES: mu_ held, inside a transaction.
  Status AppendAuditLocked(const AuditEvent& in) {
    if (conn_->engine() == sql::Engine::kPostgres) {
      // One round trip instead of three: PostgreSQL reads the head, hashes the entry as
      // AuditEntryHash does (each field its 8-byte big-endian length, then its UTF-8 bytes) and
      // inserts it, in one statement under the writers' lock. An empty table (the head is the
      // checkpoint's or the genesis) inserts nothing, and the general way below follows.
      auto field = [](const std::string& e) {
        return "int8send(octet_length(convert_to(" + e + ", 'UTF8'))::int8) || convert_to(" + e +
               ", 'UTF8')";
      };
      Stmt s(stmts_,
             "INSERT INTO audit_events (seq, at, actor, action, target, detail, prev_hash, hash) "
             "SELECT h.seq + 1, ?1, ?2, ?3, ?4, ?5, h.hash, encode(sha256(" +
                 field("'datasite audit entry v1'::text") + " || " + field("(h.seq + 1)::text") +
                 " || " + field("(?1)::int8::text") + " || " + field("(?2)::text") + " || " +
                 field("(?3)::text") + " || " + field("(?4)::text") + " || " + field("(?5)::text") +
                 " || " + field("h.hash") +
                 "), 'hex') FROM (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1) h");
      RETURN_IF_ERROR(
          s.Bind(in.at).Bind(in.actor).Bind(in.action).Bind(in.target).Bind(in.detail).Run());
      if (conn_->Changes() > 0) return Status::Ok();
    }
    ASSIGN_OR_RETURN(auto head, AuditHeadLocked());
    AuditEvent e = in;
    e.seq = head.first + 1;
    e.prev_hash = head.second;
    e.hash = AuditEntryHash(e);
    Stmt s(stmts_,
           "INSERT INTO audit_events (seq, at, actor, action, target, detail, prev_hash, hash) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    return s.Bind(e.seq)
        .Bind(e.at)
        .Bind(e.actor)
        .Bind(e.action)
        .Bind(e.target)
        .Bind(e.detail)
        .Bind(e.prev_hash)
        .Bind(e.hash)
        .Run();
  }

  // Chains the entries written before the audit log was a chain (those with no hash), in seq
  // order from the genesis, renumbering them 1, 2, ... (a failed old append left no gap worth
  // keeping). Runs inside the migration that adds the chain, and only while no entry is chained
  // yet: afterwards an entry without a hash is damage for verify to report, never something to
  // repair. REQUIRES: mu_ held, inside a transaction.
  Status ChainLegacyAudit() {
    {
      Stmt c(stmts_, "SELECT count(*) FROM audit_events WHERE hash != ''");
      ASSIGN_OR_RETURN(bool row, c.Step());
      if (row && c.Int(0) > 0) return Status::Ok();
    }
    std::vector<AuditEvent> old;
    {
      Stmt s(stmts_, std::string("SELECT ") + kAuditColumns + " FROM audit_events ORDER BY seq");
      ASSIGN_OR_RETURN(old, ReadAll(s, ReadAudit));
    }
    if (old.empty()) return Status::Ok();
    RETURN_IF_ERROR(Exec("DELETE FROM audit_events"));
    for (const AuditEvent& e : old) RETURN_IF_ERROR(AppendAuditLocked(e));
    return Status::Ok();
  }

  Result<User> GetUserWhere(const char* column, const std::string& value) {
    std::lock_guard lock(mu_);
    Stmt s(stmts_,
           (std::string("SELECT ") + kUserColumns + " FROM users WHERE " + column + " = ?"));
    s.Bind(value);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("user not found");
    return ReadUser(s);
  }

  // A version's value, which moves at every read while changes of other processes can't be heard.
  int64_t SharedVersion(std::atomic<int64_t>& version) {
    if (listener_ != nullptr && !listener_->healthy()) return ++version;
    return version.load();
  }
  void JobsChanged(JobsChange change) {
    std::lock_guard lock(jobs_listener_mu_);
    if (jobs_listener_) jobs_listener_(change);
  }

  // Recursive: a call made inside InTransaction's body takes it again on the same thread.
  std::recursive_mutex mu_;
  int tx_depth_ = 0;            // Guarded by mu_: open transactions and savepoints.
  bool deferred_open_ = false;  // Guarded by mu_: RunIdempotent's transaction is open.
  // Guarded by mu_: AfterCommit's functions, with the transaction depth each was given at.
  std::vector<std::pair<int, std::function<void()>>> after_commit_;
  // Guarded by mu_: AfterRollback's functions, with the transaction depth each was given at.
  std::vector<std::pair<int, std::function<void()>>> after_rollback_;
  std::unique_ptr<sql::Connection> conn_;  // Guarded by mu_.
  StmtCache stmts_;                        // Guarded by mu_.
  // PostgreSQL only: hears other processes' changes (StartListening). Set once, before use.
  std::unique_ptr<sql::Listener> listener_;
  std::mutex jobs_listener_mu_;
  std::function<void(JobsChange)> jobs_listener_;  // Guarded by jobs_listener_mu_.
  std::atomic<int64_t> settings_version_{0};
  std::atomic<int64_t> catalog_version_{0};
  // Bumped by every update or delete of a user or a session; inserts change no cached check.
  std::atomic<int64_t> auth_version_{0};
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  ASSIGN_OR_RETURN(auto conn, sql::OpenSqlite(path, /*read_only=*/false));
  auto store = std::make_unique<SqlStore>(std::move(conn));
  RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<Store>> OpenSqliteStoreReadOnly(const std::string& path) {
  ASSIGN_OR_RETURN(auto conn, sql::OpenSqlite(path, /*read_only=*/true));
  auto store = std::make_unique<SqlStore>(std::move(conn));
  RETURN_IF_ERROR(store->InitReadOnly());
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<Store>> OpenPostgresStoreReadOnly(const std::string& url) {
  ASSIGN_OR_RETURN(auto conn, sql::OpenPostgres(url, /*read_only=*/true));
  auto store = std::make_unique<SqlStore>(std::move(conn));
  RETURN_IF_ERROR(store->InitReadOnly());
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url) {
  ASSIGN_OR_RETURN(auto conn, sql::OpenPostgres(url));
  auto store = std::make_unique<SqlStore>(std::move(conn));
  RETURN_IF_ERROR(store->Init());
  RETURN_IF_ERROR(store->StartListening(url));
  return std::unique_ptr<Store>(std::move(store));
}

Result<int64_t> CopySqliteToPostgres(
    const std::string& sqlite_path, const std::string& url,
    const std::function<void(const std::string& table, int64_t rows)>& progress) {
  ASSIGN_OR_RETURN(auto from, sql::OpenSqlite(sqlite_path, /*read_only=*/true));
  ASSIGN_OR_RETURN(const int64_t version, from->SchemaVersion());
  const int64_t latest = static_cast<int64_t>(std::size(kMigrations));
  if (version != latest) {
    return FailedPreconditionError("the SQLite database is at schema version " +
                                   std::to_string(version) + ", this datasite at " +
                                   std::to_string(latest) +
                                   ": launch the server on it once (it migrates), stop it, then "
                                   "copy");
  }
  // The schema, made (or found current) by the store itself.
  { ASSIGN_OR_RETURN(auto made, OpenPostgresStore(url)); }
  ASSIGN_OR_RETURN(auto to, sql::OpenPostgres(url));
  {
    ASSIGN_OR_RETURN(auto c,
                     to->Prepare("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM "
                                 "settings) + (SELECT count(*) FROM server_identity)"));
    ASSIGN_OR_RETURN(bool row, c->Step());
    if (row && c->Int(0) != 0) {
      return FailedPreconditionError("the PostgreSQL database " + sql::RedactUrl(url) +
                                     " holds a datasite already: copy into an empty database");
    }
  }
  // Names read from the file go into SQL: only plain ones, which need no quoting.
  auto plain = [](const std::string& name) {
    if (name.empty() || name.size() > 63 || !std::islower(static_cast<unsigned char>(name[0]))) {
      return false;
    }
    for (char c : name) {
      const auto u = static_cast<unsigned char>(c);
      if (!std::islower(u) && !std::isdigit(u) && c != '_') return false;
    }
    return true;
  };
  // The schema's tables (PostgreSQL's, made above by this binary), in the order SQLite created
  // them, which puts every table after those it refers to. A table of the file the schema lacks
  // is refused, not skipped: the file is not a datasite's of this version.
  std::vector<std::string> tables;
  {
    ASSIGN_OR_RETURN(
        auto c, from->Prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
                              "LIKE 'sqlite_%' ORDER BY rowid"));
    ASSIGN_OR_RETURN(auto known, to->Prepare("SELECT 1 FROM information_schema.tables WHERE "
                                             "table_schema = current_schema() AND table_name = ?"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, c->Step());
      if (!row) break;
      std::string name = c->Text(0);
      if (!plain(name)) return InvalidArgumentError("the SQLite file has a table named oddly");
      known->BindText(1, name);
      ASSIGN_OR_RETURN(bool exists, known->Step());
      known->Reset();
      if (!exists) {
        return FailedPreconditionError("the SQLite file has a table, " + name +
                                       ", that a datasite's database has not");
      }
      tables.push_back(std::move(name));
    }
  }
  // The numbers SQLite's AUTOINCREMENT gave (deleted rows' too): never to be given again.
  std::map<std::string, int64_t> given;
  {
    ASSIGN_OR_RETURN(auto c, from->Prepare("SELECT name, seq FROM sqlite_sequence"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, c->Step());
      if (!row) break;
      given[c->Text(0)] = c->Int(1);
    }
  }
  RETURN_IF_ERROR(to->BeginWrite());
  int64_t total = 0;
  auto copy = [&]() -> Status {
    for (const std::string& table : tables) {
      // Its rows come from SQLite as they are: the triggers (change log, versions) stay off, and
      // the rows the schema starts with (change_origin, versions) give way to SQLite's.
      RETURN_IF_ERROR(
          to->Exec("ALTER TABLE " + table + " DISABLE TRIGGER USER; DELETE FROM " + table));
      std::vector<std::string> columns;
      {
        ASSIGN_OR_RETURN(auto c, from->Prepare("SELECT name FROM pragma_table_info('" + table +
                                               "') ORDER BY cid"));
        for (;;) {
          ASSIGN_OR_RETURN(bool row, c->Step());
          if (!row) break;
          columns.push_back(c->Text(0));
          if (!plain(columns.back())) {
            return InvalidArgumentError("the SQLite file has a column named oddly in " + table);
          }
        }
      }
      std::set<std::string> bytea;  // PostgreSQL's byte columns of the table
      {
        ASSIGN_OR_RETURN(auto c, to->Prepare("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_schema = current_schema() AND "
                                             "table_name = ? AND data_type = 'bytea'"));
        c->BindText(1, table);
        for (;;) {
          ASSIGN_OR_RETURN(bool row, c->Step());
          if (!row) break;
          bytea.insert(c->Text(0));
        }
      }
      std::string names, marks;
      for (size_t i = 0; i < columns.size(); ++i) {
        names += (i ? ", " : "") + columns[i];
        marks += i ? ", ?" : "?";
      }
      ASSIGN_OR_RETURN(auto read,
                       from->Prepare("SELECT " + names + " FROM " + table + " ORDER BY rowid"));
      ASSIGN_OR_RETURN(auto write, to->Prepare("INSERT INTO " + table + " (" + names +
                                               ") VALUES (" + marks + ")"));
      int64_t rows = 0;
      for (;;) {
        ASSIGN_OR_RETURN(bool row, read->Step());
        if (!row) break;
        for (int i = 0; i < static_cast<int>(columns.size()); ++i) {
          switch (read->Type(i)) {
            case sql::ValueType::kNull:
              write->BindNull(i + 1);
              break;
            case sql::ValueType::kInt:
              write->BindInt(i + 1, read->Int(i));
              break;
            case sql::ValueType::kBlob:
              write->BindBlob(i + 1, read->Blob(i));
              break;
            case sql::ValueType::kText:
              // Job logs are text in SQLite, bytes (any) in PostgreSQL.
              if (bytea.count(columns[i])) {
                write->BindBlob(i + 1, read->Text(i));
              } else {
                write->BindText(i + 1, read->Text(i));
              }
              break;
            case sql::ValueType::kOther:
              return InternalError(table + "." + columns[i] +
                                   ": a value of a type the store "
                                   "never writes (row " +
                                   std::to_string(rows + 1) + ")");
          }
        }
        if (Status st = write->Step().status(); !st.ok()) {
          return Status(st.code(),
                        table + ", row " + std::to_string(rows + 1) + ": " + st.message());
        }
        write->Reset();
        ++rows;
      }
      RETURN_IF_ERROR(to->Exec("ALTER TABLE " + table + " ENABLE TRIGGER USER"));
      // Identity columns go on after the highest number SQLite gave, or copied.
      for (const std::string& column : columns) {
        if (column != "seq") continue;
        const std::string high = "greatest((SELECT max(seq) FROM " + table + "), " +
                                 std::to_string(given.count(table) ? given[table] : 0) + ")";
        RETURN_IF_ERROR(to->Exec("SELECT setval(pg_get_serial_sequence('" + table + "', 'seq'), " +
                                 "greatest(" + high + ", 1), " + high + " > 0)"));
      }
      total += rows;
      if (progress) progress(table, rows);
    }
    return Status::Ok();
  }();
  if (!copy.ok()) {
    (void)to->Exec("ROLLBACK");
    return copy;
  }
  RETURN_IF_ERROR(to->Exec("COMMIT"));
  return total;
}

bool IsPostgresUrl(std::string_view location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

}  // namespace datasite::store
