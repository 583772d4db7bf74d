#include "services/notifications.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>
#include <vector>

#include "auth/role.h"
#include "core/markup.h"
#include "core/random.h"
#include "services/accounts.h"

namespace datasite::services {
namespace {

constexpr int64_t kMaxPageSize = 1000;
constexpr size_t kMaxField = 512;

bool IsLoopbackHost(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "[::1]" || host == "localhost";
}

// A host name or address: letters, digits, '.', '-', ':' and brackets only (no URL parts).
bool IsHostName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':' || c == '[' || c == ']';
  });
}

std::string Sanitize(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return s;
}

}  // namespace

std::string EscapeHtml(const std::string& text) { return EscapeMarkup(text); }

Notifications::Notifications(store::Store& store, const Clock& clock, SettingsService& settings,
                             net::MailTransport& transport, NotificationsOptions options)
    : store_(store), clock_(clock), settings_(settings), transport_(transport), options_(options) {}

Notifications::~Notifications() { Stop(); }

void Notifications::Start() {
  std::lock_guard lock(mu_);
  if (sender_.joinable()) return;
  stopping_ = false;
  sender_ = std::thread([this] { SenderLoop(); });
}

void Notifications::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (sender_.joinable()) sender_.join();
}

void Notifications::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  wake_.notify_all();
}

Result<bool> Notifications::MailOn(store::Store& tx) {
  if (!settings_.Get().notifications_enabled) return false;
  ASSIGN_OR_RETURN(auto mail, tx.GetMailSettings());
  return mail.has_value();
}

std::string Notifications::Link(store::Store& tx, const std::string& kind, const std::string& id) {
  auto mail = tx.GetMailSettings();
  std::string base = mail.ok() && *mail ? (*mail)->base_url : "";
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (kind.empty() || base.empty()) return "";
  const char* path = kind == "request"   ? "/api/v1/requests/"
                     : kind == "job"     ? "/api/v1/jobs/"
                     : kind == "code"    ? "/api/v1/code/"
                     : kind == "project" ? "/api/v1/projects/"
                                         : "/api/v1/users/";
  return base + path + id;
}

Status Notifications::Deliver(store::Store& tx, const Recipient& to, const std::string& from_id,
                              const std::string& kind, const std::string& subject,
                              const std::string& line, const std::string& link_kind,
                              const std::string& link_id) {
  store::Notification n;
  n.id = NewUuid();
  n.user_id = to.id;
  n.from_id = from_id;
  n.kind = kind;
  n.subject = Sanitize(subject);
  n.link_kind = link_kind;
  n.link_id = link_id;
  n.created_at = clock_.NowSeconds();
  RETURN_IF_ERROR(tx.InsertNotification(n));
  ASSIGN_OR_RETURN(bool on, MailOn(tx));
  if (!on) return Status::Ok();
  ASSIGN_OR_RETURN(bool wants, tx.UserWantsMail(to.id));
  if (!wants) return Status::Ok();
  store::User read;
  if (!to.user) {
    ASSIGN_OR_RETURN(read, tx.GetUserById(to.id));
  }
  const store::User& user = to.user ? *to.user : read;
  const std::string server = settings_.Get().name;
  const std::string link = Link(tx, link_kind, link_id);
  store::OutboxMail m;
  m.recipient = user.email;
  m.user_id = to.id;
  m.kind = kind;
  m.subject = "[" + server + "] " + n.subject;
  m.text = "Hello " + user.name + ",\n\n" + line + "\n";
  m.html = "<p>Hello " + EscapeHtml(user.name) + ",</p>\n<p>" + EscapeHtml(line) + "</p>\n";
  if (!link.empty()) {
    m.text += "\n" + link + "\n";
    m.html += "<p><a href=\"" + EscapeHtml(link) + "\">" + EscapeHtml(link) + "</a></p>\n";
  }
  m.created_at = clock_.NowMillis();
  m.not_before = m.created_at + options_.batch_window_ms;
  return tx.EnqueueMail(m).status();
}

