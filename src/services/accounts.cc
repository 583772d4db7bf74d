#include "services/accounts.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>

#include <spdlog/spdlog.h>

#include "auth/password.h"
#include "auth/token.h"
#include "core/address_key.h"
#include "core/random.h"
#include "services/notifications.h"

namespace datasite::services {

using auth::Role;

namespace {

constexpr size_t kMaxNameLength = 128;
constexpr size_t kMaxFieldLength = 256;
constexpr int64_t kMaxPageSize = 1000;
// Remembered sessions; when full the memory is cleared and refills from the database.
constexpr size_t kMaxCachedSessions = 10'000;

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool HasControlChars(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

Status CheckText(const char* field, const std::string& value, size_t max_length, bool required) {
  if (required && Trim(value).empty())
    return InvalidArgumentError(std::string(field) + " must not be empty");
  if (value.size() > max_length) {
    return InvalidArgumentError(std::string(field) + " must be at most " +
                                std::to_string(max_length) + " characters");
  }
  if (HasControlChars(value)) {
    return InvalidArgumentError(std::string(field) + " must not contain control characters");
  }
  return Status::Ok();
}

constexpr size_t kMaxTokenLength = 256;

// The token of a "Bearer <token>" header; nullopt for any other scheme.
std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (header.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  return header.substr(kPrefix.size());
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

// Longer than any valid email (254): a malformed one is kept only this long.
constexpr size_t kMaxEmailKeyBytes = 256;

Result<std::string> NormalizeEmail(const std::string& raw) {
  std::string email = Trim(raw);
  std::transform(email.begin(), email.end(), email.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto bad = [&] {
    return InvalidArgumentError("'" + raw.substr(0, 64) + "' is not a valid email address");
  };
  if (email.empty() || email.size() > 254) return bad();
  size_t at = email.find('@');
  if (at == std::string::npos || at == 0 || email.find('@', at + 1) != std::string::npos)
    return bad();
  std::string local = email.substr(0, at), domain = email.substr(at + 1);
  if (local.size() > 64) return bad();
  size_t dot = domain.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 2 > domain.size()) return bad();
  if (domain.find("..") != std::string::npos || domain.front() == '-' || domain.front() == '.')
    return bad();
  for (char c : local) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("!#$%&'*+/=?^_`{|}~.-").find(c) != std::string_view::npos)) {
      return bad();
    }
  }
  for (char c : domain) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return bad();
  }
  return email;
}

Accounts::Accounts(store::Store& store, const Clock& clock, AccountsOptions options)
    : store_(store),
      clock_(clock),
      options_(options),
      login_throttle_(clock, options.login, options.shared_events),
      guest_sessions_(clock, options.guest_sessions_per_minute, 60 * 1000),
      password_change_failures_(clock, options.password_change_failures, 5 * 60 * 1000),
      hashing_(std::max(1, options.hashing_slots)) {}

void Accounts::MaybeSweepSessions() {
  const int64_t now = clock_.NowMillis();
  int64_t next = next_sweep_ms_.load();
  if (now < next) return;
  // One caller wins the sweep; the others go on.
  if (!next_sweep_ms_.compare_exchange_strong(next, now + options_.session_sweep_interval_ms)) {
    return;
  }
  Status st = store_.DeleteExpiredSessions(now / 1000);
  if (!st.ok()) spdlog::warn("sweeping expired sessions failed: {}", st.ToString());
  // Answers kept for idempotency keys (api/idempotency.h): a client retries for seconds, so a
  // day is generous.
  auto swept = store_.DeleteIdempotentAnswersBefore(now / 1000 - 24 * 3600);
  if (!swept.ok()) spdlog::warn("sweeping idempotency keys failed: {}", swept.status().ToString());
}

Result<auth::ConcurrencyLimit::Slot> Accounts::HashingSlot() {
  auto slot = hashing_.TryAcquire();
  if (!slot) {
    return ResourceExhaustedError("the server is busy hashing other passwords; try again in 1 s")
        .WithRetryAfter(1);
  }
  return std::move(*slot);
}

Status Accounts::Audit(store::Store& tx, const Principal& actor, const std::string& action,
                       const std::string& target, const std::string& detail) {
  return tx.AppendAudit({clock_.NowSeconds(), actor.AuditName(), action, target, detail});
}

