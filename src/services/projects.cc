#include "services/projects.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/random.h"

namespace datasite::services {
namespace {

// The bytes `text` takes in a JSON answer: a control character is written as six ("\u0001"), a
// quote or a backslash as two, so a
// page counted in raw bytes could be six times its cap (found by a cold attack).
size_t RenderedSize(const std::string& text) {
  size_t n = text.size();
  for (unsigned char c : text) {
    if (c < 0x20) n += 5;
    if (c == '"' || c == '\\') n += 1;  // written as two
  }
  return n;
}

Status NeedDataScientist(const Principal& p) {
  if (!p.user_id || p.role < auth::Role::kDataScientist) {
    return PermissionDeniedError("projects need a data scientist account or higher");
  }
  return Status::Ok();
}

bool IsMember(const store::Project& p, const std::string& user_id) {
  return std::any_of(p.members.begin(), p.members.end(),
                     [&](const store::ProjectMember& m) { return m.user_id == user_id; });
}

// Names are shown in listings and tables: no control characters, no leading or trailing space.
Status CheckName(const std::string& name) {
  if (name.empty() || name.size() > kMaxProjectNameBytes) {
    return InvalidArgumentError("'name' must be 1 to " + std::to_string(kMaxProjectNameBytes) +
                                " bytes");
  }
  if (name.front() == ' ' || name.back() == ' ') {
    return InvalidArgumentError("'name' may not start or end with a space");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgumentError("'name' may not hold control characters");
    }
  }
  return Status::Ok();
}

Status CheckText(const char* field, const std::string& text, size_t max_bytes, bool required) {
  if ((required && text.empty()) || text.size() > max_bytes) {
    return InvalidArgumentError(std::string("'") + field + "' must be " + (required ? "1" : "0") +
                                " to " + std::to_string(max_bytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

Status ProjectService::FitsQuota(store::Store& tx, const Principal& caller, NewText what,
                                 int64_t new_bytes) {
  // Data owners and admins are not limited, as for code (CodeService::CodeFitsQuota).
  if (caller.IsDataOwner()) return Status::Ok();
  ASSIGN_OR_RETURN(store::ProjectUsage usage, tx.UserProjectUsage(*caller.user_id));
  const JobQuotas& quotas = code_.quotas();
  if (what == NewText::kProject && usage.projects > quotas.max_projects) {
    return ResourceExhaustedError("you have " + std::to_string(usage.projects - 1) +
                                  " projects, the most one user may create: a data owner can "
                                  "raise it (--max-projects-per-user)");
  }
  if (what == NewText::kMessage && usage.messages > quotas.max_project_messages) {
    return ResourceExhaustedError("you have posted " + std::to_string(usage.messages - 1) +
                                  " project messages, the most one user may post: a data owner "
                                  "can raise it (--max-project-messages-per-user)");
  }
  return code_.KeptFitsQuota(tx, *caller.user_id,
                             what == NewText::kProject ? "the project" : "the message", new_bytes);
}

ProjectService::ProjectService(store::Store& store, CodeService& code, const Clock& clock)
    : store_(store), code_(code), clock_(clock) {}

Result<std::vector<std::string>> ProjectService::ResolveMembers(
    const Principal& caller, const std::vector<std::string>& members) {
  if (members.size() > kMaxProjectMembers) {
    return InvalidArgumentError("a project has at most " + std::to_string(kMaxProjectMembers) +
                                " members");
  }
  std::vector<std::string> ids = {*caller.user_id};
  std::set<std::string> seen = {*caller.user_id};
  for (const auto& m : members) {
    if (m == *caller.user_id || (!caller.email.empty() && m == caller.email)) continue;
    // A data scientist may not learn whether an account exists: any other member is refused
    // alike, whoever it names.
    if (!caller.IsDataOwner()) {
      return PermissionDeniedError(
          "a data scientist's project has them as its only member on this datasite");
    }
    auto user = m.find('@') != std::string::npos ? store_.GetUserByEmail(m) : store_.GetUserById(m);
    if (!user.ok()) {
      if (user.status().code() == StatusCode::kNotFound) {
        return InvalidArgumentError("no user '" + m + "' on this datasite");
      }
      return user.status();
    }
    if (seen.insert(user->id).second) ids.push_back(user->id);
  }
  return ids;
}

store::ProjectEvent ProjectService::MakeEvent(const Principal& caller,
                                              const std::string& project_id,
                                              const std::string& kind,
                                              const std::string& text) const {
  store::ProjectEvent e;
  e.id = NewUuid();
  e.project_id = project_id;
  e.kind = kind;
  e.actor_id = *caller.user_id;
  e.text = text;
  e.at = clock_.NowSeconds();
  return e;
}

Result<store::Project> ProjectService::Create(const Principal& caller, const NewProject& in) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  RETURN_IF_ERROR(CheckName(in.name));
  RETURN_IF_ERROR(
      CheckText("description", in.description, kMaxProjectDescriptionBytes, /*required=*/false));
  if (in.requests.size() > kMaxProjectRequests) {
    return InvalidArgumentError("a new project holds at most " +
                                std::to_string(kMaxProjectRequests) + " requests");
  }
  ASSIGN_OR_RETURN(std::vector<std::string> members, ResolveMembers(caller, in.members));

  store::Project p;
  p.id = NewUuid();
  p.name = in.name;
  p.description = in.description;
  p.created_by = *caller.user_id;
  p.created_at = clock_.NowSeconds();
  for (auto& id : members) p.members.push_back({id, "", ""});

  std::set<std::string> codes;
  std::set<std::string> asked;
  for (const auto& r : in.requests) {
    if (!(r.request_id.empty() ? codes.insert(r.code_id) : asked.insert(r.request_id)).second) {
      return InvalidArgumentError(
          "the " + (r.request_id.empty() ? "code " + r.code_id : "request " + r.request_id) +
          " is asked for twice");
    }
  }
  std::vector<store::CodeRequest> requests;
  std::vector<store::CodeRequest> existing;  // made before, joining the project
  for (const auto& r : in.requests) {
    if (r.request_id.empty()) {
      ASSIGN_OR_RETURN(store::CodeRequest row, code_.NewRequest(caller, r.code_id, r.reason));
      row.project_id = p.id;
      requests.push_back(std::move(row));
    } else {
      ASSIGN_OR_RETURN(store::CodeRequest row, code_.GetRequest(caller, r.request_id));
      if (!caller.IsSelf(row.user_id)) {
        return PermissionDeniedError("only the request's author may add it to a project");
      }
      if (row.project_id) return FailedPreconditionError("the request is in another project");
      existing.push_back(std::move(row));
    }
  }
  for (const auto& r : existing) {
    if (!codes.insert(r.code_id).second) {
      return InvalidArgumentError("the code " + r.code_id + " is asked for twice");
    }
  }

  std::vector<store::ProjectEvent> events;
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    Status inserted = tx.InsertProject(p);
    if (inserted.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("you already have a project named '" + p.name + "'");
    }
    RETURN_IF_ERROR(inserted);
    // Checked once inserted, in the transaction that inserts: the insert's count holds the
    // user's usage row until the commit, so two creations by one user can't both pass the caps.
    RETURN_IF_ERROR(FitsQuota(tx, caller, NewText::kProject,
                              static_cast<int64_t>(p.name.size() + p.description.size())));
    RETURN_IF_ERROR(
        tx.AppendAudit({p.created_at, caller.AuditName(), "project.create", "project:" + p.id,
                        std::to_string(p.members.size()) + " members"}));
    for (const auto& r : requests) {
      Status req = tx.InsertRequest(r);
      if (req.code() == StatusCode::kAlreadyExists) {
        return AlreadyExistsError("the code " + r.code_id + " already has a request");
      }
      RETURN_IF_ERROR(req);
      RETURN_IF_ERROR(code_.AnnounceRequest(tx, r));
      store::ProjectEvent e = MakeEvent(caller, p.id, "request", r.reason);
      e.request_id = r.id;
      ASSIGN_OR_RETURN(e.seq, tx.AppendProjectEvent(e));
      RETURN_IF_ERROR(tx.AppendAudit({p.created_at, caller.AuditName(), "request.submit",
                                      "request:" + r.id, "project:" + p.id}));
      events.push_back(std::move(e));
    }
    for (const auto& r : existing) {
      RETURN_IF_ERROR(tx.SetRequestProject(r.id, p.id));
      store::ProjectEvent e = MakeEvent(caller, p.id, "request", r.reason);
      e.request_id = r.id;
      ASSIGN_OR_RETURN(e.seq, tx.AppendProjectEvent(e));
      RETURN_IF_ERROR(tx.AppendAudit({p.created_at, caller.AuditName(), "project.add_request",
                                      "project:" + p.id, "request:" + r.id}));
      events.push_back(std::move(e));
    }
    return notifications_ ? notifications_->OnNewProject(tx, p, p.created_by) : Status::Ok();
  });
  code_.WakeNotifier(st);
  RETURN_IF_ERROR(st);
  ASSIGN_OR_RETURN(store::Project created, store_.GetProject(p.id));
  return created;
}

Result<store::ProjectPage> ProjectService::List(const Principal& caller,
                                                const std::optional<std::string>& name,
                                                int64_t page, int64_t page_size) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  if (page < 1) return InvalidArgumentError("page must be 1 or more");
  if (page_size < 1 || page_size > kMaxListPageSize) {
    return InvalidArgumentError("page_size must be between 1 and " +
                                std::to_string(kMaxListPageSize));
  }
  std::optional<std::string> member;
  if (!caller.IsDataOwner()) member = caller.user_id;
  return store_.ListProjects(member, name, (page - 1) * page_size, page_size);
}

Result<store::Project> ProjectService::Visible(const Principal& caller, const std::string& id) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  auto p = store_.GetProject(id);
  if (!p.ok()) {
    if (p.status().code() == StatusCode::kNotFound) return NotFoundError("project not found");
    return p.status();
  }
  if (!caller.IsDataOwner() && !IsMember(*p, *caller.user_id)) {
    return NotFoundError("project not found");
  }
  return p;
}