Status Notifications::OnNewRequest(store::Store& tx, const store::CodeRequest& request,
                                   const std::string& code_name) {
  ASSIGN_OR_RETURN(store::User requester, tx.GetUserById(request.user_id));
  ASSIGN_OR_RETURN(store::UserPage users, tx.ListUsers("", 0, 100'000));
  const std::string subject = "New request from " + requester.name + " to run '" + code_name + "'";
  for (const store::User& u : users.items) {
    if (!auth::AtLeast(auth::RoleFromInt(u.role), auth::Role::kDataOwner)) continue;
    RETURN_IF_ERROR(Deliver(tx, To(u), requester.id, "request.new", subject,
                            requester.name + " asks to run '" + code_name +
                                "' on private data. The request waits for your review.",
                            "request", request.id));
  }
  return Status::Ok();
}

Status Notifications::OnNewProject(store::Store& tx, const store::Project& project,
                                   const std::string& creator_id) {
  ASSIGN_OR_RETURN(store::User creator, tx.GetUserById(creator_id));
  ASSIGN_OR_RETURN(store::UserPage users, tx.ListUsers("", 0, 100'000));
  const std::string subject = "New project '" + project.name + "' from " + creator.name;
  for (const store::User& u : users.items) {
    if (u.id == creator.id) continue;
    if (!auth::AtLeast(auth::RoleFromInt(u.role), auth::Role::kDataOwner)) continue;
    RETURN_IF_ERROR(Deliver(tx, To(u), creator.id, "project.new", subject,
                            creator.name + " started the project '" + project.name + "'.",
                            "project", project.id));
  }
  return Status::Ok();
}

Status Notifications::OnProjectMessage(store::Store& tx, const store::Project& project,
                                       const std::string& author_id) {
  ASSIGN_OR_RETURN(store::User author, tx.GetUserById(author_id));
  const std::string subject =
      "New message from " + author.name + " in project '" + project.name + "'";
  for (const store::ProjectMember& m : project.members) {
    if (m.user_id == author.id) continue;
    auto to = tx.GetUserById(m.user_id);
    if (to.status().code() == StatusCode::kNotFound) continue;  // an account deleted since
    RETURN_IF_ERROR(to.status());
    RETURN_IF_ERROR(Deliver(tx, To(*to), author.id, "project.message", subject,
                            author.name + " wrote in the project '" + project.name + "'.",
                            "project", project.id));
  }
  return Status::Ok();
}

Status Notifications::OnDecision(store::Store& tx, const store::CodeRequest& request,
                                 const std::string& status, const std::string& reviewer_id) {
  ASSIGN_OR_RETURN(store::User requester, tx.GetUserById(request.user_id));
  ASSIGN_OR_RETURN(store::UserCode code, tx.GetCode(request.code_id));
  const std::string verb = status == "approved" ? "approved" : "denied";
  return Deliver(tx, To(requester), reviewer_id, "request." + verb,
                 "Your request to run '" + code.name + "' was " + verb,
                 "Your request to run '" + code.name + "' was " + verb + " by a data owner.",
                 "request", request.id);
}

Status Notifications::OnJobEnded(store::Store& tx, const store::Job& ended) {
  if (ended.kind != "private" || ended.deposited) return Status::Ok();
  // Whether the run is held is the stored row's word, as FinishJob returned it in the
  // transaction that recorded its end (the store holds a private run by itself when output
  // review is on at the commit). A held run says nothing at its end, not even how it failed:
  // its release tells (OnResultReleased).
  if (ended.held) {
    // Held by an output check (a run nobody reviewed): its data owners are told which rule, so
    // that it reaches someone's review; its requester reads the rule on the job.
    if (ended.held_reason.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(store::UserPage users, tx.ListUsers("", 0, 100'000));
    const std::string subject = "A pre-approved run of '" + ended.code_name + "' was held";
    for (const store::User& u : users.items) {
      if (!auth::AtLeast(auth::RoleFromInt(u.role), auth::Role::kDataOwner)) continue;
      RETURN_IF_ERROR(Deliver(tx, To(u), ended.user_id, "job.held", subject,
                              "A run of '" + ended.code_name +
                                  "' admitted under a grant was held by an output check (" +
                                  ended.held_reason + "). Release it or leave it held.",
                              "job", ended.id));
    }
    return Status::Ok();
  }
  // The code's name and author as the job was read at its lease; a code row is never changed.
  store::UserCode code;
  code.id = ended.code_id;
  code.name = ended.code_name;
  code.user_id = ended.code_author_id;
  // The author's account is read only for a mail (the notification's row needs their id only).
  const Recipient requester{code.user_id};
  const store::Job& job = ended;
  if (job.status == "completed") {
    return Deliver(tx, requester, "", "job.result", "The result of '" + code.name + "' is ready",
                   "The run of '" + code.name + "' on private data ended and its result is ready.",
                   "job", job.id);
  }
  return DeliverFailure(tx, requester, "", code, job);
}

Status Notifications::DeliverFailure(store::Store& tx, const Recipient& to,
                                     const std::string& from_id, const store::UserCode& code,
                                     const store::Job& job) {
  if (job.status != "errored" && job.status != "timed_out") return Status::Ok();
  // Only the fixed failure kind: the error text may hold private values.
  const std::string kind = job.failure.empty() ? job.status : job.failure;
  return Deliver(tx, to, from_id, "job.failed", "The run of '" + code.name + "' failed",
                 "The run of '" + code.name + "' on private data failed (" + kind + ").", "job",
                 job.id);
}

Status Notifications::OnResultReleased(store::Store& tx, const store::Job& job,
                                       const std::string& by) {
  ASSIGN_OR_RETURN(store::UserCode code, tx.GetCode(job.code_id));
  ASSIGN_OR_RETURN(store::User requester, tx.GetUserById(code.user_id));
  if (job.status != "completed") return DeliverFailure(tx, To(requester), by, code, job);
  return Deliver(tx, To(requester), by, "job.released",
                 "The result of '" + code.name + "' was released",
                 "A data owner released the result of '" + code.name + "'.", "job", job.id);
}

Status Notifications::OnNewAccount(store::Store& tx, const store::User& user) {
  const std::string server = settings_.Get().name;
  return Deliver(tx, To(user), "", "user.new", "Welcome to " + server,
                 "An account for " + user.email + " was created on " + server + ".", "user",
                 user.id);
}

Status Notifications::OnPasswordReset(store::Store& tx, const store::User& user,
                                      const std::string& token, int64_t expires_at) {
  store::Notification n;
  n.id = NewUuid();
  n.user_id = user.id;
  n.kind = "user.password_reset";
  n.subject = "A password reset was requested for your account";
  n.link_kind = "user";
  n.link_id = user.id;
  n.created_at = clock_.NowSeconds();
  RETURN_IF_ERROR(tx.InsertNotification(n));
  ASSIGN_OR_RETURN(bool on, MailOn(tx));
  if (!on) {
    // No mail: admins learn of the pending reset (they can issue a token, see PasswordResets).
    ASSIGN_OR_RETURN(store::UserPage users, tx.ListUsers("", 0, 100'000));
    for (const store::User& admin : users.items) {
      if (auth::RoleFromInt(admin.role) != auth::Role::kAdmin || admin.id == user.id) continue;
      store::Notification a = n;
      a.id = NewUuid();
      a.user_id = admin.id;
      a.kind = "user.password_reset_pending";
      a.subject = "A password reset for " + user.name + " waits: this server sends no mail";
      RETURN_IF_ERROR(tx.InsertNotification(a));
    }
    return Status::Ok();
  }
  // A reset is mailed even to users who opted out of notifications: they asked for it.
  const std::string server = settings_.Get().name;
  const int64_t minutes = std::max<int64_t>(1, (expires_at - n.created_at) / 60);
  store::OutboxMail m;
  m.recipient = user.email;
  m.user_id = user.id;
  m.kind = "password_reset";
  m.batchable = false;
  m.subject = "[" + server + "] Reset your password";
  const std::string line = "Someone asked to reset the password of your account on " + server +
                           ". If it was you, use this one-time token within " +
                           std::to_string(minutes) +
                           " minutes: client.reset_password(token=..., new_password=...). "
                           "If it was not you, ignore this mail.";
  m.text = "Hello " + user.name + ",\n\n" + line + "\n\nToken: " + token + "\n";
  m.html = "<p>Hello " + EscapeHtml(user.name) + ",</p>\n<p>" + EscapeHtml(line) +
           "</p>\n<p>Token: <code>" + EscapeHtml(token) + "</code></p>\n";
  m.created_at = m.not_before = clock_.NowMillis();
  m.expires_at = expires_at * 1000;
  return tx.EnqueueMail(m).status();
}

Result<store::NotificationPage> Notifications::List(const Principal& caller, int64_t page,
                                                    int64_t page_size) {
  if (!caller.user_id) return PermissionDeniedError("guests have no notifications");
  if (page < 1 || page_size < 1 || page_size > kMaxPageSize) {
    return InvalidArgumentError("page must be >= 1 and page_size 1 to 1000");
  }
  return store_.ListNotifications(*caller.user_id, (page - 1) * page_size, page_size);
}

Result<store::Notification> Notifications::Get(const Principal& caller, const std::string& id) {
  if (!caller.user_id) return PermissionDeniedError("guests have no notifications");
  return store_.GetNotification(*caller.user_id, id);
}

Result<store::Notification> Notifications::SetRead(const Principal& caller, const std::string& id,
                                                   bool read) {
  if (!caller.user_id) return PermissionDeniedError("guests have no notifications");
  RETURN_IF_ERROR(store_.SetNotificationRead(*caller.user_id, id, read));
  return store_.GetNotification(*caller.user_id, id);
}

Result<bool> Notifications::WantsMail(const Principal& caller) {
  if (!caller.user_id) return PermissionDeniedError("guests get no mail");
  return store_.UserWantsMail(*caller.user_id);
}

Status Notifications::SetWantsMail(const Principal& caller, bool wants) {
  if (!caller.user_id) return PermissionDeniedError("guests get no mail");
  return store_.SetUserWantsMail(*caller.user_id, wants);
}

Result<MailConfigView> Notifications::GetMailConfig(const Principal& caller) {
  if (caller.role != auth::Role::kAdmin)
    return PermissionDeniedError("only admins see mail settings");
  MailConfigView view;
  ASSIGN_OR_RETURN(view.settings, store_.GetMailSettings());
  if (view.settings) {
    view.password_set = !view.settings->password.empty();
    view.settings->password.clear();
  }
  view.enabled = settings_.Get().notifications_enabled && view.settings.has_value();
  return view;
}

Result<MailConfigView> Notifications::EnableMail(const Principal& caller, const MailConfig& c) {
  if (caller.role != auth::Role::kAdmin) return PermissionDeniedError("only admins set up mail");
  if (!IsHostName(c.host)) return InvalidArgumentError("email_server must be a host name");
  if (c.port < 1 || c.port > 65535) return InvalidArgumentError("email_port must be 1 to 65535");
  RETURN_IF_ERROR(net::ParseSmtpSecurity(c.security).status());
  if (c.security == "none" && !IsLoopbackHost(c.host)) {
    return InvalidArgumentError(
        "security 'none' sends passwords and mail in clear text: only to a relay on this machine "
        "(127.0.0.1, ::1, localhost); use starttls or tls");
  }
  if (c.username.size() > kMaxField || (c.password && c.password->size() > kMaxField)) {
    return InvalidArgumentError("email_username and email_password are at most 512 bytes");
  }
  ASSIGN_OR_RETURN(std::string sender, NormalizeEmail(c.sender));
  store::MailSettings m;
  ASSIGN_OR_RETURN(auto old, store_.GetMailSettings());
  if (old) m = *old;
  m.host = c.host;
  m.port = c.port;
  m.security = c.security;
  m.username = c.username;
  if (c.password) m.password = *c.password;
  m.sender = sender;
  if (c.base_url) {
    const std::string& b = *c.base_url;
    if (!b.empty() && b.rfind("http://", 0) != 0 && b.rfind("https://", 0) != 0) {
      return InvalidArgumentError("base_url must start with http:// or https://");
    }
    if (b.size() > kMaxField || Sanitize(b) != b || b.find_first_of(" \"<>") != std::string::npos) {
      return InvalidArgumentError("base_url must be a plain URL");
    }
    m.base_url = b;
  }
  // The change and its audit entry commit together; the entry names what changed, no values.
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.PutMailSettings(m));
    return tx.AppendAudit(
        {clock_.NowSeconds(), caller.AuditName(), "settings.mail", "settings:mail",
         std::string("email_server,email_port,email_security,email_username,"
                     "email_sender") +
             (c.password ? ",email_password" : "") + (c.base_url ? ",base_url" : "")});
  }));
  SettingsPatch patch;
  patch.notifications_enabled = true;
  RETURN_IF_ERROR(settings_.Update(caller, patch).status());
  Wake();
  return GetMailConfig(caller);
}

Result<MailConfigView> Notifications::DisableMail(const Principal& caller) {
  if (caller.role != auth::Role::kAdmin) return PermissionDeniedError("only admins set up mail");
  SettingsPatch patch;
  patch.notifications_enabled = false;
  RETURN_IF_ERROR(settings_.Update(caller, patch).status());
  return GetMailConfig(caller);
}

Status Notifications::SendTestEmail(const Principal& caller, const std::string& to) {
  if (caller.role != auth::Role::kAdmin) return PermissionDeniedError("only admins send test mail");
  ASSIGN_OR_RETURN(auto mail, store_.GetMailSettings());
  if (!mail) return FailedPreconditionError("mail is not configured: enable_notifications first");
  std::string recipient = to.empty() ? caller.email : to;
  ASSIGN_OR_RETURN(recipient, NormalizeEmail(recipient));
  const std::string server = settings_.Get().name;
  store::OutboxMail m;
  m.recipient = recipient;
  m.kind = "test";
  m.batchable = false;
  m.subject = "[" + server + "] Test mail";
  m.text = "This is a test mail from " + server + ": its mail settings work.\n";
  m.html = "<p>This is a test mail from " + EscapeHtml(server) + ": its mail settings work.</p>\n";
  m.created_at = m.not_before = clock_.NowMillis();
  RETURN_IF_ERROR(store_.EnqueueMail(m).status());
  Wake();
  return Status::Ok();
}

Result<std::vector<store::OutboxMail>> Notifications::Outbox(const Principal& caller,
                                                             int64_t limit) {
  if (caller.role != auth::Role::kAdmin) return PermissionDeniedError("only admins see the outbox");
  ASSIGN_OR_RETURN(auto all, store_.ListOutbox(limit));
  for (auto& m : all) {
    m.text.clear();  // bodies may hold reset tokens
    m.html.clear();
  }
  return all;
}

void Notifications::SenderLoop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms),
                     [&] { return stopping_ || woken_; });
      if (stopping_) return;
      woken_ = false;
    }
    SendDue();
  }
}

