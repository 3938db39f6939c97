// Helpers shared by tests: temporary folders and error-message matching.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/rng.h"
#include "dllm/config.h"
#include "dllm/error.h"

namespace dllm::test {

// The tiny model shape the unit tests share: LLaDA (MHA) or Dream (GQA, QKV
// bias, shifted logits), 2 layers of width 32, a 50-token vocabulary with
// mask 49 and EOS 48.
inline ModelConfig TinyConfig(Arch arch, bool causal = false) {
  ModelConfig c;
  c.arch = arch;
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4,
  c.n_kv_heads = arch == Arch::kDream ? 2 : 4;
  c.head_dim = 8, c.d_ff = 48, c.vocab_size = 50, c.max_seq_len = 128;
  c.rope_theta = 10000, c.mask_token_id = 49, c.eos_token_id = 48;
  c.qkv_bias = arch == Arch::kDream;
  c.shift_logits = arch == Arch::kDream;
  c.causal = causal;
  return c;
}

// A fresh folder under /tmp, removed at destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/dllm_test_XXXXXX";
    const char* p = mkdtemp(tmpl);
    path_ = p ? p : "/tmp";
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const {
    return path_ + "/" + name;
  }

 private:
  std::string path_;
};

// n normal values times `scale`, reproducible from (seed, stream).
inline std::vector<float> RandomVector(size_t n, uint64_t seed, uint64_t stream,
                                       float scale = 1.0f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = scale * float(RandomNormal(seed, stream, i));
  return v;
}

struct CommandResult {
  int code;         // exit status (-1 if killed or not run)
  std::string out;  // stdout and stderr together
};

// Runs a shell command line, capturing both output streams.
inline CommandResult RunShell(const std::string& cmd) {
  CommandResult r{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

#ifdef DLLM_CLI_PATH
// Runs the dllm tool with `args`, as a user would.
inline CommandResult RunDllm(const std::string& args) {
  return RunShell(std::string(DLLM_CLI_PATH) + " " + args);
}
#endif

}  // namespace dllm::test

// Expects `stmt` to throw dllm::Error whose message contains `substr`.
#define EXPECT_DLLM_ERROR(stmt, substr)                                  \
  do {                                                                   \
    try {                                                                \
      stmt;                                                              \
      ADD_FAILURE() << "expected a dllm::Error containing '" << (substr) \
                    << "'";                                              \
    } catch (const ::dllm::Error& e) {                                   \
      EXPECT_NE(std::string(e.what()).find(substr), std::string::npos)   \
          << e.what();                                                   \
    }                                                                    \
  } while (0)
