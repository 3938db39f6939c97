// The sandbox for model-written code: outcomes, limits, and escape attempts
// (network, files outside, fork bomb, memory, sleeping forever, killing the
// caller), each of which must fail inside the sandbox while this process
// carries on.
#include "eval/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "test_util.h"

namespace dllm::eval {
namespace {

bool HavePython() { return access("/usr/bin/python3", X_OK) == 0; }

#define REQUIRE_PYTHON()                                            \
  do {                                                              \
    if (!HavePython())                                              \
      GTEST_SKIP() << "/usr/bin/python3 is not installed (Debian: " \
                      "apt-get install python3)";                   \
  } while (0)

// DLLM_TEST_SANDBOX_LEVEL=unshare (or rlimits) runs the tests at a weaker
// level, to check the fallbacks on a machine where bwrap works.
SandboxOptions Options(double timeout_s = 10, int slots = 1) {
  SandboxOptions o;
  o.timeout_s = timeout_s;
  o.slots = slots;
  if (const char* level = std::getenv("DLLM_TEST_SANDBOX_LEVEL"))
    o.level = level;
  return o;
}

// Pids of the live (not zombie) processes whose real uid is one of `uids`.
std::vector<int> LiveProcessesOf(const std::vector<int>& uids) {
  std::vector<int> pids;
  const std::set<int> want(uids.begin(), uids.end());
  DIR* d = opendir("/proc");
  if (!d) return pids;
  while (dirent* e = readdir(d)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream f(StrCat("/proc/", pid, "/status"));
    std::string line;
    bool zombie = false;
    while (std::getline(f, line)) {
      if (line.rfind("State:", 0) == 0)
        zombie = line.find('Z') != std::string::npos ||
                 line.find('X') != std::string::npos;
      if (line.rfind("Uid:", 0) == 0) {
        std::istringstream is(line.substr(4));
        int uid = -1;
        is >> uid;
        if (want.count(uid) && !zombie) pids.push_back(pid);
        break;
      }
    }
  }
  closedir(d);
  return pids;
}

// SIGKILL is delivered at once but a process takes a moment to die (and
// longer with many siblings): true when none is left within 5 s.
bool AllGone(const std::vector<int>& uids) {
  for (int i = 0; i < 500; ++i) {
    if (LiveProcessesOf(uids).empty()) return true;
    usleep(10000);
  }
  return false;
}

TEST(Sandbox, ReportsItsIsolation) {
  REQUIRE_PYTHON();
  Sandbox box(Options());
  const Isolation& iso = box.isolation();
  std::printf("isolation: %s\n", iso.Describe().c_str());
  EXPECT_TRUE(iso.level == "bwrap" || iso.level == "unshare" ||
              iso.level == "rlimits")
      << iso.level;
  EXPECT_EQ(iso.network_blocked, iso.level != "rlimits");
  EXPECT_EQ(iso.filesystem_readonly, iso.level == "bwrap");
  EXPECT_EQ(iso.own_uid, geteuid() == 0 && !box.uids().empty());
  EXPECT_EQ(iso.pid_limit, iso.own_uid || iso.level != "rlimits");
}

TEST(Sandbox, CapturesOutputAndExitStatus) {
  REQUIRE_PYTHON();
  Sandbox box(Options());
  SandboxResult r =
      box.Run("import sys\nprint('hello')\nsys.stderr.write('oops\\n')\n");
  EXPECT_EQ(r.outcome, Outcome::kPassed) << r.err << r.error;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(r.err, "oops\n");

  r = box.Run("import sys\nsys.exit(3)\n");
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.exit_code, 3);

  r = box.Run("assert 1 + 1 == 3, 'arithmetic'\n");
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("AssertionError: arithmetic"), std::string::npos)
      << r.err;

  r = box.Run("def f(:\n");
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_NE(r.err.find("SyntaxError"), std::string::npos) << r.err;
}

TEST(Sandbox, SignalIsACrash) {
  REQUIRE_PYTHON();
  Sandbox box(Options());
  const SandboxResult r =
      box.Run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n");
  EXPECT_EQ(r.outcome, Outcome::kCrashed) << r.exit_code << r.err;
  EXPECT_EQ(r.signal, 11);
}

TEST(Sandbox, OutputIsBounded) {
  REQUIRE_PYTHON();
  SandboxOptions o = Options();
  o.max_output = 1000;
  Sandbox box(o);
  const SandboxResult r = box.Run(
      "import sys\nsys.stdout.write('x' * 5000000)\n"
      "sys.stderr.write('y' * 10)\n");
  EXPECT_EQ(r.outcome, Outcome::kPassed) << r.err;
  EXPECT_EQ(r.out, std::string(1000, 'x'));
  EXPECT_TRUE(r.out_truncated);
  EXPECT_EQ(r.err, "yyyyyyyyyy");
  EXPECT_FALSE(r.err_truncated);
}