void Notifications::SendDue() {
  const int64_t now = clock_.NowMillis();
  auto due = store_.DueMail(now, 1000);
  if (!due.ok()) {
    spdlog::warn("mail: cannot read the outbox: {}", due.status().ToString());
    return;
  }
  // A token that has died is neither sent nor kept.
  auto dead = [now](const store::OutboxMail& m) {
    return m.expires_at != 0 && m.expires_at <= now;
  };
  if (std::any_of(due->begin(), due->end(), dead)) {
    if (Status dropped = store_.DropExpiredMail(now); !dropped.ok()) {
      spdlog::warn("mail: cannot drop expired mail: {}", dropped.ToString());
    }
    std::erase_if(*due, dead);
  }
  if (due->empty()) return;
  auto config = store_.GetMailSettings();
  if (!config.ok() || !config->has_value() || !settings_.Get().notifications_enabled) return;
  const store::MailSettings& c = **config;
  net::SmtpServer server;
  server.host = c.host;
  server.port = c.port;
  auto security = net::ParseSmtpSecurity(c.security);
  server.security = security.ok() ? *security : net::SmtpSecurity::kStartTls;
  server.username = c.username;
  server.password = c.password;
  server.timeout_ms = options_.smtp_timeout_ms;
  const std::string name = settings_.Get().name;

  // One message per non-batchable mail; one per recipient for the rest.
  std::vector<std::pair<net::MailMessage, std::vector<const store::OutboxMail*>>> messages;
  std::map<std::string, std::vector<const store::OutboxMail*>> batches;
  std::vector<std::string> order;
  for (const store::OutboxMail& m : *due) {
    if (!m.batchable) {
      messages.push_back({{c.sender, m.recipient, m.subject, m.text, m.html}, {&m}});
      continue;
    }
    if (batches[m.recipient].empty()) order.push_back(m.recipient);
    batches[m.recipient].push_back(&m);
  }
  for (const std::string& to : order) {
    const auto& mails = batches[to];
    if (mails.size() == 1) {
      const store::OutboxMail& m = *mails[0];
      messages.push_back({{c.sender, to, m.subject, m.text, m.html}, mails});
      continue;
    }
    net::MailMessage digest{
        c.sender, to, "[" + name + "] " + std::to_string(mails.size()) + " notifications", "", ""};
    digest.text = std::to_string(mails.size()) + " notifications:\n";
    digest.html = "<p>" + std::to_string(mails.size()) + " notifications:</p>\n";
    for (const store::OutboxMail* m : mails) {
      digest.text += "\n---\n" + m->text;
      digest.html += "<hr>\n" + m->html;
    }
    messages.push_back({std::move(digest), mails});
  }
  for (auto& [message, mails] : messages) {
    std::vector<int64_t> seqs;
    int64_t attempts = 0;
    for (const store::OutboxMail* m : mails) {
      seqs.push_back(m->seq);
      attempts = std::max(attempts, m->attempts);
    }
    Status st = transport_.Send(server, message);
    if (st.ok()) {
      if (Status marked = store_.MarkMailSent(seqs, clock_.NowMillis()); !marked.ok()) {
        spdlog::error("mail: sent but cannot record it: {}", marked.ToString());
      }
      continue;
    }
    const int64_t shift = std::min<int64_t>(attempts, 20);
    const int64_t delay = std::min(options_.retry_max_ms, options_.retry_base_ms << shift);
    spdlog::warn("mail: {} mail(s) not sent (attempt {}), retry in {} ms: {}", seqs.size(),
                 attempts + 1, delay, st.message());
    (void)store_.MarkMailFailed(seqs, clock_.NowMillis() + delay, st.message());
  }
}

}  // namespace datasite::services
