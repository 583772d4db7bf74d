// For tests only: SQL that undoes the sync migration (issue 14), for the upgrade tests that take a
// database back to an older schema version.
#ifndef DATASITE_STORE_SYNC_SCHEMA_TEST_UTIL_H_
#define DATASITE_STORE_SYNC_SCHEMA_TEST_UTIL_H_

namespace datasite::store {

// Undoes the migrations after sync's (the quota's charged bytes, the storage meter's metered
// bytes, the jobs' leases, the shared versions, the rate events, the idempotency keys, the code's
// bytes, the job usage's sums, the grants, the output checks); goes before kDropSync.
constexpr const char* kDropJobCharges =
    "DROP TABLE worker_pool_records; DROP TABLE dp_releases; DROP TABLE dp_budgets; DROP TABLE "
    "dp_policies; "
    "DROP TABLE api_endpoints; DROP TABLE output_checks; ALTER TABLE jobs DROP COLUMN held_reason; "
    "DROP INDEX jobs_grant; ALTER TABLE jobs DROP COLUMN grant_id; DROP TABLE grant_users; "
    "DROP TABLE grants; "
    "DROP TRIGGER job_usage_insert; DROP TRIGGER job_usage_update; DROP TRIGGER job_usage_delete; "
    "DROP TABLE job_usage; "
    "DROP TABLE project_usage; DROP TABLE code_bytes; DROP TABLE idempotency_keys; DROP TABLE "
    "rate_events; "
    "DROP TRIGGER version_users_update; DROP TRIGGER version_users_delete; "
    "DROP TRIGGER version_sessions_update; DROP TRIGGER version_sessions_delete; "
    "DROP TRIGGER version_datasets_insert; DROP TRIGGER version_datasets_update; "
    "DROP TRIGGER version_datasets_delete; DROP TRIGGER version_assets_insert; "
    "DROP TRIGGER version_assets_update; DROP TRIGGER version_assets_delete; "
    "DROP TRIGGER version_settings_insert; DROP TRIGGER version_settings_update; "
    "DROP TABLE versions; "
    "DROP INDEX jobs_lease; ALTER TABLE jobs DROP COLUMN kill_requested; "
    "ALTER TABLE jobs DROP COLUMN lease_expires_at; ALTER TABLE jobs DROP COLUMN lease_owner; "
    "ALTER TABLE jobs DROP COLUMN metered_bytes; "
    "DROP INDEX jobs_usage; ALTER TABLE jobs DROP COLUMN charged_bytes; "
    "CREATE INDEX jobs_usage ON jobs(user_id, kind, status, kept_result_bytes, kept_log_bytes); ";

constexpr const char* kDropSync =
    "DROP TRIGGER change_users_insert; DROP TRIGGER change_users_update; "
    "DROP TRIGGER change_users_delete; DROP TRIGGER change_user_code_insert; "
    "DROP TRIGGER change_user_code_update; DROP TRIGGER change_user_code_delete; "
    "DROP TRIGGER change_code_policies_insert; DROP TRIGGER change_code_policies_update; "
    "DROP TRIGGER change_code_policies_delete; DROP TRIGGER change_code_requests_insert; "
    "DROP TRIGGER change_code_requests_update; DROP TRIGGER change_code_requests_delete; "
    "DROP TRIGGER change_request_decisions_insert; DROP TRIGGER change_request_decisions_update; "
    "DROP TRIGGER change_request_decisions_delete; DROP TRIGGER change_datasets_insert; "
    "DROP TRIGGER change_datasets_update; DROP TRIGGER change_datasets_delete; "
    "DROP TRIGGER change_assets_insert; DROP TRIGGER change_assets_update; "
    "DROP TRIGGER change_assets_delete; DROP TRIGGER change_projects_insert; "
    "DROP TRIGGER change_projects_update; DROP TRIGGER change_projects_delete; "
    "DROP TRIGGER change_project_members_insert; DROP TRIGGER change_project_members_update; "
    "DROP TRIGGER change_project_members_delete; DROP TRIGGER change_project_events_insert; "
    "DROP TRIGGER change_project_events_update; DROP TRIGGER change_project_events_delete; "
    "DROP TRIGGER change_jobs_insert; DROP TRIGGER change_jobs_update; "
    "DROP TRIGGER change_jobs_delete; "
    "DROP TABLE change_log; DROP TABLE change_origin; DROP TABLE sync_peers; "
    "DROP TABLE sync_revoked_keys; DROP TABLE sync_objects; DROP TABLE sync_inventory; "
    "DROP TABLE sync_ignored; DROP TABLE sync_imports; ALTER TABLE jobs DROP COLUMN origin; ";

}  // namespace datasite::store

#endif  // DATASITE_STORE_SYNC_SCHEMA_TEST_UTIL_H_