Result<bool> Accounts::NeedsRootAdmin() {
  ASSIGN_OR_RETURN(auto page, store_.ListUsers("", 0, 1));
  return page.total == 0;
}

Status Accounts::CreateRootAdmin(const std::string& raw_email, const std::string& password_hash) {
  ASSIGN_OR_RETURN(std::string email, NormalizeEmail(raw_email));
  int64_t now = clock_.NowSeconds();
  store::User user{NewUuid(), email, "Jane Doe",    static_cast<int>(Role::kAdmin),
                   "",        "",    password_hash, true,
                   now,       now};
  return store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertUser(user));
    return Audit(tx, Principal{}, "user.create_root", "user:" + user.id);
  });
}

Status Accounts::EnsureRootAdmin(const std::string& email, const std::string& password) {
  ASSIGN_OR_RETURN(bool needed, NeedsRootAdmin());
  if (!needed) return Status::Ok();
  if (password.empty()) return InvalidArgumentError("the root admin password must not be empty");
  ASSIGN_OR_RETURN(std::string hash, auth::HashPassword(password));
  return CreateRootAdmin(email, hash);
}

Result<bool> Accounts::RootHasDefaultPassword() {
  // The root admin is the first user made (users are listed in order of creation).
  ASSIGN_OR_RETURN(auto page, store_.ListUsers("", 0, 1));
  if (page.items.empty() || !page.items.front().is_root) {
    return InternalError("the first user is not the root admin");
  }
  return auth::VerifyPassword(page.items.front().password_hash, kDefaultRootPassword);
}

Result<LoginResult> Accounts::StartSession(store::Store& tx, std::optional<store::User> user,
                                           Role role) {
  LoginResult out;
  out.token = auth::NewToken();
  int64_t now = clock_.NowSeconds();
  out.expires_at = now + options_.session_ttl_seconds;
  store::Session session;
  session.token_hash = auth::HashToken(out.token);
  if (user) session.user_id = user->id;
  session.role = static_cast<int>(role);
  session.created_at = now;
  session.expires_at = out.expires_at;
  RETURN_IF_ERROR(tx.InsertSession(session));
  out.user = std::move(user);
  return out;
}

Result<LoginResult> Accounts::Login(const std::string& raw_email, const std::string& password,
                                    const std::string& client_address) {
  const Status invalid = UnauthenticatedError("invalid email or password");
  auto email = NormalizeEmail(raw_email);
  // A malformed email is just another wrong credential: it must not answer differently. Its key
  // (held by the throttle, written to the audit log) is cut to what a valid email may be, so that a
  // caller can't store a megabyte per failed login.
  std::string key = email.ok() ? *email : Trim(raw_email).substr(0, kMaxEmailKeyBytes);
  // Counted per client (an IPv6 /64), not per address: the audit log keeps the address.
  const std::string source = AddressKey(client_address);
  RETURN_IF_ERROR(login_throttle_.Admit(source, key));
  if (password.size() > auth::kMaxPasswordLength) {
    login_throttle_.Failed(source, key);
    return invalid;
  }
  auto user = email.ok() ? store_.GetUserByEmail(*email) : Result<store::User>(NotFoundError(""));
  if (!user.ok() && user.status().code() != StatusCode::kNotFound) return user.status();
  if (!user.ok()) {
    auth::VerifyAgainstDummy(password);
    login_throttle_.Failed(source, key);
    RETURN_IF_ERROR(
        Audit(store_, Principal{}, "user.login_failed", "email:" + key, "from " + client_address));
    return invalid;
  }
  if (!auth::VerifyPassword(user->password_hash, password)) {
    login_throttle_.Failed(source, key);
    RETURN_IF_ERROR(Audit(store_, Principal{}, "user.login_failed", "user:" + user->id,
                          "from " + client_address));
    return invalid;
  }
  login_throttle_.Succeeded(source, key);
  Role role = auth::RoleFromInt(user->role);
  bool is_default = user->is_root && ConstantTimeEquals(password, kDefaultRootPassword);
  MaybeSweepSessions();
  Principal who;
  who.user_id = user->id;
  who.role = role;
  LoginResult result;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    ASSIGN_OR_RETURN(result, StartSession(tx, std::move(user).value(), role));
    return Audit(tx, who, "user.login", "user:" + *who.user_id, "from " + client_address);
  }));
  result.default_password = is_default;
  return result;
}

