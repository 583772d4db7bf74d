#include "store/audit_log.h"

#include <sodium.h>

#include <cstdio>
#include <vector>

#include "core/clock.h"
#include "core/sha256.h"

namespace datasite::store {
namespace {

constexpr int64_t kPage = 1000;

// Appends `v` with its length first (8 bytes, big-endian), so no two field lists encode alike.
void Field(std::string& out, const std::string& v) {
  uint64_t n = v.size();
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += v;
}

std::string Seq(int64_t seq) { return "seq " + std::to_string(seq); }

AuditVerdict Bad(AuditVerdict v, int64_t seq, std::string reason) {
  v.ok = false;
  v.first_bad_seq = seq;
  v.reason = std::move(reason);
  return v;
}

// One pass over the chain. REQUIRES: the identity exists.
Result<AuditVerdict> VerifyOnce(Store& store, const Identity& id,
                                const std::optional<std::string>& saved_head,
                                std::optional<AuditCheckpoint>* cp_seen) {
  AuditVerdict v;
  ASSIGN_OR_RETURN(auto cp, store.GetAuditCheckpoint());
  *cp_seen = cp;
  std::string prev = AuditGenesisHash(id.server_id);
  int64_t next_seq = 1;
  if (cp) {
    v.checkpoint_seq = cp->seq;
    const std::string msg = AuditCheckpointMessage(id.server_id, cp->seq, cp->hash);
    if (cp->signature.size() != crypto_sign_BYTES ||
        id.verify_key.size() != crypto_sign_PUBLICKEYBYTES ||
        crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(cp->signature.data()),
                                    reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                    reinterpret_cast<const unsigned char*>(id.verify_key.data())) !=
            0) {
      v.head_seq = cp->seq;
      return Bad(v, 0,
                 "the retention checkpoint (through " + Seq(cp->seq) +
                     ") is not signed by this server's key: it was forged or edited");
    }
    prev = cp->hash;
    next_seq = cp->seq + 1;
  }
  v.head_seq = next_seq - 1;
  v.head = prev;
  bool saved_found = saved_head && *saved_head == prev;
  int64_t after = next_seq - 1;
  // Entries below the checkpoint should be gone; one left there is out of place.
  {
    ASSIGN_OR_RETURN(auto early, store.ListAudit(0, 1));
    if (!early.empty() && early[0].seq < next_seq) {
      return Bad(v, early[0].seq,
                 Seq(early[0].seq) + " lies at or before the checkpoint (" + Seq(next_seq - 1) +
                     "): entries were inserted or the checkpoint was moved");
    }
  }
  while (true) {
    ASSIGN_OR_RETURN(auto page, store.ListAudit(after, kPage));
    for (const AuditEvent& e : page) {
      if (e.seq != next_seq) {
        return Bad(v, next_seq,
                   Seq(next_seq) + " is missing (the next entry is " + Seq(e.seq) +
                       "): it was deleted or renumbered");
      }
      if (e.prev_hash != prev) {
        return Bad(v, e.seq,
                   Seq(e.seq) + " does not follow " +
                       (e.seq == 1 ? std::string("the genesis of this server") : Seq(e.seq - 1)) +
                       " (its prev_hash differs): an entry before it was deleted, replaced or "
                       "moved");
      }
      if (AuditEntryHash(e) != e.hash) {
        return Bad(v, e.seq, Seq(e.seq) + " does not match its hash: it was edited or moved");
      }
      prev = e.hash;
      ++v.entries;
      v.head_seq = e.seq;
      v.head = e.hash;
      ++next_seq;
      if (saved_head && *saved_head == e.hash) saved_found = true;
    }
    if (static_cast<int64_t>(page.size()) < kPage) break;
    after = page.back().seq;
  }
  if (saved_head && !saved_found) {
    return Bad(v, 0,
               "the saved head " + *saved_head +
                   " is not in the chain: entries after it were cut or rewritten (or it is older "
                   "than the retention checkpoint)");
  }
  v.ok = true;
  return v;
}

}  // namespace

std::string AuditGenesisHash(const std::string& server_id) {
  std::string m;
  Field(m, "datasite audit genesis v1");
  Field(m, server_id);
  return Sha256Hex(m);
}

std::string AuditEntryHash(const AuditEvent& e) {
  std::string m;
  Field(m, "datasite audit entry v1");
  Field(m, std::to_string(e.seq));
  Field(m, std::to_string(e.at));
  Field(m, e.actor);
  Field(m, e.action);
  Field(m, e.target);
  Field(m, e.detail);
  Field(m, e.prev_hash);
  return Sha256Hex(m);
}

