#include "sandbox/seccomp_filters.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/unique_fd.h"

namespace datasite::sandbox {
namespace {

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(static_cast<scmp_filter_ctx>(ctx)); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// Resolves `name` for the native architecture; names this kernel's headers don't know are skipped.
int SyscallNumber(const char* name) { return seccomp_syscall_resolve_name(name); }

Status Deny(scmp_filter_ctx ctx, const char* name, int err) {
  int nr = SyscallNumber(name);
  if (nr == __NR_SCMP_ERROR) return Status::Ok();
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0);
  if (rc != 0) return InternalError(std::string("seccomp rule for ") + name + ": " + strerror(-rc));
  return Status::Ok();
}

Status DenyIf(scmp_filter_ctx ctx, const char* name, int err, scmp_arg_cmp cmp) {
  int nr = SyscallNumber(name);
  if (nr == __NR_SCMP_ERROR) return Status::Ok();
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 1, cmp);
  if (rc != 0) return InternalError(std::string("seccomp rule for ") + name + ": " + strerror(-rc));
  return Status::Ok();
}

// Compares the low 32 bits of argument `arg` (an int such as an ioctl request) with `value`.
scmp_arg_cmp IntArgEquals(unsigned arg, int value) {
  return SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, static_cast<uint32_t>(value));
}
scmp_arg_cmp IntArgNegative(unsigned arg) {
  return SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, 0x80000000u, 0x80000000u);
}

Result<Ctx> NewCtx() {
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return InternalError("seccomp_init failed");
  // Syscalls of other ABIs (i386, x32) kill the process: the rules below only name native numbers.
  if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0)
    return InternalError("seccomp_attr_set failed");
  return ctx;
}

Result<std::string> Export(scmp_filter_ctx ctx) {
  UniqueFd fd(memfd_create("seccomp-bpf", MFD_CLOEXEC));
  if (!fd.valid()) return InternalError(std::string("memfd_create: ") + strerror(errno));
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc != 0) return InternalError(std::string("seccomp_export_bpf: ") + strerror(-rc));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return InternalError("fstat of the seccomp program failed");
  std::string program(static_cast<size_t>(st.st_size), '\0');
  if (pread(fd.get(), program.data(), program.size(), 0) != static_cast<ssize_t>(program.size()))
    return InternalError("reading the seccomp program failed");
  return program;
}

constexpr const char* kWarmDenied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pivot_root",
    "chroot",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "personality",
    "open_by_handle_at",
    "name_to_handle_at",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "quotactl",
    "acct",
    "syslog",
    "vhangup",
    "iopl",
    "ioperm",
    "uselib",
    "lookup_dcookie",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "pidfd_getfd",
    "kcmp",
    "fanotify_init",
    "nfsservctl",
};

constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWUSER,   CLONE_NEWNS,  CLONE_NEWPID,
                                             CLONE_NEWNET,    CLONE_NEWIPC, CLONE_NEWUTS,
                                             CLONE_NEWCGROUP, CLONE_NEWTIME};
// The template makes a user + mount namespace of its own (unshare, once) and a pid namespace per
// child (clone); each child mount, network and IPC namespaces of its own (for its /tmp, and so
// that it can't meet the children before and after it, which overlap it) and then a user
// namespace; a template forked from it for another slot (Sandbox::Resize) network and IPC
// namespaces of its own too, so that jobs of two slots can't meet. Nothing may make any other; a
// job's own filter denies unshare and every clone that is not a thread.
constexpr unsigned long kUnshareAllowed = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC;
constexpr unsigned long kCloneAllowed = CLONE_NEWPID;

constexpr const char* kJobDenied[] = {
    // Only the template remounts /tmp (a fresh one per child); a job has no capability for it
    // either, and no new namespaces.
    "mount",
    "umount2",
    "unshare",
    // Memory no process maps, which RLIMIT_AS would not count.
    "memfd_create",
    // Watching files another job opens (its imports, under /usr or an environment): a channel
    // between jobs that run at once.
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "fanotify_init",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "pidfd_open",
    "pidfd_send_signal",
    "process_madvise",
    "process_mrelease",
    "setpriority",
    "ioprio_set",
    "shmget",
    "shmat",
    "shmctl",
    "shmdt",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
};