Result<LoginResult> Accounts::LoginAsGuest(bool guests_allowed, const std::string& client_address) {
  if (!guests_allowed) return FailedPreconditionError("this server does not allow guest sessions");
  const std::string source = AddressKey(client_address);  // per client: an IPv6 /64
  if (int wait = guest_sessions_.SecondsUntilAllowed(source)) {
    return ResourceExhaustedError(
               "too many guest sessions started from this address; try again in " +
               std::to_string(wait) + " s")
        .WithRetryAfter(wait);
  }
  guest_sessions_.Record(source);
  MaybeSweepSessions();
  const int64_t now = clock_.NowSeconds();
  ASSIGN_OR_RETURN(int64_t live, store_.CountGuestSessions(now));
  if (live >= options_.max_guest_sessions) {
    return ResourceExhaustedError(
               "this server has as many guest sessions as it allows; try again later or log in")
        .WithRetryAfter(60);
  }
  const std::string network = NetworkKey(client_address);
  const int64_t expires_at = now + options_.session_ttl_seconds;
  if (auto wait = TakeGuestPlace(source, network, now, expires_at)) {
    return ResourceExhaustedError(
               "too many live guest sessions were started from this address or its network; try "
               "again in " +
               std::to_string(*wait) + " s, or log in")
        .WithRetryAfter(static_cast<int>(std::min<int64_t>(*wait, 1 << 30)));
  }
  auto started = StartSession(store_, std::nullopt, Role::kGuest);
  if (!started.ok()) GiveGuestPlaceBack(source, network, expires_at);
  return started;
}

void Accounts::GiveGuestPlaceBack(const std::string& source, const std::string& network,
                                  int64_t expires_at) {
  std::lock_guard lock(guests_mu_);
  for (const std::string* key : {&source, &network}) {
    auto it = guest_expiries_.find(*key);
    if (it == guest_expiries_.end()) continue;
    auto& expiries = it->second;
    auto at = std::find(expiries.rbegin(), expiries.rend(), expires_at);
    if (at == expiries.rend()) continue;
    expiries.erase(std::next(at).base());
    --guest_entries_;
  }
}

std::optional<int64_t> Accounts::TakeGuestPlace(const std::string& source,
                                                const std::string& network, int64_t now,
                                                int64_t expires_at) {
  const int64_t per_source = std::max<int64_t>(options_.max_guest_sessions / 64, 1);
  const int64_t per_network = std::max<int64_t>(options_.max_guest_sessions / 32, per_source);
  std::lock_guard lock(guests_mu_);
  auto live = [&](const std::string& key) -> std::deque<int64_t>& {
    auto& expiries = guest_expiries_[key];
    while (!expiries.empty() && expiries.front() <= now) {
      expiries.pop_front();
      --guest_entries_;
    }
    return expiries;
  };
  auto& mine = live(source);
  auto& ours = live(network);
  const auto full = [&](const std::deque<int64_t>& expiries, int64_t cap) {
    return static_cast<int64_t>(expiries.size()) >= cap;
  };
  std::optional<int64_t> wait;
  if (full(mine, per_source)) wait = mine.front() - now;
  if (full(ours, per_network)) wait = std::max(wait.value_or(0), ours.front() - now);
  if (!wait) {
    mine.push_back(expires_at);
    ours.push_back(expires_at);
    guest_entries_ += 2;
  }
  // Sources whose sessions all expired are forgotten every ten minutes: what is kept is bounded
  // by the sessions started within a TTL, which the rate limits bound.
  if (now - guest_swept_at_ >= 600) {
    guest_swept_at_ = now;
    for (auto it = guest_expiries_.begin(); it != guest_expiries_.end();) {
      while (!it->second.empty() && it->second.front() <= now) {
        it->second.pop_front();
        --guest_entries_;
      }
      it = it->second.empty() ? guest_expiries_.erase(it) : std::next(it);
    }
  }
  if (wait) return std::max<int64_t>(*wait, 1);
  return std::nullopt;
}

Status Accounts::Logout(const Principal& caller) {
  if (caller.token_hash.empty()) return UnauthenticatedError("not logged in");
  return store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.DeleteSession(caller.token_hash));
    return Audit(tx, caller, "user.logout", caller.AuditName());
  });
}

std::optional<Principal> Accounts::RememberedPrincipal(const std::string& header) {
  auto token = BearerToken(header);
  if (!token || token->empty() || token->size() > kMaxTokenLength) return std::nullopt;
  return CachedPrincipal(auth::HashToken(*token));
}

