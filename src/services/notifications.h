// Notifications: in-app messages to users, and mail from a durable outbox.
//
// Every event writes its notification rows and outbox rows through the Store& of the caller's
// Store::InTransaction, so they commit with the change that causes them or not at all. One
// background thread (the sender) takes due mail from the outbox and sends it over SMTP; request
// threads never do SMTP I/O. A recipient's mails that fall due together go out as one digest, and
// a failed send is retried with exponential backoff: nothing is lost while the SMTP server is
// down. Texts name people and objects and link to them; they never quote private data, reasons,
// errors or code.
#ifndef DATASITE_SERVICES_NOTIFICATIONS_H_
#define DATASITE_SERVICES_NOTIFICATIONS_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/status.h"
#include "net/smtp.h"
#include "services/principal.h"
#include "services/settings.h"
#include "store/store.h"

namespace datasite::services {

struct NotificationsOptions {
  // A recipient's mails within this window go out as one (an owner gets one mail for 100 new
  // requests).
  int64_t batch_window_ms = 30'000;
  // The first retry waits this long; each next one twice as long, up to retry_max_ms.
  int64_t retry_base_ms = 1'000;
  int64_t retry_max_ms = 10 * 60'000;
  // How often the sender looks for due mail (it is also woken when mail is queued).
  int64_t poll_ms = 500;
  int64_t smtp_timeout_ms = 20'000;
};

// What an admin sets to enable mail. An empty password keeps the stored one.
struct MailConfig {
  std::string host;
  int64_t port = 587;
  std::string security = "starttls";
  std::string username;
  std::optional<std::string> password;
  std::string sender;
  std::optional<std::string> base_url;
};

// The mail settings as shown to admins: everything but the password.
struct MailConfigView {
  bool enabled = false;
  std::optional<store::MailSettings> settings;  // password cleared
  bool password_set = false;
};

// Safe for concurrent use. Start() runs the sender thread; the destructor stops it.
class Notifications {
 public:
  Notifications(store::Store& store, const Clock& clock, SettingsService& settings,
                net::MailTransport& transport, NotificationsOptions options);
  ~Notifications();
  Notifications(const Notifications&) = delete;
  Notifications& operator=(const Notifications&) = delete;

  void Start();
  void Stop();

  // Events. Each writes through `tx`, the Store of the caller's transaction.
  Status OnNewRequest(store::Store& tx, const store::CodeRequest& request,
                      const std::string& code_name);
  // A new project: the data owners and admins (but its creator) hear of it, linked to it.
  Status OnNewProject(store::Store& tx, const store::Project& project,
                      const std::string& creator_id);
  // A message on a project: its other members hear of it (names and a link, never the text).
  Status OnProjectMessage(store::Store& tx, const store::Project& project,
                          const std::string& author_id);
  Status OnDecision(store::Store& tx, const store::CodeRequest& request, const std::string& status,
                    const std::string& reviewer_id);
  // A private run of a requester's code ended: its result is ready, or it failed (its fixed
  // kind). Nothing for a run the stored row holds for output review: its release tells. `job` as
  // the worker leased it, with the end it recorded and `held` as FinishJob returned it.
  Status OnJobEnded(store::Store& tx, const store::Job& job);
  // A data owner released a held run: its result, or how it failed (the kind the job API now
  // shows).
  Status OnResultReleased(store::Store& tx, const store::Job& job, const std::string& by);
  Status OnNewAccount(store::Store& tx, const store::User& user);
  // Mails the token (when mail is on) and notes the reset in-app.
  Status OnPasswordReset(store::Store& tx, const store::User& user, const std::string& token,
                         int64_t expires_at);
  // Wakes the sender (after a transaction that queued mail committed).
  void Wake();

  // The caller's own notifications, oldest first.
  Result<store::NotificationPage> List(const Principal& caller, int64_t page, int64_t page_size);
  Result<store::Notification> Get(const Principal& caller, const std::string& id);
  Result<store::Notification> SetRead(const Principal& caller, const std::string& id, bool read);
  // The caller's choice of mail (opt-out).
  Result<bool> WantsMail(const Principal& caller);
  Status SetWantsMail(const Principal& caller, bool wants);

  // Admins.
  Result<MailConfigView> GetMailConfig(const Principal& caller);
  Result<MailConfigView> EnableMail(const Principal& caller, const MailConfig& config);
  Result<MailConfigView> DisableMail(const Principal& caller);
  // Queues a test mail to `to` (the caller's own address when empty).
  Status SendTestEmail(const Principal& caller, const std::string& to);
  // The outbox as it stands (admins), newest `limit` rows.
  Result<std::vector<store::OutboxMail>> Outbox(const Principal& caller, int64_t limit);

  // Whether mail goes out now: enabled in the settings and configured.
  Result<bool> MailOn(store::Store& tx);
  // One pass of the sender, on the caller's thread.
  void SendDueForTest() { SendDue(); }

 private:
  // Whom a notification is for: the account's id, and the account itself when the caller has
  // read it (else it is read only if a mail goes out: the in-app notification needs the id only).
  struct Recipient {
    std::string id;
    const store::User* user = nullptr;
  };
  static Recipient To(const store::User& user) { return {user.id, &user}; }
  // The in-app notification, and the mail unless the user opted out or mail is off.
  Status Deliver(store::Store& tx, const Recipient& to, const std::string& from_id,
                 const std::string& kind, const std::string& subject, const std::string& line,
                 const std::string& link_kind, const std::string& link_id);
  // A failed run's fixed kind (errored and timed-out runs only), never its text.
  Status DeliverFailure(store::Store& tx, const Recipient& to, const std::string& from_id,
                        const store::UserCode& code, const store::Job& job);
  std::string Link(store::Store& tx, const std::string& kind, const std::string& id);
  void SenderLoop();
  void SendDue();

  store::Store& store_;
  const Clock& clock_;
  SettingsService& settings_;
  net::MailTransport& transport_;
  const NotificationsOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // Guarded by mu_.
  bool woken_ = false;     // Guarded by mu_.
  std::thread sender_;
};

// `text` with &, <, >, " and ' escaped for HTML.
std::string EscapeHtml(const std::string& text);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_NOTIFICATIONS_H_
