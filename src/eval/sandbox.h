// Runs untrusted Python programs (model-written code and its unit tests) in a
// child process that cannot reach the network, write outside a private
// folder, fork without bound, outlive its time limit or signal the caller.
//
// Isolation, strongest first (chosen once per process by probing):
//   bwrap    bubblewrap: new user, network, pid, mount, IPC and UTS
//            namespaces; / bound read-only; a private tmpfs /tmp as the
//            working folder.
//   unshare  util-linux unshare: new user, network, pid, IPC and UTS
//            namespaces; the file system is protected only by the uid.
//   rlimits  a plain child: limits and, as root, an unprivileged uid.
// On top of every level: setrlimit limits (CPU, address space, file size,
// open files, no core dumps), a new session, a wall-clock timeout enforced
// here, and, when this process runs as root, a uid of its own per slot, which
// is what makes RLIMIT_NPROC count (the kernel exempts uid 0) and lets the
// cleanup kill every process the program started, wherever it hid. In a user
// namespace the process limit holds without root too (set inside it, where
// it counts only the namespace's processes); at the rlimits level without
// root there is none.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dllm::eval {

struct SandboxOptions {
  std::string python;     // interpreter; "" = /usr/bin/python3 or PATH
  double timeout_s = 10;  // wall clock, enforced by the parent
  int64_t memory_bytes = int64_t(1) << 30;  // RLIMIT_AS
  int64_t file_bytes = 16 << 20;            // RLIMIT_FSIZE and the tmpfs size
  int max_processes = 64;                   // RLIMIT_NPROC (threads count too)
  size_t max_output = 64 << 10;  // bytes kept of stdout and of stderr each
  int slots = 1;                 // programs that may run at once
  // Forces a level ("bwrap", "unshare", "rlimits"); "" = the strongest that
  // works here. Tests use it to cover the fallbacks.
  std::string level;
  // First uid of the per-slot uids used when running as root.
  int uid_base = 61000;
};

// What protection is in force; printed by `dllm eval` and recorded in its
// results.
struct Isolation {
  std::string level;                 // "bwrap", "unshare" or "rlimits"
  bool network_blocked = false;      // a network namespace of its own
  bool filesystem_readonly = false;  // everything but /tmp read-only
  bool own_uid = false;              // an unprivileged uid per slot
  bool pid_limit = false;            // RLIMIT_NPROC enforced
  std::string Describe() const;      // one line for logs
};

enum class Outcome { kPassed, kFailed, kTimeout, kCrashed, kError };
const char* OutcomeName(Outcome o);  // "passed", "failed", "timeout", ...

struct SandboxResult {
  Outcome outcome = Outcome::kError;
  int exit_code = -1;    // when it exited
  int signal = 0;        // when a signal ended it (kCrashed)
  double seconds = 0;    // wall clock
  std::string out, err;  // captured, at most max_output bytes each
  bool out_truncated = false, err_truncated = false;
  std::string error;  // kError: why the program could not be run
};

class Sandbox {
 public:
  // Probes the isolation level (once per process and level) and claims
  // `slots` uids when running as root. Throws dllm::Error when no Python can
  // be run at all.
  explicit Sandbox(const SandboxOptions& o);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Runs `program` as a Python script and waits for it (at most the timeout
  // plus the cleanup). Thread-safe; at most `slots` run at once, the others
  // wait for a free slot.
  SandboxResult Run(const std::string& program);

  const Isolation& isolation() const;
  const SandboxOptions& options() const;
  // The uids programs run as (one per slot); empty without own_uid.
  std::vector<int> uids() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dllm::eval