Result<Principal> Accounts::Authenticate(const std::string& header) {
  Principal p;
  if (header.empty()) return p;
  auto token = BearerToken(header);
  if (!token || token->empty()) {
    return UnauthenticatedError("the Authorization header must be 'Bearer <token>'");
  }
  if (token->size() > kMaxTokenLength) {
    return UnauthenticatedError("invalid or expired token; log in again");
  }
  p.token_hash = auth::HashToken(*token);
  if (auto cached = CachedPrincipal(p.token_hash)) return *std::move(cached);
  // Read before the session and the user: a change after this point makes the entry stale.
  const int64_t auth_version = store_.AuthVersion();
  auto session = store_.GetSession(p.token_hash);
  if (!session.ok()) {
    if (session.status().code() == StatusCode::kNotFound) {
      return UnauthenticatedError("invalid or expired token; log in again");
    }
    return session.status();
  }
  if (session->expires_at <= clock_.NowSeconds()) {
    (void)store_.DeleteSession(p.token_hash);
    return UnauthenticatedError("invalid or expired token; log in again");
  }
  p.role = auth::RoleFromInt(session->role);
  if (session->user_id) {
    // The role is read from the user row, so a role change takes effect at once.
    auto user = store_.GetUserById(*session->user_id);
    if (!user.ok()) return UnauthenticatedError("invalid or expired token; log in again");
    p.user_id = user->id;
    p.email = user->email;
    p.role = auth::RoleFromInt(user->role);
    p.is_root = user->is_root;
  }
  if (p.role == Role::kNone) return UnauthenticatedError("invalid or expired token; log in again");
  RememberSession(auth_version, session->expires_at, p);
  return p;
}

std::optional<Principal> Accounts::CachedPrincipal(const std::string& token_hash) {
  const int64_t auth_version = store_.AuthVersion();
  const int64_t now = clock_.NowSeconds();
  std::lock_guard lock(cache_mu_);
  auto it = sessions_.find(token_hash);
  if (it == sessions_.end()) return std::nullopt;
  // Expired or possibly changed: the database decides again (and deletes an expired session).
  if (it->second.auth_version != auth_version || it->second.expires_at <= now) {
    sessions_.erase(it);
    return std::nullopt;
  }
  ++cache_hits_;
  return it->second.principal;
}

void Accounts::RememberSession(int64_t auth_version, int64_t expires_at,
                               const Principal& principal) {
  std::lock_guard lock(cache_mu_);
  if (sessions_.size() >= kMaxCachedSessions) sessions_.clear();
  sessions_[principal.token_hash] = CachedSession{auth_version, expires_at, principal};
}

int64_t Accounts::SessionCacheHitsForTest() const {
  std::lock_guard lock(cache_mu_);
  return cache_hits_;
}

Status Accounts::Validate(const NewUser& input) const {
  RETURN_IF_ERROR(CheckText("name", input.name, kMaxNameLength, true));
  RETURN_IF_ERROR(CheckText("institution", input.institution, kMaxFieldLength, false));
  RETURN_IF_ERROR(CheckText("website", input.website, kMaxFieldLength, false));
  ASSIGN_OR_RETURN(std::string email, NormalizeEmail(input.email));
  RETURN_IF_ERROR(auth::CheckNewPassword(input.password, email, options_.password_rules).status());
  if (input.password_verify && !ConstantTimeEquals(*input.password_verify, input.password)) {
    return InvalidArgumentError("password and password_verify do not match");
  }
  return Status::Ok();
}

Result<store::User> Accounts::Insert(
    const NewUser& input, Role role,
    const std::function<Status(store::Store&, const store::User&)>& audit) {
  ASSIGN_OR_RETURN(std::string email, NormalizeEmail(input.email));
  ASSIGN_OR_RETURN(std::string hash, HashNewPassword(input.password, email));
  int64_t now = clock_.NowSeconds();
  store::User user{NewUuid(),
                   email,
                   Trim(input.name),
                   static_cast<int>(role),
                   input.institution,
                   input.website,
                   hash,
                   false,
                   now,
                   now};
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertUser(user));
    RETURN_IF_ERROR(audit(tx, user));
    return notifications_ ? notifications_->OnNewAccount(tx, user) : Status::Ok();
  });
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a user with email " + email + " already exists");
  }
  RETURN_IF_ERROR(st);
  if (notifications_) notifications_->Wake();
  return user;
}

