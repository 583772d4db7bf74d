// Credentials as a client sends them: the Authorization header (Accounts::Authenticate, which
// parses "Bearer <token>", hashes the token and looks its session up), and the same bytes as a bare
// token, an email (NormalizeEmail), a password (CheckPasswordStrength) and a role name (ParseRole).
//
// Checks: only "Bearer <one of the world's live tokens>" authenticates, as that session's role;
// every refusal is kUnauthenticated; NormalizeEmail is idempotent; ParseRole inverts RoleName.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "auth/password.h"
#include "auth/role.h"
#include "auth/token.h"
#include "fuzz_util.h"
#include "services/accounts.h"
#include "world.h"

namespace {

using datasite::StatusCode;
using datasite::fuzz::Check;

datasite::fuzz::World& TheWorld() {
  static auto* world = new datasite::fuzz::World();
  return *world;
}

void CheckAuthenticate(datasite::fuzz::World& world, const std::string& header) {
  auto p = world.accounts().Authenticate(header);
  if (header.empty()) {
    Check(p.ok() && !p->authenticated(), "an empty header must be anonymous");
    return;
  }
  if (!p.ok()) {
    Check(p.status().code() == StatusCode::kUnauthenticated,
          "Authenticate refused with another code: " + p.status().ToString());
    return;
  }
  Check(p->authenticated(), "a non-empty header authenticated as nobody");
  bool known = false;
  for (const auto& s : datasite::fuzz::kSessions) {
    if (header != std::string("Bearer ") + s.token) continue;
    known = true;
    Check(p->role == s.role, "a fixed token authenticated with another role");
    Check(p->token_hash == datasite::auth::HashToken(s.token), "the token hash is not the token's");
  }
  Check(known, "a header that carries no live token authenticated: " + header.substr(0, 80));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  auto& world = TheWorld();
  CheckAuthenticate(world, input);
  CheckAuthenticate(world, "Bearer " + input);
  world.RestoreSessions();  // an expired session is deleted when it is seen

  auto email = datasite::services::NormalizeEmail(input);
  if (email.ok()) {
    auto again = datasite::services::NormalizeEmail(*email);
    Check(again.ok() && *again == *email, "NormalizeEmail is not idempotent");
    Check(email->size() <= 254 && email->find('@') != std::string::npos, "a bad email passed");
  } else {
    Check(email.status().code() == StatusCode::kInvalidArgument, "NormalizeEmail's code");
  }

  auto strength = datasite::auth::CheckPasswordStrength(input, email.ok() ? *email : "");
  if (strength.ok()) {
    Check(input.size() >= datasite::auth::kMinPasswordLength &&
              input.size() <= datasite::auth::kMaxPasswordLength,
          "a password of the wrong length passed");
  }

  if (auto role = datasite::auth::ParseRole(input)) {
    Check(datasite::auth::RoleName(*role) == input, "ParseRole does not invert RoleName");
    Check(datasite::auth::RoleFromInt(static_cast<int>(*role)) == *role, "RoleFromInt");
  }
  return 0;
}
