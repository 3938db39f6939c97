// One child process run to completion under a wall-clock limit: resource
// limits and an optional uid applied between fork and exec, stdout and stderr
// captured up to a bound, and everything it started killed at the end.
#pragma once

#include <sys/resource.h>

#include <string>
#include <vector>

namespace dllm::eval {

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0]: an absolute path
  std::vector<std::string> env;   // the whole environment, "NAME=value"
  std::string cwd;
  int uid = -1,
      gid = -1;  // switched to (all of real, effective, saved) if >= 0
  struct Limit {
    int resource;  // RLIMIT_*
    rlim_t value;  // soft and hard
  };
  std::vector<Limit> limits;
  double timeout_s = 10;
  size_t max_output = 64 << 10;  // per stream
};

struct ChildResult {
  bool started = false;    // false: fork, setup or exec failed (see error)
  bool timed_out = false;  // killed at the deadline
  int exit_code = -1;      // when it exited
  int signal = 0;          // when a signal ended it
  double seconds = 0;
  std::string out, err;
  bool out_truncated = false, err_truncated = false;
  std::string error;
};

// Never hangs: at the deadline the child's session is killed, and with a uid
// every process of that uid (which is how processes that left the session,
// or a pid namespace, are caught).
ChildResult RunChild(const ChildSpec& spec);

// Sends SIGKILL to every process whose real or saved uid is `uid`, from a
// short-lived child that takes that uid (kill(-1) reaches exactly those).
// Needs root; a no-op for uid < 0.
void KillUid(int uid);

// The absolute path of `name`: itself when it has a '/', else the first
// executable in $PATH; "" when there is none.
std::string FindExecutable(const std::string& name);

}  // namespace dllm::eval