Result<RegisterResult> Accounts::Register(const Principal& caller, const NewUser& input,
                                          bool signup_enabled, const std::string& client_address) {
  NewUser user = input;
  user.role = Role::kDataScientist;
  if (auth::AtLeast(caller.role, Role::kDataOwner)) {
    RETURN_IF_ERROR(Validate(user));
    ASSIGN_OR_RETURN(auto slot, HashingSlot());
    ASSIGN_OR_RETURN(
        store::User created,
        Insert(user, Role::kDataScientist, [&](store::Store& tx, const store::User& u) {
          return Audit(tx, caller, "user.register", "user:" + u.id);
        }));
    return RegisterResult{"User '" + created.name + "' successfully registered.", created};
  }
  if (!signup_enabled) {
    return PermissionDeniedError(
        "sign-up is disabled on this server; ask its admin for an account");
  }
  // Registration hashes a password: it shares the login attempt budget of the client address.
  RETURN_IF_ERROR(login_throttle_.AdmitSource(AddressKey(client_address)));
  RETURN_IF_ERROR(Validate(user));
  ASSIGN_OR_RETURN(auto slot, HashingSlot());
  auto created = Insert(user, Role::kDataScientist, [&](store::Store& tx, const store::User& u) {
    return Audit(tx, caller, "user.register", "user:" + u.id, "sign-up");
  });
  if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists)
    return created.status();
  // The same answer whether or not the email was free, so that sign-up can't be used to find
  // accounts.
  return RegisterResult{"Registration received. If " + *NormalizeEmail(user.email) +
                            " was not registered before, its account is ready: log in with it.",
                        std::nullopt};
}

Result<store::User> Accounts::CreateUser(const Principal& caller, const NewUser& input) {
  if (!auth::AtLeast(caller.role, Role::kDataOwner)) {
    return PermissionDeniedError("only data owners and admins can create users");
  }
  Role role = input.role.value_or(Role::kDataScientist);
  if (role == Role::kNone) return InvalidArgumentError("unknown role");
  if (caller.role == Role::kDataOwner && auth::AtLeast(role, Role::kDataOwner)) {
    return PermissionDeniedError("a data owner can only create guests and data scientists");
  }
  RETURN_IF_ERROR(Validate(input));
  ASSIGN_OR_RETURN(auto slot, HashingSlot());
  ASSIGN_OR_RETURN(store::User created,
                   Insert(input, role, [&](store::Store& tx, const store::User& u) {
                     return Audit(tx, caller, "user.create", "user:" + u.id,
                                  "role " + std::string(auth::RoleName(role)));
                   }));
  return created;
}

Result<store::UserPage> Accounts::ListUsers(const Principal& caller, const std::string& search,
                                            int64_t page, int64_t page_size) {
  if (!auth::AtLeast(caller.role, Role::kDataOwner)) {
    return PermissionDeniedError("only data owners and admins can list users");
  }
  if (page < 1) return InvalidArgumentError("page must be 1 or more");
  if (page_size < 1 || page_size > kMaxPageSize) {
    return InvalidArgumentError("page_size must be between 1 and " + std::to_string(kMaxPageSize));
  }
  if (search.size() > kMaxFieldLength) return InvalidArgumentError("search text is too long");
  return store_.ListUsers(search, (page - 1) * page_size, page_size);
}

Result<store::User> Accounts::GetUser(const Principal& caller, const std::string& id) {
  if (!caller.IsSelf(id) && !auth::AtLeast(caller.role, Role::kDataOwner)) {
    return PermissionDeniedError("you can only view your own account");
  }
  if (!IsUuid(id)) return NotFoundError("no user with id " + id.substr(0, 64));
  auto user = store_.GetUserById(id);
  if (!user.ok() && user.status().code() == StatusCode::kNotFound) {
    return NotFoundError("no user with id " + id);
  }
  return user;
}

