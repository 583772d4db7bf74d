// Projects: a data scientist's named piece of work on this datasite, holding their code requests
// and messages as events in order (PySyft's sy.Project). A project spans one datasite; projects
// across datasites come with the gateway.
//
// Who sees what: a project's members and the datasite's data owners and admins see it; to anyone
// else it does not exist (kNotFound, so names don't leak). Only members add requests and
// messages. A data scientist's project has them as its only member; data owners and admins may
// name other users as members.
#ifndef DATASITE_SERVICES_PROJECTS_H_
#define DATASITE_SERVICES_PROJECTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "services/code.h"
#include "services/notifications.h"
#include "services/principal.h"
#include "store/store.h"

namespace datasite::services {

inline constexpr size_t kMaxProjectNameBytes = 200;
inline constexpr size_t kMaxProjectDescriptionBytes = 10'000;
inline constexpr size_t kMaxProjectMessageBytes = 10'000;
inline constexpr size_t kMaxProjectMembers = 100;
inline constexpr size_t kMaxProjectRequests = 100;  // sent with a new project
// The texts one page of events holds at most (besides at most kMaxListPageSize events): an answer
// is held in memory until its client reads it, and a page of 1000 messages of 10 KB would be 10 MB.
inline constexpr size_t kMaxProjectEventPageBytes = size_t{1} << 20;

// One page of a project's events, oldest first; `more`: later events exist.
struct ProjectEventPage {
  std::vector<store::ProjectEvent> items;
  bool more = false;
};

// One request of a new project: a new one for `code_id` (submitted code of the caller's, with no
// request yet), or the caller's request `request_id` made before, outside any project (PySyft's
// project.create_code_request before send() asks at once).
struct ProjectCodeRequest {
  std::string code_id;
  std::string request_id;
  std::string reason;  // a new request's
};

struct NewProject {
  std::string name;
  std::string description;
  std::vector<std::string> members;  // user ids or emails; the caller is always one
  std::vector<ProjectCodeRequest> requests;
};

// Safe for concurrent use.
class ProjectService {
 public:
  ProjectService(store::Store& store, CodeService& code, const Clock& clock);
  // Where new projects are announced (null: nowhere). Set before serving.
  void SetNotifications(Notifications* notifications) { notifications_ = notifications; }

  // Creates the project with its first requests, each with its event, in one transaction.
  Result<store::Project> Create(const Principal& caller, const NewProject& project);
  // The projects the caller sees (data owners and admins: all), oldest first; `name`: only
  // those named so.
  Result<store::ProjectPage> List(const Principal& caller, const std::optional<std::string>& name,
                                  int64_t page = 1, int64_t page_size = kMaxListPageSize);
  Result<store::Project> Get(const Principal& caller, const std::string& id);
  // The events with a seq above `after_seq`, oldest first: at most `limit` (1 to
  // kMaxListPageSize) and, past the first, no more than kMaxProjectEventPageBytes of text as JSON
  // writes it (a control character takes six). A page,
  // so that no answer holds a whole project's messages.
  Result<ProjectEventPage> Events(const Principal& caller, const std::string& id,
                                  int64_t after_seq = 0, int64_t limit = kMaxListPageSize);
  // Asks for `code_id` to run on private data, inside the project (members only).
  Result<store::CodeRequest> AddCodeRequest(const Principal& caller, const std::string& project_id,
                                            const ProjectCodeRequest& request);
  // Moves the caller's own request, made outside any project, into it (members only).
  Result<store::CodeRequest> AddExistingRequest(const Principal& caller,
                                                const std::string& project_id,
                                                const std::string& request_id);
  Result<store::ProjectEvent> AddMessage(const Principal& caller, const std::string& project_id,
                                         const std::string& text);

 private:
  // The project when the caller may see it, else kNotFound.
  Result<store::Project> Visible(const Principal& caller, const std::string& id);
  // The project when the caller is a member (kPermissionDenied for data owners who see it
  // without being one).
  Result<store::Project> AsMember(const Principal& caller, const std::string& id);
  Result<std::vector<std::string>> ResolveMembers(const Principal& caller,
                                                  const std::vector<std::string>& members);
  enum class NewText { kProject, kMessage };
  // Whether the caller's projects (or messages), with the new one of `new_bytes` just stored in
  // `tx`, stay within their per-user cap and, with all else they keep, their storage quota; else
  // kResourceExhausted naming the limit. Data owners and admins pass.
  Status FitsQuota(store::Store& tx, const Principal& caller, NewText what, int64_t new_bytes);
  store::ProjectEvent MakeEvent(const Principal& caller, const std::string& project_id,
                                const std::string& kind, const std::string& text) const;

  store::Store& store_;
  CodeService& code_;
  Notifications* notifications_ = nullptr;
  const Clock& clock_;
};

// Appends the decision on `request` to its project's events, through `tx` (the transaction that
// decides it); does nothing for a request outside any project.
Status AppendDecisionEvent(store::Store& tx, const store::CodeRequest& request,
                           const std::string& status, const std::optional<std::string>& reason,
                           const std::string& reviewer_id, int64_t now);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_PROJECTS_H_