Result<store::Project> ProjectService::AsMember(const Principal& caller, const std::string& id) {
  ASSIGN_OR_RETURN(store::Project p, Visible(caller, id));
  if (!IsMember(p, *caller.user_id)) {
    return PermissionDeniedError("only the project's members add requests and messages to it");
  }
  return p;
}

Result<store::Project> ProjectService::Get(const Principal& caller, const std::string& id) {
  return Visible(caller, id);
}

Result<ProjectEventPage> ProjectService::Events(const Principal& caller, const std::string& id,
                                                int64_t after_seq, int64_t limit) {
  ASSIGN_OR_RETURN(store::Project p, Visible(caller, id));
  if (after_seq < 0) return InvalidArgumentError("after_seq must be 0 or more");
  if (limit < 1 || limit > kMaxListPageSize) {
    return InvalidArgumentError("limit must be between 1 and " + std::to_string(kMaxListPageSize));
  }
  // One more than asked for tells whether more follow.
  ASSIGN_OR_RETURN(std::vector<store::ProjectEvent> events,
                   store_.ProjectEvents(p.id, after_seq, limit + 1));
  ProjectEventPage page;
  size_t bytes = 0;
  size_t kept = 0;
  for (; kept < events.size() && kept < static_cast<size_t>(limit); ++kept) {
    bytes += RenderedSize(events[kept].text);
    if (kept > 0 && bytes > kMaxProjectEventPageBytes) break;
  }
  page.more = kept < events.size();
  events.resize(kept);
  page.items = std::move(events);
  if (caller.IsDataOwner()) return page;
  // A denial's reason is the owner's free text and may quote private data: like the request it
  // answers, it is for that request's author (and the owners), not every member.
  for (store::ProjectEvent& e : page.items) {
    if (e.kind != "decision" || e.text.empty() || !e.request_id) continue;
    auto request = store_.GetRequest(*e.request_id);
    if (!request.ok() || !caller.IsSelf(request->user_id)) e.text.clear();
  }
  return page;
}