std::string AuditCheckpointMessage(const std::string& server_id, int64_t seq,
                                   const std::string& hash) {
  std::string m;
  Field(m, "datasite audit checkpoint v1");
  Field(m, server_id);
  Field(m, std::to_string(seq));
  Field(m, hash);
  return m;
}

Result<AuditVerdict> VerifyAuditLog(Store& store, const std::optional<std::string>& saved_head) {
  if (sodium_init() < 0) return InternalError("libsodium failed to initialise");
  ASSIGN_OR_RETURN(auto id, store.GetIdentity());
  if (!id) return FailedPreconditionError("the server has no identity yet: nothing to verify");
  // A prune between two pages would look like damage: walk again when the checkpoint moved.
  for (int attempt = 0;; ++attempt) {
    std::optional<AuditCheckpoint> before, after;
    ASSIGN_OR_RETURN(AuditVerdict v, VerifyOnce(store, *id, saved_head, &before));
    if (v.ok || attempt == 1) return v;
    ASSIGN_OR_RETURN(after, store.GetAuditCheckpoint());
    const bool moved =
        before.has_value() != after.has_value() || (before && after && before->seq != after->seq);
    if (!moved) return v;
  }
}

Result<int64_t> AuditSeqAtTime(Store& store, int64_t time) {
  int64_t after = 0, last_before = 0;
  ASSIGN_OR_RETURN(auto cp, store.GetAuditCheckpoint());
  if (cp) after = last_before = cp->seq;
  while (true) {
    ASSIGN_OR_RETURN(auto page, store.ListAudit(after, kPage));
    for (const AuditEvent& e : page) {
      if (e.at >= time) return last_before + 1;
      last_before = e.seq;
    }
    if (static_cast<int64_t>(page.size()) < kPage) return last_before + 1;
    after = page.back().seq;
  }
}

Result<int64_t> PruneAuditLog(Store& store, int64_t before_seq, int64_t now) {
  ASSIGN_OR_RETURN(AuditVerdict v, VerifyAuditLog(store, std::nullopt));
  if (!v.ok) {
    return FailedPreconditionError("the audit log does not verify, so it is not pruned: " +
                                   v.reason);
  }
  const int64_t first = v.checkpoint_seq.value_or(0) + 1;
  const int64_t last = std::min(before_seq - 1, v.head_seq);
  if (last < first) return int64_t{0};
  ASSIGN_OR_RETURN(auto entry, store.ListAudit(last - 1, 1));
  if (entry.empty() || entry[0].seq != last) {
    return FailedPreconditionError("the audit log changed while it was pruned; try again");
  }
  ASSIGN_OR_RETURN(auto id, store.GetIdentity());
  if (!id || id->signing_key.size() != crypto_sign_SECRETKEYBYTES) {
    return FailedPreconditionError("the server has no signing key");
  }
  AuditCheckpoint cp;
  cp.seq = last;
  cp.hash = entry[0].hash;
  cp.at = now;
  const std::string msg = AuditCheckpointMessage(id->server_id, cp.seq, cp.hash);
  cp.signature.resize(crypto_sign_BYTES);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(cp.signature.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                       reinterpret_cast<const unsigned char*>(id->signing_key.data()));
  RETURN_IF_ERROR(store.PruneAudit(cp));
  return last - first + 1;
}

nlohmann::json AuditEntryJson(const AuditEvent& e) {
  return {{"seq", e.seq},
          {"at", FormatIsoTime(e.at)},
          {"actor", e.actor},
          {"action", e.action},
          {"target", e.target},
          {"detail", e.detail},
          {"prev_hash", e.prev_hash},
          {"hash", e.hash}};
}

nlohmann::json AuditVerdictJson(const AuditVerdict& v) {
  using nlohmann::json;
  json j = {{"ok", v.ok},
            {"entries", v.entries},
            {"head_seq", v.head_seq},
            {"head", v.head},
            {"checkpoint_seq", v.checkpoint_seq ? json(*v.checkpoint_seq) : json(nullptr)}};
  if (!v.ok) {
    j["first_bad_seq"] = v.first_bad_seq ? json(v.first_bad_seq) : json(nullptr);
    j["reason"] = v.reason;
  }
  return j;
}

}  // namespace datasite::store
