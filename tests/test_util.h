// Helpers shared by tests: temporary folders and error-message matching.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "base/error.h"

namespace dllm::test {

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