Result<store::CodeRequest> ProjectService::AddCodeRequest(const Principal& caller,
                                                          const std::string& project_id,
                                                          const ProjectCodeRequest& request) {
  ASSIGN_OR_RETURN(store::Project p, AsMember(caller, project_id));
  ASSIGN_OR_RETURN(store::CodeRequest r, code_.NewRequest(caller, request.code_id, request.reason));
  r.project_id = p.id;
  store::ProjectEvent e = MakeEvent(caller, p.id, "request", r.reason);
  e.request_id = r.id;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    Status inserted = tx.InsertRequest(r);
    if (inserted.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("this code already has a request");
    }
    RETURN_IF_ERROR(inserted);
    RETURN_IF_ERROR(code_.AnnounceRequest(tx, r));
    ASSIGN_OR_RETURN(e.seq, tx.AppendProjectEvent(e));
    return tx.AppendAudit(
        {e.at, caller.AuditName(), "request.submit", "request:" + r.id, "project:" + p.id});
  }));
  code_.WakeNotifier(Status::Ok());
  return store_.GetRequest(r.id);
}

Result<store::CodeRequest> ProjectService::AddExistingRequest(const Principal& caller,
                                                              const std::string& project_id,
                                                              const std::string& request_id) {
  ASSIGN_OR_RETURN(store::Project p, AsMember(caller, project_id));
  ASSIGN_OR_RETURN(store::CodeRequest r, code_.GetRequest(caller, request_id));
  if (!caller.IsSelf(r.user_id)) {
    return PermissionDeniedError("only the request's author may add it to a project");
  }
  if (r.project_id) {
    return FailedPreconditionError(r.project_id == p.id ? "the request is in this project already"
                                                        : "the request is in another project");
  }
  store::ProjectEvent e = MakeEvent(caller, p.id, "request", r.reason);
  e.request_id = r.id;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.SetRequestProject(r.id, p.id));
    ASSIGN_OR_RETURN(e.seq, tx.AppendProjectEvent(e));
    return tx.AppendAudit(
        {e.at, caller.AuditName(), "project.add_request", "project:" + p.id, "request:" + r.id});
  }));
  return store_.GetRequest(r.id);
}

