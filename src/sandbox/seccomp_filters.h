// The two seccomp filters of the sandbox, built with libseccomp and exported as classic BPF
// programs (arrays of `struct sock_filter`), so that no seccomp header leaks beyond this module.
#ifndef DATASITE_SANDBOX_SECCOMP_FILTERS_H_
#define DATASITE_SANDBOX_SECCOMP_FILTERS_H_

#include <string>

#include "core/status.h"

namespace datasite::sandbox {

// For the whole sandbox (given to bubblewrap): denies kernel attack surface a Python job never
// needs (ptrace, the new mount API, namespaces other than a user + mount pair, keyrings, bpf, perf,
// modules, io_uring, ...) and sockets other than AF_UNIX. mount/umount2 and unshare(NEWUSER|NEWNS)
// stay for the template, which gives each child a fresh /tmp; the job's own filter denies them.
Result<std::string> WarmFilterBpf();

// Added by each job's child before it loads inputs: no execve, no new processes (threads stay
// allowed; clone3 answers ENOSYS so glibc falls back to clone), no mounts or namespaces, no
// memfd_create, no signals or scheduling changes aimed at process groups (the job is alone in a pid
// namespace of its own, so it can name no other process), no SysV IPC or POSIX message queues (they
// would outlive the job).
Result<std::string> JobFilterBpf();

}  // namespace datasite::sandbox

#endif  // DATASITE_SANDBOX_SECCOMP_FILTERS_H_
