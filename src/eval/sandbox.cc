#include "eval/sandbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "dllm/error.h"
#include "eval/child_process.h"

namespace dllm::eval {
namespace {

constexpr int64_t kTmpfsBytes = int64_t(64) << 20;
constexpr const char* kUidLockDir = "/tmp/dllm-sandbox-uids";

// The uid of one slot, held by an flock so that two harnesses on one machine
// (ctest runs tests in parallel processes) never share one: KillUid on a
// shared uid would kill the other's programs.
struct UidSlot {
  int uid = -1;
  int lock_fd = -1;
};

UidSlot ClaimUid(int base) {
  if (mkdir(kUidLockDir, 0700) != 0 && errno != EEXIST)
    Fail("sandbox: cannot create ", kUidLockDir, ": ", std::strerror(errno));
  struct stat st;
  // Root writes lock files here: refuse a folder someone else planted.
  DLLM_CHECK(lstat(kUidLockDir, &st) == 0 && S_ISDIR(st.st_mode) &&
                 st.st_uid == 0 && (st.st_mode & 022) == 0,
             "sandbox: ", kUidLockDir,
             " is not a folder owned by root and writable only by it; remove "
             "it");
  for (int uid = base; uid < base + 4096; ++uid) {
    const std::string path = StrCat(kUidLockDir, "/", uid, ".lock");
    const int fd =
        open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      KillUid(uid);  // strays of an earlier harness that was killed
      return {uid, fd};
    }
    close(fd);
  }
  Fail("sandbox: no free uid in ", base, "..", base + 4095, " (", kUidLockDir,
       ")");
}

std::string DefaultPython() {
  if (access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return FindExecutable("python3");
}

struct Probe {
  bool ok = false;
  std::string error;
};

}  // namespace

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kPassed:
      return "passed";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kCrashed:
      return "crashed";
    case Outcome::kError:
      return "error";
  }
  return "error";
}

std::string Isolation::Describe() const {
  return StrCat(level, ": ",
                network_blocked ? "no network" : "network reachable", ", ",
                filesystem_readonly ? "read-only / with a private /tmp"
                : own_uid           ? "file system protected by uid"
                                    : "file system writable as this user",
                ", ", own_uid ? "a uid per slot" : "this process's uid", ", ",
                pid_limit ? "process limit" : "no process limit");
}

struct Sandbox::Impl {
  SandboxOptions o;
  Isolation iso;
  std::string python, tool;  // tool: bwrap or unshare, "" for rlimits
  std::vector<UidSlot> uids;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<bool> busy;

  ~Impl() { ReleaseUids(); }
  void ReleaseUids() {
    for (const UidSlot& u : uids) {
      KillUid(u.uid);
      if (u.lock_fd >= 0) close(u.lock_fd);
    }
    uids.clear();
  }

  SandboxResult RunIn(const std::string& program, int uid);
};