Result<store::ProjectEvent> ProjectService::AddMessage(const Principal& caller,
                                                       const std::string& project_id,
                                                       const std::string& text) {
  ASSIGN_OR_RETURN(store::Project p, AsMember(caller, project_id));
  RETURN_IF_ERROR(CheckText("message", text, kMaxProjectMessageBytes, /*required=*/true));
  store::ProjectEvent e = MakeEvent(caller, p.id, "message", text);
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    ASSIGN_OR_RETURN(e.seq, tx.AppendProjectEvent(e));
    RETURN_IF_ERROR(FitsQuota(tx, caller, NewText::kMessage, static_cast<int64_t>(text.size())));
    return notifications_ ? notifications_->OnProjectMessage(tx, p, e.actor_id) : Status::Ok();
  });
  code_.WakeNotifier(st);
  RETURN_IF_ERROR(st);
  e.actor_email = caller.email;
  for (const auto& m : p.members) {
    if (m.user_id == e.actor_id) {
      e.actor_name = m.name;
      e.actor_email = m.email;
    }
  }
  return e;
}

Status AppendDecisionEvent(store::Store& tx, const store::CodeRequest& request,
                           const std::string& status, const std::optional<std::string>& reason,
                           const std::string& reviewer_id, int64_t now) {
  if (!request.project_id) return Status::Ok();
  store::ProjectEvent e;
  e.id = NewUuid();
  e.project_id = *request.project_id;
  e.kind = "decision";
  e.actor_id = reviewer_id;
  e.request_id = request.id;
  e.status = status;
  e.text = reason.value_or("");
  e.at = now;
  return tx.AppendProjectEvent(e).status();
}

}  // namespace datasite::services