Result<store::User> Accounts::UpdateUser(const Principal& caller, const std::string& id,
                                         const UserPatch& patch,
                                         std::optional<std::string>* root_email_changed) {
  ASSIGN_OR_RETURN(store::User user, GetUser(caller, id));
  const bool self = caller.IsSelf(id);
  const bool admin = caller.role == Role::kAdmin;
  const bool profile_change = patch.name || patch.email || patch.institution || patch.website;
  if (!profile_change && !patch.password && !patch.role) return user;  // nothing to change
  if (profile_change && !self && !admin) {
    return PermissionDeniedError("only admins can change another user's profile");
  }
  // Whether an email change succeeds tells whether the address is taken. Data owners and admins
  // can list every user anyway; below them the answer would be an oracle, so the change is refused
  // whatever the address.
  if (patch.email && !auth::AtLeast(caller.role, Role::kDataOwner)) {
    return PermissionDeniedError(
        "only data owners and admins change email addresses; ask one of them to change yours");
  }
  if (patch.password) {
    if (self) {
      return PermissionDeniedError(
          "change your own password with POST /api/v1/account/password (it needs the old one)");
    }
    if (!admin) return PermissionDeniedError("only admins can set another user's password");
    if (user.is_root)
      return PermissionDeniedError("only the root admin can change its own password");
  }
  if (patch.role) {
    if (*patch.role == Role::kNone) return InvalidArgumentError("unknown role");
    if (!auth::AtLeast(caller.role, Role::kDataOwner)) {
      return PermissionDeniedError("only data owners and admins can change roles");
    }
    if (user.is_root) return PermissionDeniedError("the root admin's role can't be changed");
    if (self) return PermissionDeniedError("you can't change your own role");
    if (caller.role == Role::kDataOwner &&
        (auth::AtLeast(auth::RoleFromInt(user.role), Role::kDataOwner) ||
         auth::AtLeast(*patch.role, Role::kDataOwner))) {
      return PermissionDeniedError(
          "a data owner can only give roles below data_owner to users below data_owner");
    }
  }
  // Validate everything before changing anything.
  if (patch.name) RETURN_IF_ERROR(CheckText("name", *patch.name, kMaxNameLength, true));
  if (patch.institution)
    RETURN_IF_ERROR(CheckText("institution", *patch.institution, kMaxFieldLength, false));
  if (patch.website) RETURN_IF_ERROR(CheckText("website", *patch.website, kMaxFieldLength, false));
  std::optional<std::string> email;
  if (patch.email) {
    ASSIGN_OR_RETURN(email, NormalizeEmail(*patch.email));
  }
  std::optional<std::string> hash;
  if (patch.password && IsSyncedAccount(user)) {
    return FailedPreconditionError(kSyncedAccountNoLogin);
  }
  if (patch.password) {
    RETURN_IF_ERROR(
        auth::CheckNewPassword(*patch.password, email.value_or(user.email), options_.password_rules)
            .status());
    ASSIGN_OR_RETURN(auto slot, HashingSlot());
    ASSIGN_OR_RETURN(hash, HashNewPassword(*patch.password, email.value_or(user.email)));
  }
  if (patch.name) user.name = Trim(*patch.name);
  if (patch.institution) user.institution = *patch.institution;
  if (patch.website) user.website = *patch.website;
  if (email) user.email = *email;
  if (patch.role) user.role = static_cast<int>(*patch.role);
  if (hash) user.password_hash = *hash;
  user.updated_at = clock_.NowSeconds();
  std::string what;
  for (auto [set, name] : {std::pair{patch.name.has_value(), "name"},
                           {patch.email.has_value(), "email"},
                           {patch.institution.has_value(), "institution"},
                           {patch.website.has_value(), "website"},
                           {patch.role.has_value(), "role"},
                           {patch.password.has_value(), "password"}}) {
    if (set) what += what.empty() ? name : std::string(",") + name;
  }
  if (patch.role) what += " (role " + std::string(auth::RoleName(*patch.role)) + ")";
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.UpdateUser(user));
    if (hash) RETURN_IF_ERROR(tx.DeleteUserSessions(user.id, ""));
    // A reset token mailed before (maybe to the old address) must not outlive the change.
    if (hash || email) RETURN_IF_ERROR(tx.DeletePendingPasswordResets(user.id));
    return Audit(tx, caller, patch.role ? "user.set_role" : "user.update", "user:" + user.id, what);
  });
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a user with email " + user.email + " already exists");
  }
  RETURN_IF_ERROR(st);
  if (email && user.is_root && root_email_changed) *root_email_changed = *email;
  return user;
}

