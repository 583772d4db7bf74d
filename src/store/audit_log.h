// The audit log's hash chain: how an entry is hashed, how the chain is verified, and retention.
//
// Each entry's hash is SHA-256 over a canonical encoding of (seq, at, actor, action, target,
// detail, prev_hash); prev_hash is the hash of the entry before it. The first entry's prev_hash is
// the genesis hash, which commits to the server id; after a retention prune, the first remaining
// entry's prev_hash is the hash kept in the signed checkpoint. So any edit, deletion, insertion or
// reordering of entries breaks the chain at the first entry touched, and a cut tail is found by
// comparing with a head saved earlier. Rows written before the chain existed are chained once,
// by the migration that added it (see sql_store.cc).
//
// What it does not do: someone who can write the database AND recompute every later hash (there
// is no secret in the chain) goes unnoticed unless a head was saved elsewhere; keep `audit verify`
// heads (or exports) outside the server. Checkpoints are signed with the server's key, which lives
// in the same database: they stop a prune being faked by whoever lacks that key.
#ifndef DATASITE_STORE_AUDIT_LOG_H_
#define DATASITE_STORE_AUDIT_LOG_H_

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "store/store.h"

namespace datasite::store {

// The prev_hash of the first entry of a server's chain (lowercase hex).
std::string AuditGenesisHash(const std::string& server_id);
// The hash of `e` (its seq and prev_hash included), lowercase hex.
std::string AuditEntryHash(const AuditEvent& e);
// The bytes a checkpoint's signature covers.
std::string AuditCheckpointMessage(const std::string& server_id, int64_t seq,
                                   const std::string& hash);

struct AuditVerdict {
  bool ok = false;
  int64_t entries = 0;        // entries checked
  int64_t first_bad_seq = 0;  // when !ok: the first entry found wrong (0: not an entry's fault)
  std::string reason;         // when !ok: what is wrong, in a sentence
  int64_t head_seq = 0;       // the last entry's seq (the checkpoint's when none remain)
  std::string head;           // the chain's current head hash
  std::optional<int64_t> checkpoint_seq;  // the last pruned entry, when pruned
};

// Walks the whole chain. `saved_head`, when given, is a head printed earlier: the chain must still
// contain it (else its tail was cut or rewritten). Errors only when the store can't be read; a
// broken chain is a verdict with ok = false.
Result<AuditVerdict> VerifyAuditLog(Store& store, const std::optional<std::string>& saved_head);

// Retention: removes the entries with seq < `before_seq` (a whole prefix, never the middle) after
// verifying the chain, and keeps a checkpoint of the last one removed, signed with the server's
// signing key. Returns how many were removed. kFailedPrecondition when the chain does not verify
// (a damaged log is never pruned into a clean-looking one).
Result<int64_t> PruneAuditLog(Store& store, int64_t before_seq, int64_t now);
// The seq a prune "before `time`" starts from: one past the last entry written before `time`.
Result<int64_t> AuditSeqAtTime(Store& store, int64_t time);

// The JSON of an entry and of a verdict, as the audit routes answer and `datasite audit` prints.
nlohmann::json AuditEntryJson(const AuditEvent& e);
nlohmann::json AuditVerdictJson(const AuditVerdict& v);

}  // namespace datasite::store

#endif  // DATASITE_STORE_AUDIT_LOG_H_
