// A sync bundle through sync::BundleVerifier, as POST /api/v1/sync/imports streams one in.
//
// The first byte picks how the rest arrives (bits 0-1: whole, 1-byte, 7-byte or 4 KiB chunks),
// whether the harness signs the header again with the fuzzing key before feeding it (bit 2: so
// that mutations of a signed seed get past the signature and reach the objects and blobs), and
// whether the header check refuses (bit 3). The seeds are bundles signed with the fuzzing key.
//
// Checks: nothing throws or crashes; the header check runs only after a signature that verifies
// over exactly the bytes the input holds, and its refusal comes back unchanged; a refusal is one
// of the contract's ("tampered", "truncated") or "too large"; an accepted bundle is exactly the
// input (no byte before or after), its objects and staged blobs have the declared sizes and
// SHA-256s; no staging file is left behind by a refusal.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "core/random.h"
#include "fuzz_util.h"
#include "sync/bundle.h"

namespace {

using datasite::fuzz::Check;
namespace sync = datasite::sync;

struct Keys {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
};

const Keys& FuzzKeys() {
  static const Keys* keys = [] {
    Check(datasite::InitCrypto(), "libsodium failed to initialize");
    auto* k = new Keys;
    unsigned char seed[crypto_sign_SEEDBYTES] = {};
    std::string_view text = "datasite sync bundle fuzzing";
    for (size_t i = 0; i < text.size() && i < sizeof(seed); ++i) seed[i] = text[i];
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    return k;
  }();
  return *keys;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return datasite::HexEncode(std::string_view(reinterpret_cast<char*>(d), sizeof(d)));
}

// The header bytes and signature at the front of `bundle`, when it is long enough to hold them.
bool SplitPrefix(std::string_view bundle, std::string_view* header, std::string_view* signature) {
  if (bundle.size() < 12) return false;
  uint32_t len = 0;
  for (int i = 8; i < 12; ++i) len = (len << 8) | static_cast<unsigned char>(bundle[i]);
  if (len > sync::kMaxHeaderSize || bundle.size() < 12 + size_t{len} + sync::kSignatureSize) {
    return false;
  }
  *header = bundle.substr(12, len);
  *signature = bundle.substr(12 + len, sync::kSignatureSize);
  return true;
}

bool SignatureVerifies(std::string_view header, std::string_view signature,
                       const std::string& verify_key_hex) {
  std::string key(crypto_sign_PUBLICKEYBYTES, '\0');
  size_t len = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(key.data()), key.size(),
                     verify_key_hex.data(), verify_key_hex.size(), nullptr, &len, nullptr) != 0 ||
      len != key.size()) {
    return false;
  }
  std::string msg(sync::kSignatureContext);
  msg.append(header);
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                     reinterpret_cast<const unsigned char*>(key.data())) == 0;
}

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Keys& keys = FuzzKeys();
  uint8_t control = data[0];
  std::string bundle(reinterpret_cast<const char*>(data + 1), size - 1);
  static const size_t kChunks[] = {0, 1, 7, 4096};
  size_t chunk = kChunks[control & 3];
  if (chunk == 0) chunk = bundle.size() + 1;
  bool resign = control & 4;
  bool refuse = control & 8;

  std::string_view header_bytes, signature;
  if (resign && SplitPrefix(bundle, &header_bytes, &signature)) {
    std::string msg(sync::kSignatureContext);
    msg.append(header_bytes);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()),
                         msg.size(), keys.sk);
    bundle.replace(12 + header_bytes.size(), sync::kSignatureSize,
                   reinterpret_cast<const char*>(sig), sizeof(sig));
  }

  static const std::string* staging = [] {
    auto* dir = new std::string(datasite::fuzz::ScratchDir() + "/staging");
    std::filesystem::create_directories(*dir);
    return dir;
  }();
  const datasite::Status kRefusal(datasite::StatusCode::kPermissionDenied, "fuzz: refused");
  int checks = 0;
  auto check = [&](const sync::BundleHeader& h) -> datasite::Status {
    ++checks;
    std::string_view hb, sig;
    Check(SplitPrefix(bundle, &hb, &sig), "the header check ran before the signature was in");
    Check(SignatureVerifies(hb, sig, h.source.verify_key),
          "the header check ran on a header whose signature does not verify");
    return refuse ? kRefusal : datasite::Status::Ok();
  };
  int staged = 0;
  {
    sync::BundleVerifier verifier(
        check, [&] { return *staging + "/" + std::to_string(staged++); }, 1 << 20);
    datasite::Status st;
    for (size_t at = 0; at < bundle.size() && st.ok(); at += chunk) {
      st = verifier.Write(std::string_view(bundle).substr(at, chunk));
    }
    auto result = st.ok() ? verifier.Finish() : datasite::Result<sync::VerifiedBundle>(st);
    if (!result.ok()) {
      const auto& s = result.status();
      std::string_view reason = sync::RefusalReason(s);
      bool contract = reason == "tampered" || reason == "truncated" || reason == "too large";
      bool passed_through =
          refuse && s.message() == kRefusal.message() && s.code() == kRefusal.code();
      Check(contract || passed_through, "a refusal that is not the contract's");
      Check(!passed_through || checks == 1, "the check's refusal without a call to the check");
      Check(FilesIn(*staging) == 0, "a refused bundle left a staging file");
      return 0;
    }
    Check(!refuse && checks == 1, "accepted without exactly one header check");
    const sync::VerifiedBundle& v = *result;
    std::string_view hb, sig;
    Check(SplitPrefix(bundle, &hb, &sig) &&
              v.header.BundleSize(hb.size()) == static_cast<int64_t>(bundle.size()),
          "an accepted bundle is not exactly its bytes");
    Check(static_cast<int64_t>(v.objects_json.size()) == v.header.objects_size &&
              Sha256Hex(v.objects_json) == v.header.objects_sha256,
          "accepted objects differ from their header");
    Check(v.blobs.size() == v.header.blobs.size(), "a blob was not staged");
    for (size_t i = 0; i < v.blobs.size(); ++i) {
      std::ifstream in(v.blobs[i].path, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      Check(static_cast<int64_t>(ss.str().size()) == v.header.blobs[i].size &&
                Sha256Hex(ss.str()) == v.header.blobs[i].sha256 &&
                v.blobs[i].sha256 == v.header.blobs[i].sha256,
            "a staged blob differs from its header");
    }
    sync::RemoveStagedFiles(v);
  }
  Check(FilesIn(*staging) == 0, "staging files left behind");
  return 0;
}
