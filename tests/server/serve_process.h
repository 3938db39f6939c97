// A real `dllm serve` process for the server tests: started on a free
// loopback port (--port 0; the port is read from its start line, so there is
// no race for a port and no sleep), stopped with SIGTERM.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>

namespace dllm::test {

class ServeProcess {
 public:
  // `args` after `dllm serve`, e.g. "-m DIR --max-batch 1".
  explicit ServeProcess(const std::string& args) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      const std::string cmd = std::string("exec ") + DLLM_CLI_PATH +
                              " serve --port 0 --host 127.0.0.1 " + args;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
    // Read until the start line names the port (or the process dies).
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string seen;
    while (port_ == 0 && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) break;
      seen.append(buf, size_t(n));
      const size_t at = seen.find("on http://127.0.0.1:");
      if (at != std::string::npos) {
        const size_t start = at + 20;
        const size_t end = seen.find_first_not_of("0123456789", start);
        if (end != std::string::npos)
          port_ = std::stoi(seen.substr(start, end - start));
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      log_ = seen;
    }
    // Keeps draining its output, so a chatty server never blocks on a full
    // pipe.
    drain_ = std::thread([this] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd_, buf, sizeof(buf))) > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        log_.append(buf, size_t(n));
      }
    });
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (drain_.joinable()) drain_.join();
    if (fd_ >= 0) close(fd_);
  }
  int port() const { return port_; }  // 0 if it did not start
  std::string log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::string log_;
  std::thread drain_;
};

}  // namespace dllm::test