SandboxResult Sandbox::Impl::RunIn(const std::string& program, int uid) {
  SandboxResult res;
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = StrCat(tmp && *tmp ? tmp : "/tmp", "/dllm-sandbox-XXXXXX");
  if (!mkdtemp(tmpl.data())) {
    res.error = StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno));
    return res;
  }
  const std::string dir = tmpl, file = dir + "/program.py";
  {
    FILE* f = std::fopen(file.c_str(), "wb");
    const bool ok = f && std::fwrite(program.data(), 1, program.size(), f) ==
                             program.size();
    if (f) std::fclose(f);
    if (!ok) {
      res.error = StrCat("cannot write ", file);
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      return res;
    }
  }
  chmod(file.c_str(), 0644);
  // The program's uid owns its folder (the working folder at the levels
  // without a tmpfs) and nothing else.
  if (uid >= 0 && chown(dir.c_str(), uid_t(uid), gid_t(uid)) != 0) {
    res.error = StrCat("chown ", dir, ": ", std::strerror(errno));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return res;
  }

  ChildSpec c;
  std::string work = dir;
  // In a pid namespace a shell is pid 1 and runs Python as its child: the
  // kernel drops the signals an init sends itself (os.kill(os.getpid(), ...)
  // would do nothing), and the shell reports a signal death as status 128+N.
  // bwrap's own init is not used (--as-pid-1): with it, each run leaves a
  // count against RLIMIT_NPROC that the kernel frees only later, and
  // back-to-back runs on one uid soon fail to fork.
  // The shell also sets RLIMIT_NPROC from inside the new user namespace,
  // where it counts only the processes of that namespace: a per-program
  // limit even without root (dash spells it -p, bash -u; no limit, no run).
  const std::string nproc = StrCat(o.max_processes);
  const std::vector<std::string> shell = {
      "/bin/sh", "-c",
      StrCat("{ ulimit -p ", nproc, " || ulimit -u ", nproc,
             "; } 2>/dev/null || exit 125; \"$0\" program.py; exit $?"),
      python};
  if (iso.level == "bwrap") {
    work = "/tmp";
    c.argv = {tool,
              "--unshare-all",
              "--as-pid-1",
              "--die-with-parent",
              "--new-session",
              "--ro-bind",
              "/",
              "/",
              "--dev",
              "/dev",
              "--proc",
              "/proc",
              "--size",
              StrCat(kTmpfsBytes),
              "--tmpfs",
              "/tmp",
              "--ro-bind",
              file,
              "/tmp/program.py",
              "--chdir",
              "/tmp",
              "--"};
    c.argv.insert(c.argv.end(), shell.begin(), shell.end());
  } else if (iso.level == "unshare") {
    c.argv = {tool,           "--user", "--map-root-user", "--net",
              "--pid",        "--ipc",  "--uts",           "--mount",
              "--mount-proc", "--fork", "--kill-child",    "--"};
    c.argv.insert(c.argv.end(), shell.begin(), shell.end());
  } else {
    c.argv = {python, "program.py"};
  }
  c.cwd = dir;
  c.env = {"PATH=/usr/local/bin:/usr/bin:/bin",
           "HOME=" + work,
           "TMPDIR=" + work,
           "LANG=C.UTF-8",
           "PYTHONDONTWRITEBYTECODE=1",
           "PYTHONIOENCODING=utf-8",
           "PYTHONHASHSEED=0"};
  c.uid = c.gid = uid;
  c.timeout_s = o.timeout_s;
  c.max_output = o.max_output;
  c.limits = {
      {RLIMIT_CPU, rlim_t(std::ceil(o.timeout_s)) + 1},
      {RLIMIT_FSIZE, rlim_t(o.file_bytes)},
      {RLIMIT_NOFILE, 256},
      {RLIMIT_CORE, 0},
  };
  if (o.memory_bytes > 0)
    c.limits.push_back({RLIMIT_AS, rlim_t(o.memory_bytes)});
  // The kernel ignores RLIMIT_NPROC for uid 0, and for any other uid it
  // counts every process of that uid: only a uid of our own makes it a
  // per-program limit.
  if (uid >= 0) c.limits.push_back({RLIMIT_NPROC, rlim_t(o.max_processes)});

  ChildResult r = RunChild(c);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);

  res.seconds = r.seconds;
  res.out = std::move(r.out), res.err = std::move(r.err);
  res.out_truncated = r.out_truncated, res.err_truncated = r.err_truncated;
  res.exit_code = r.exit_code;
  if (!r.started) {
    res.outcome = Outcome::kError;
    res.error = r.error;
  } else if (r.timed_out) {
    res.outcome = Outcome::kTimeout;
  } else if (r.signal) {
    res.outcome = Outcome::kCrashed;
    res.signal = r.signal;
  } else if (iso.level != "rlimits" && r.exit_code > 128 &&
             r.exit_code <= 128 + 64) {
    // bwrap and the shell report a program killed by signal N as exit
    // status 128+N.
    res.outcome = Outcome::kCrashed;
    res.signal = r.exit_code - 128;
  } else {
    res.outcome = r.exit_code == 0 ? Outcome::kPassed : Outcome::kFailed;
  }
  return res;
}