// Syscalls whose first argument names another process; denied when it names a protected one.
constexpr const char* kJobPidSyscalls[] = {
    "kill",
    "tgkill",
    "tkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "prlimit64",
    "sched_setaffinity",
    "sched_setscheduler",
    "sched_setparam",
    "sched_setattr",
    "migrate_pages",
    "move_pages",
};

}  // namespace

Result<std::string> WarmFilterBpf() {
  ASSIGN_OR_RETURN(Ctx ctx, NewCtx());
  for (const char* name : kWarmDenied) RETURN_IF_ERROR(Deny(ctx.get(), name, EPERM));
  RETURN_IF_ERROR(DenyIf(ctx.get(), "socket", EAFNOSUPPORT, SCMP_A0(SCMP_CMP_NE, AF_UNIX)));
  RETURN_IF_ERROR(DenyIf(ctx.get(), "socketpair", EAFNOSUPPORT, SCMP_A0(SCMP_CMP_NE, AF_UNIX)));
  for (unsigned long flag : kNamespaceFlags) {
    if (!(flag & kCloneAllowed))
      RETURN_IF_ERROR(DenyIf(ctx.get(), "clone", EPERM, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)));
    if (!(flag & kUnshareAllowed))
      RETURN_IF_ERROR(DenyIf(ctx.get(), "unshare", EPERM, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)));
  }
  // clone3 passes its flags in memory, out of seccomp's sight: answer ENOSYS and glibc uses clone.
  RETURN_IF_ERROR(Deny(ctx.get(), "clone3", ENOSYS));
  RETURN_IF_ERROR(DenyIf(ctx.get(), "ioctl", EPERM, IntArgEquals(1, 0x5412 /* TIOCSTI */)));
  // The network device ioctls (SIOCGIFCONF, SIOCGIFADDR ... 0x89xx; wireless 0x8Bxx) answer on
  // any socket for the network namespace the socket was made in: on a Unix socket the host made
  // (an endpoint's relayed connection, --endpoint-egress) they would list the host's interfaces.
  RETURN_IF_ERROR(DenyIf(ctx.get(), "ioctl", EPERM, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0x8900)));
  RETURN_IF_ERROR(DenyIf(ctx.get(), "ioctl", EPERM, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0x8b00)));
  return Export(ctx.get());
}

Result<std::string> JobFilterBpf() {
  ASSIGN_OR_RETURN(Ctx ctx, NewCtx());
  for (const char* name : kJobDenied) RETURN_IF_ERROR(Deny(ctx.get(), name, EPERM));
  // File locks: every job can open the same files (/usr, an environment, /dev/null, an asset two
  // jobs read), and a lock one holds another sees. A cold attack carried a job's 32-bit secret to
  // the next job, exactly, in which of 32 standard-library files it had locked while it was still
  // ending. flock, record and open-file-description locks, leases and directory notifications get
  // "no locks available", which libraries that lock optionally take as locking being unsupported
  // (as on some network file systems).
  RETURN_IF_ERROR(Deny(ctx.get(), "flock", ENOLCK));
  for (int command : {F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW,
                      F_SETLEASE, F_GETLEASE, F_NOTIFY})
    RETURN_IF_ERROR(DenyIf(ctx.get(), "fcntl", ENOLCK, IntArgEquals(1, command)));
  // New processes: clone without CLONE_THREAD. Threads stay allowed.
  RETURN_IF_ERROR(DenyIf(ctx.get(), "clone", EPERM, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)));
  RETURN_IF_ERROR(Deny(ctx.get(), "clone3", ENOSYS));
  // The job is pid 1 of a pid namespace of its own: the template and every other process are out of
  // its sight, so it can name no pid but its own. Negative pids address process groups.
  for (const char* name : kJobPidSyscalls) {
    if (std::strcmp(name, "tkill") != 0)
      RETURN_IF_ERROR(DenyIf(ctx.get(), name, EPERM, IntArgNegative(0)));
  }
  return Export(ctx.get());
}

}  // namespace datasite::sandbox