Status Accounts::DeleteUser(const Principal& caller, const std::string& id) {
  if (!auth::AtLeast(caller.role, Role::kDataOwner)) {
    return PermissionDeniedError("only data owners and admins can delete users");
  }
  if (caller.IsSelf(id)) return PermissionDeniedError("you can't delete your own account");
  ASSIGN_OR_RETURN(store::User user, GetUser(caller, id));
  if (user.is_root) return PermissionDeniedError("the root admin can't be deleted");
  if (caller.role == Role::kDataOwner &&
      auth::AtLeast(auth::RoleFromInt(user.role), Role::kDataOwner)) {
    return PermissionDeniedError("a data owner can only delete guests and data scientists");
  }
  return store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.DeleteUser(id));
    return Audit(tx, caller, "user.delete", "user:" + id);
  });
}

Status Accounts::ChangePassword(const Principal& caller, const std::string& old_password,
                                const std::string& new_password,
                                const std::string& client_address) {
  if (!caller.user_id) return PermissionDeniedError("guests have no password to change");
  const std::string account_key = "user:" + *caller.user_id;
  const std::string address_key = "address:" + AddressKey(client_address);
  int wait = std::max(password_change_failures_.SecondsUntilAllowed(account_key),
                      password_change_failures_.SecondsUntilAllowed(address_key));
  if (wait > 0) {
    return ResourceExhaustedError("too many wrong old passwords; try again in " +
                                  std::to_string(wait) + " s")
        .WithRetryAfter(wait);
  }
  // Checking the old password costs as much as hashing the new one: both take the slot.
  ASSIGN_OR_RETURN(auto slot, HashingSlot());
  ASSIGN_OR_RETURN(store::User user, store_.GetUserById(*caller.user_id));
  if (old_password.size() > auth::kMaxPasswordLength ||
      !auth::VerifyPassword(user.password_hash, old_password)) {
    password_change_failures_.Record(account_key);
    password_change_failures_.Record(address_key);
    RETURN_IF_ERROR(Audit(store_, caller, "user.change_password_failed", "user:" + user.id,
                          "from " + client_address));
    return FailedPreconditionError("the old password is wrong");
  }
  RETURN_IF_ERROR(
      auth::CheckNewPassword(new_password, user.email, options_.password_rules).status());
  if (ConstantTimeEquals(old_password, new_password)) {
    return InvalidArgumentError("the new password must differ from the old one");
  }
  ASSIGN_OR_RETURN(user.password_hash, HashNewPassword(new_password, user.email));
  user.updated_at = clock_.NowSeconds();
  return store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.UpdateUser(user));
    RETURN_IF_ERROR(tx.DeleteUserSessions(user.id, caller.token_hash));
    RETURN_IF_ERROR(tx.DeletePendingPasswordResets(user.id));
    return Audit(tx, caller, "user.change_password", "user:" + user.id);
  });
}

Result<std::string> Accounts::HashPasswordForReset(std::string_view password,
                                                   std::string_view email) {
  RETURN_IF_ERROR(auth::CheckNewPassword(password, email, options_.password_rules).status());
  ASSIGN_OR_RETURN(auto slot, HashingSlot());
  return HashNewPassword(password, email);
}

std::string Accounts::PasswordWarning(std::string_view password, std::string_view email) const {
  auto checked = auth::CheckNewPassword(password, email, options_.password_rules);
  return checked.ok() ? *checked : std::string();
}

Result<std::string> Accounts::HashNewPassword(std::string_view password, std::string_view email) {
  ASSIGN_OR_RETURN(std::string hash, auth::HashPassword(password));
  if (auth::CheckPasswordStrength(password, email).ok()) return hash;
  spdlog::warn("development server: a weak password was accepted for {}", email);
  return auth::MarkDevelopmentHash(hash);
}

Result<std::vector<std::string>> Accounts::UsersWithDevelopmentPasswords(size_t limit) {
  std::vector<std::string> found;
  constexpr int64_t kPage = 500;
  for (int64_t offset = 0;; offset += kPage) {
    ASSIGN_OR_RETURN(auto page, store_.ListUsers("", offset, kPage));
    for (const auto& u : page.items) {
      if (auth::IsDevelopmentHash(u.password_hash) && found.size() < limit) {
        found.push_back(u.email);
      }
    }
    if (page.items.empty() || offset + kPage >= page.total) break;
  }
  return found;
}

}  // namespace datasite::services