Sandbox::Sandbox(const SandboxOptions& o) : impl_(new Impl) {
  Impl& m = *impl_;
  m.o = o;
  DLLM_CHECK(o.slots >= 1, "sandbox: slots must be >= 1, got ", o.slots);
  DLLM_CHECK(o.timeout_s > 0, "sandbox: the timeout must be > 0 s, got ",
             o.timeout_s);
  static const char* kLevels[] = {"bwrap", "unshare", "rlimits"};
  bool known = o.level.empty();
  for (const char* l : kLevels) known = known || o.level == l;
  DLLM_CHECK(known, "sandbox: unknown isolation level '", o.level,
             "' (bwrap, unshare or rlimits)");
  m.python = o.python.empty() ? DefaultPython() : FindExecutable(o.python);
  DLLM_CHECK(!m.python.empty(), "sandbox: no Python interpreter ",
             o.python.empty() ? "(looked for /usr/bin/python3 and python3 in "
                                "PATH; Debian: apt-get install python3)"
                              : StrCat("'", o.python, "' found"));

  if (geteuid() == 0)
    for (int i = 0; i < o.slots; ++i) m.uids.push_back(ClaimUid(o.uid_base));
  m.busy.assign(size_t(o.slots), false);

  // Probe: the strongest level (or the one asked for) whose trivial program
  // runs. Cached per process, since every Sandbox would find the same.
  static std::mutex cache_mu;
  static std::map<std::string, Isolation> cache;
  const std::string key = StrCat(m.python, "|", o.level, "|", !m.uids.empty());
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(key);
    if (it != cache.end()) {
      m.iso = it->second;
      m.tool = m.iso.level == "rlimits" ? "" : FindExecutable(m.iso.level);
      if (!m.iso.own_uid) m.ReleaseUids();
      return;
    }
  }
  std::string why;
  for (bool with_uid : {true, false}) {
    if (with_uid && m.uids.empty()) continue;
    for (const char* level : kLevels) {
      if (!o.level.empty() && o.level != level) continue;
      const std::string tool =
          std::strcmp(level, "rlimits") ? FindExecutable(level) : "";
      if (std::strcmp(level, "rlimits") && tool.empty()) {
        why += StrCat("\n  ", level, ": not installed");
        continue;
      }
      m.iso = Isolation{};
      m.iso.level = level;
      m.tool = tool;
      const SandboxResult r =
          m.RunIn("import sys\nsys.exit(0)\n", with_uid ? m.uids[0].uid : -1);
      if (r.outcome == Outcome::kPassed) {
        m.iso.network_blocked = m.iso.level != "rlimits";
        m.iso.filesystem_readonly = m.iso.level == "bwrap";
        m.iso.own_uid = with_uid;
        m.iso.pid_limit = with_uid || m.iso.level != "rlimits";
        if (!with_uid) m.ReleaseUids();
        std::lock_guard<std::mutex> lock(cache_mu);
        cache[key] = m.iso;
        return;
      }
      why += StrCat("\n  ", level, with_uid ? " (own uid)" : "", ": ",
                    r.outcome == Outcome::kError
                        ? r.error
                        : StrCat(OutcomeName(r.outcome), " ", r.err));
    }
  }
  Fail("sandbox: cannot run ", m.python, " at any isolation level:", why);
}

Sandbox::~Sandbox() = default;

const Isolation& Sandbox::isolation() const { return impl_->iso; }
const SandboxOptions& Sandbox::options() const { return impl_->o; }
std::vector<int> Sandbox::uids() const {
  std::vector<int> v;
  for (const UidSlot& u : impl_->uids) v.push_back(u.uid);
  return v;
}

SandboxResult Sandbox::Run(const std::string& program) {
  Impl& m = *impl_;
  size_t slot = 0;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    m.cv.wait(lock, [&] {
      for (slot = 0; slot < m.busy.size(); ++slot)
        if (!m.busy[slot]) return true;
      return false;
    });
    m.busy[slot] = true;
  }
  SandboxResult r = m.RunIn(program, m.uids.empty() ? -1 : m.uids[slot].uid);
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.busy[slot] = false;
  }
  m.cv.notify_one();
  return r;
}

}  // namespace dllm::eval
