// The page at `/` in a real browser: Debian's chromium, headless, driven
// over the DevTools protocol by scripts/server/web_page_test.js (type a
// prompt, click Generate, watch the canvas lose its masks, read the answer
// and its tokens/s; a chat turn; an error). Skipped when node or chromium
// is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "serve_process.h"
#include "test_util.h"

namespace dllm {
namespace {

std::string Chromium() {
  const char* env = std::getenv("CHROMIUM");
  return env && *env ? env : "/usr/bin/chromium";
}

// A tiny random model (2 layers of width 32) with the shipped models'
// tokenizer and chat template: fast, and every id it can choose decodes.
std::string TinyModelWithTokenizer(const test::TempDir& dir) {
  const std::string m = dir / "m";
  const std::string shipped =
      std::string(DLLM_SOURCE_DIR) + "/models/shakespeare-mdm";
  test::CommandResult r = test::RunDllm(
      "init --layers 2 --d-model 32 --heads 4 --ffn 64 --vocab 2048 --ctx 256 "
      "--mask-id 1 --eos-id 0 -o " +
      m);
  EXPECT_EQ(r.code, 0) << r.out;
  r = test::RunShell("cp " + shipped + "/tokenizer.json " + shipped +
                     "/tokenizer_config.json " + m + "/");
  EXPECT_EQ(r.code, 0) << r.out;
  return m;
}

TEST(ServeWebPage, TypeAPromptAndWatchTheCanvas) {
  if (test::RunShell("node --version").code != 0)
    GTEST_SKIP() << "node is not installed";
  if (access(Chromium().c_str(), X_OK) != 0)
    GTEST_SKIP() << Chromium()
                 << " is absent: apt-get install chromium (scripts/setup.sh "
                    "installs it), or set CHROMIUM";
  test::TempDir dir;
  const std::string model = TinyModelWithTokenizer(dir);
  test::ServeProcess s("-m " + model + " --quiet -t 1");
  ASSERT_GT(s.port(), 0) << s.log();
  test::CommandResult r = test::RunShell(
      "CHROMIUM=" + Chromium() + " timeout 170 node " + DLLM_SOURCE_DIR +
      "/scripts/server/web_page_test.js http://127.0.0.1:" +
      std::to_string(s.port()));
  ASSERT_EQ(r.code, 0) << r.out << "\nserver:\n" << s.log();
  EXPECT_NE(r.out.find("web page: all checks passed"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace dllm
