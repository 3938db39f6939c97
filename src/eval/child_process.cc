#include "eval/child_process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "dllm/error.h"
#include "dllm/timer.h"

namespace dllm::eval {
namespace {

// What the child reports through the error pipe when setup or exec fails.
struct ChildFailure {
  int stage;  // index into kStages
  int err;    // errno
};
constexpr const char* kStages[] = {"dup2",      "chdir",     "setrlimit",
                                   "setgroups", "setresgid", "setresuid",
                                   "prctl",     "execve"};

// Between fork and exec only async-signal-safe calls: the parent has other
// threads (parallel samples) whose locks may be held at the fork.
[[noreturn]] void ChildFail(int fd, int stage) {
  ChildFailure f{stage, errno};
  ssize_t n = write(fd, &f, sizeof(f));
  (void)n;
  _exit(127);
}

// Marks every descriptor above stderr close-on-exec, so that pipes of
// samples running in other threads do not leak into this one (a leaked write
// end would keep their pipes open past their exit).
void CloseInheritedFds() {
#ifdef SYS_close_range
  constexpr unsigned kCloexec = 1u << 2;  // CLOSE_RANGE_CLOEXEC
  if (syscall(SYS_close_range, 3u, ~0u, kCloexec) == 0) return;
#endif
  const long max_fd = sysconf(_SC_OPEN_MAX);
  for (long fd = 3; fd < (max_fd > 0 ? max_fd : 4096); ++fd)
    fcntl(int(fd), F_SETFD, FD_CLOEXEC);
}

[[noreturn]] void ExecChild(const ChildSpec& s, char* const* argv,
                            char* const* envp, int in_fd, int out_fd,
                            int err_fd, int fail_fd, pid_t parent) {
  setsid();  // a session and process group of its own, killed as one
  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
    ChildFail(fail_fd, 0);
  CloseInheritedFds();
  if (!s.cwd.empty() && chdir(s.cwd.c_str()) != 0) ChildFail(fail_fd, 1);
  for (const ChildSpec::Limit& l : s.limits) {
    const rlimit r{l.value, l.value};
    if (setrlimit(l.resource, &r) != 0) ChildFail(fail_fd, 2);
  }
  if (s.uid >= 0) {
    if (setgroups(0, nullptr) != 0) ChildFail(fail_fd, 3);
    if (setresgid(gid_t(s.gid), gid_t(s.gid), gid_t(s.gid)) != 0)
      ChildFail(fail_fd, 4);
    if (setresuid(uid_t(s.uid), uid_t(s.uid), uid_t(s.uid)) != 0)
      ChildFail(fail_fd, 5);
  }
  // After the uid change, which clears it: die with the thread that waits for
  // us, so a killed harness leaves nothing running.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(fail_fd, 6);
  if (getppid() != parent) _exit(127);
  // No privileges back through set-uid or file-capability programs.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(fail_fd, 6);
  execve(argv[0], argv, envp);
  ChildFail(fail_fd, 7);
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> p;
  for (const std::string& s : v) p.push_back(const_cast<char*>(s.c_str()));
  p.push_back(nullptr);
  return p;
}

// Appends what `fd` has to `dst` (up to `cap` bytes kept); false at EOF.
bool Drain(int fd, std::string& dst, size_t cap, bool& truncated) {
  char buf[16384];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      const size_t keep = std::min(size_t(n), cap - std::min(cap, dst.size()));
      dst.append(buf, keep);
      if (keep < size_t(n)) truncated = true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

void KillSession(pid_t pid, int uid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  KillUid(uid);
}

}  // namespace

void KillUid(int uid) {
  if (uid < 0 || geteuid() != 0) return;
  const pid_t pid = fork();
  if (pid == 0) {
    if (setresuid(uid_t(uid), uid_t(uid), uid_t(uid)) != 0) _exit(1);
    // Twice: a process forking during the first sweep is caught by the
    // second (its parent already had the kill pending).
    kill(-1, SIGKILL);
    kill(-1, SIGKILL);
    _exit(0);
  }
  if (pid > 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

std::string FindExecutable(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos)
    return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t end = dirs.find(':', pos);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(pos, end - pos);
    const std::string full = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st;
    if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(full.c_str(), X_OK) == 0)
      return full;
    pos = end + 1;
  }
  return "";
}

ChildResult RunChild(const ChildSpec& spec) {
  DLLM_ASSERT(!spec.argv.empty() && spec.argv[0].find('/') == 0);
  ChildResult r;
  std::vector<char*> argv = CStrings(spec.argv), envp = CStrings(spec.env);
  int out[2], err[2], fail[2];
  const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    r.error = StrCat("open /dev/null: ", std::strerror(errno));
    return r;
  }
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in);
    r.error = StrCat("pipe: ", std::strerror(errno));
    return r;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in), close(out[0]), close(out[1]);
    r.error = StrCat("pipe: ", std::strerror(errno));
    return r;
  }
  if (pipe2(fail, O_CLOEXEC) != 0) {
    close(in), close(out[0]), close(out[1]), close(err[0]), close(err[1]);
    r.error = StrCat("pipe: ", std::strerror(errno));
    return r;
  }
  const Timer timer;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0)
    ExecChild(spec, argv.data(), envp.data(), in, out[1], err[1], fail[1],
              parent);
  close(in), close(out[1]), close(err[1]), close(fail[1]);
  if (pid < 0) {
    close(out[0]), close(err[0]), close(fail[0]);
    r.error = StrCat("fork: ", std::strerror(errno));
    return r;
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);

  bool out_open = true, err_open = true, exited = false;
  int status = 0;
  double exited_at = 0;
  for (;;) {
    if (!exited) {
      const pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        exited = true;
        exited_at = timer.Seconds();
        r.seconds = exited_at;
        // Whatever it left behind goes now, so that the pipes close.
        KillSession(pid, spec.uid);
      }
    }
    if (!exited && timer.Seconds() >= spec.timeout_s) {
      r.timed_out = true;
      r.seconds = timer.Seconds();
      KillSession(pid, spec.uid);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      exited = true;
      exited_at = timer.Seconds();
    }
    // A grandchild outside our reach could hold a pipe open: stop reading a
    // moment after the exit whatever happens.
    if (exited && ((!out_open && !err_open) || timer.Seconds() > exited_at + 1))
      break;
    pollfd fds[2];
    nfds_t n = 0;
    if (out_open) fds[n++] = {out[0], POLLIN, 0};
    if (err_open) fds[n++] = {err[0], POLLIN, 0};
    const double left = spec.timeout_s - timer.Seconds();
    const int wait_ms =
        exited ? 20 : std::max(1, std::min(20, int(left * 1e3)));
    if (n == 0) {
      poll(nullptr, 0, wait_ms);
      continue;
    }
    if (poll(fds, n, wait_ms) <= 0) continue;
    if (out_open)
      out_open = Drain(out[0], r.out, spec.max_output, r.out_truncated);
    if (err_open)
      err_open = Drain(err[0], r.err, spec.max_output, r.err_truncated);
  }
  close(out[0]), close(err[0]);

  ChildFailure f{};
  const ssize_t got = read(fail[0], &f, sizeof(f));
  close(fail[0]);
  if (got == ssize_t(sizeof(f)) && f.stage >= 0 && f.stage < 8) {
    r.error = StrCat(kStages[f.stage],
                     " failed in the child: ", std::strerror(f.err));
    return r;
  }
  r.started = true;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

}  // namespace dllm::eval