TEST(Sandbox, OwnFolderIsWritable) {
  REQUIRE_PYTHON();
  Sandbox box(Options());
  const SandboxResult r = box.Run(
      "import os, tempfile\n"
      "open('scratch.txt', 'w').write('abc')\n"
      "assert open('scratch.txt').read() == 'abc'\n"
      "with tempfile.NamedTemporaryFile() as f:\n"
      "    f.write(b'x')\n");
  EXPECT_EQ(r.outcome, Outcome::kPassed) << r.err;
}

TEST(Sandbox, RunsSeveralAtOnce) {
  REQUIRE_PYTHON();
  Sandbox box(Options(10, 2));
  std::vector<SandboxResult> results(6);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] {
      results[i] =
          box.Run(StrCat("import time\ntime.sleep(0.2)\nprint(", i, " * 7)\n"));
    });
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].outcome, Outcome::kPassed) << results[i].err;
    EXPECT_EQ(results[i].out, StrCat(i * 7, "\n"));
  }
}

TEST(SandboxEscape, NetworkIsUnreachable) {
  REQUIRE_PYTHON();
  Sandbox box(Options());
  if (!box.isolation().network_blocked)
    GTEST_SKIP() << "no network namespace here (" << box.isolation().Describe()
                 << ")";
  // A listener of this process on loopback: a sandboxed program that can
  // reach it has network access.
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(s, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(s, 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  const SandboxResult r =
      box.Run(StrCat("import socket\n"
                     "c = socket.create_connection(('127.0.0.1', ",
                     port,
                     "), timeout=3)\n"
                     "c.sendall(b'escaped')\n"
                     "print('connected')\n"));
  EXPECT_EQ(r.outcome, Outcome::kFailed) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("Error"), std::string::npos) << r.err;
  const int conn = accept(s, nullptr, nullptr);
  EXPECT_LT(conn, 0) << "the sandboxed program reached a loopback listener";
  if (conn >= 0) close(conn);
  close(s);
}

TEST(SandboxEscape, CannotWriteOutside) {
  REQUIRE_PYTHON();
  Sandbox box(Options());
  if (!box.isolation().filesystem_readonly && !box.isolation().own_uid)
    GTEST_SKIP() << "the file system is only as protected as this user ("
                 << box.isolation().Describe() << ")";
  test::TempDir dir;  // mode 0700, owned by this process's user
  std::vector<std::string> targets = {
      dir / "escape.txt",
      std::string(DLLM_SOURCE_DIR) + "/sandbox_escape_test.txt"};
  // World-writable folders are protected only by the read-only bind.
  if (box.isolation().filesystem_readonly)
    targets.push_back("/var/tmp/dllm_sandbox_escape_test.txt");
  std::string program = "import sys\nwrote = []\n";
  for (const std::string& t : targets)
    program += StrCat(
        "try:\n"
        "    open('",
        t,
        "', 'w').write('escaped')\n"
        "    wrote.append('",
        t,
        "')\n"
        "except OSError as e:\n"
        "    print('refused:', e)\n");
  program += "sys.exit(0 if wrote else 1)\n";
  const SandboxResult r = box.Run(program);
  EXPECT_EQ(r.outcome, Outcome::kFailed) << r.out << r.err;
  for (const std::string& t : targets) {
    EXPECT_NE(access(t.c_str(), F_OK), 0) << t << " was written";
    std::remove(t.c_str());
  }
  // The program went on after each refusal.
  EXPECT_EQ(size_t(std::count(r.out.begin(), r.out.end(), '\n')),
            targets.size())
      << r.out;
}

TEST(SandboxEscape, ForkBombIsContained) {
  REQUIRE_PYTHON();
  SandboxOptions o = Options(3);
  o.max_processes = 32;
  Sandbox box(o);
  if (!box.isolation().pid_limit)
    GTEST_SKIP() << "no process limit in force (needs a user namespace or "
                    "root): "
                 << box.isolation().Describe();
  // First a bounded check that the limit holds: 200 sleeping children at
  // most. Only then the unbounded bomb, so that a broken limit cannot take
  // the machine down.
  SandboxResult r = box.Run(
      "import os, time\n"
      "n = 0\n"
      "for i in range(200):\n"
      "    try:\n"
      "        if os.fork() == 0:\n"
      "            time.sleep(30)\n"
      "            os._exit(0)\n"
      "        n += 1\n"
      "    except OSError:\n"
      "        break\n"
      "print(n)\n");
  ASSERT_EQ(r.outcome, Outcome::kPassed) << r.err;
  const int forked = std::atoi(r.out.c_str());
  ASSERT_GT(forked, 0) << r.out;
  ASSERT_LT(forked, 32) << "RLIMIT_NPROC is not enforced";
  // The sleeping children were killed with the program.
  if (!box.uids().empty()) {
    EXPECT_TRUE(AllGone(box.uids()));
  }

  r = box.Run(
      "import os\n"
      "while True:\n"
      "    try:\n"
      "        os.fork()\n"
      "    except OSError:\n"
      "        pass\n");
  EXPECT_EQ(r.outcome, Outcome::kTimeout) << r.err;
  EXPECT_LT(r.seconds, 3 + 3.0);
  if (!box.uids().empty()) {
    EXPECT_TRUE(AllGone(box.uids()))
        << "processes of the bomb outlived the sandbox";
  }
  // And the machine is still usable.
  r = box.Run("print(6 * 7)\n");
  EXPECT_EQ(r.outcome, Outcome::kPassed) << r.err;
  EXPECT_EQ(r.out, "42\n");
}

TEST(SandboxEscape, MemoryIsLimited) {
  REQUIRE_PYTHON();
  Sandbox box(Options());
  const SandboxResult r = box.Run(
      "x = bytearray(10 * 1024 ** 3)\n"
      "x[-1] = 1\n"
      "print('allocated')\n");
  EXPECT_EQ(r.outcome, Outcome::kFailed) << r.out << r.err;
  EXPECT_NE(r.err.find("MemoryError"), std::string::npos) << r.err;
}

TEST(SandboxEscape, SleepingForeverTimesOut) {
  REQUIRE_PYTHON();
  Sandbox box(Options(1));
  // The child ignores SIGTERM and hides in a new session.
  const SandboxResult r = box.Run(
      "import os, signal, time\n"
      "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
      "if os.fork() == 0:\n"
      "    os.setsid()\n"
      "    time.sleep(1e9)\n"
      "time.sleep(1e9)\n");
  EXPECT_EQ(r.outcome, Outcome::kTimeout);
  EXPECT_GE(r.seconds, 1.0);
  EXPECT_LT(r.seconds, 1 + 3.0);
  if (!box.uids().empty()) {
    EXPECT_TRUE(AllGone(box.uids()));
  }
}

TEST(SandboxEscape, CannotKillTheCaller) {
  REQUIRE_PYTHON();
  Sandbox box(Options());
  const Isolation& iso = box.isolation();
  if (iso.level == "rlimits" && !iso.own_uid)
    GTEST_SKIP() << "neither a pid namespace nor a uid of its own: "
                 << iso.Describe();
  const SandboxResult r =
      box.Run(StrCat("import os, signal\n"
                     "for pid in (os.getppid(), ",
                     getpid(),
                     ", 1):\n"
                     "    try:\n"
                     "        os.kill(pid, signal.SIGKILL)\n"
                     "    except OSError as e:\n"
                     "        print('kill', e.errno)\n"
                     "for pgid in (",
                     getpgrp(),
                     ", os.getpgid(os.getppid())):\n"
                     "    try:\n"
                     "        os.killpg(pgid, signal.SIGKILL)\n"
                     "    except OSError as e:\n"
                     "        print('killpg', e.errno)\n"
                     "os.kill(-1, signal.SIGKILL)\n"
                     "print('still here')\n"
                     "raise SystemExit(1)\n"));
  // Whatever the program managed inside its sandbox, it did not pass, and
  // this process is alive to run the next one.
  EXPECT_NE(r.outcome, Outcome::kPassed) << r.out << r.err;
  const SandboxResult next = box.Run("print('next')\n");
  EXPECT_EQ(next.outcome, Outcome::kPassed) << next.err;
  EXPECT_EQ(next.out, "next\n");
}

TEST(Sandbox, FallbackLevelsWork) {
  REQUIRE_PYTHON();
  for (const char* level : {"unshare", "rlimits"}) {
    SandboxOptions o = Options();
    o.level = level;
    std::unique_ptr<Sandbox> box;
    try {
      box = std::make_unique<Sandbox>(o);
    } catch (const Error& e) {
      std::printf("level %s unavailable here: %s\n", level, e.what());
      continue;
    }
    EXPECT_EQ(box->isolation().level, level);
    const SandboxResult r = box->Run("print(sum(range(10)))\n");
    EXPECT_EQ(r.outcome, Outcome::kPassed) << level << ": " << r.err;
    EXPECT_EQ(r.out, "45\n") << level;
    const SandboxResult t = box->Run("import sys\nsys.exit(4)\n");
    EXPECT_EQ(t.outcome, Outcome::kFailed) << level;
    EXPECT_EQ(t.exit_code, 4) << level;
  }
}

TEST(Sandbox, BadOptionsAreErrors) {
  SandboxOptions o = Options();
  o.level = "chroot";
  EXPECT_DLLM_ERROR(Sandbox{o}, "unknown isolation level 'chroot'");
  o = Options();
  o.python = "/nonexistent/python3";
  EXPECT_DLLM_ERROR(Sandbox{o}, "no Python interpreter");
  o = Options(0);
  EXPECT_DLLM_ERROR(Sandbox{o}, "timeout must be > 0");
}

}  // namespace
}  // namespace dllm::eval
