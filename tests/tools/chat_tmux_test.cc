// `dllm chat` tried as a person would: in a real terminal (tmux), type a
// question, read the answer and the statistics, type another, quit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "test_util.h"

namespace dllm {
namespace {

std::string Sh(const std::string& cmd) { return test::RunShell(cmd).out; }

int ShCode(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str());
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1))
    ++n;
  return n;
}

// Polls the pane until `pred` holds or ~20 s pass.
template <typename Pred>
std::string WaitFor(const std::string& session, Pred pred) {
  std::string pane;
  for (int i = 0; i < 200; ++i) {
    pane = Sh("tmux capture-pane -p -t " + session);
    if (pred(pane)) return pane;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "timed out waiting on the terminal; it shows:\n" << pane;
  return pane;
}

TEST(ChatTmux, TypeReadQuit) {
  if (ShCode("tmux -V") != 0) GTEST_SKIP() << "tmux is not installed";
  test::TempDir dir;
  const std::string cli = DLLM_CLI_PATH, model = dir / "m";
  // A tiny model with a tokenizer trained here and a ChatML template.
  {
    std::ofstream text(dir / "corpus.txt");
    for (int i = 0; i < 200; ++i)
      text << "hello there, how are you today? I am fine, thank you.\n";
  }
  ASSERT_EQ(ShCode(cli +
                   " init --layers 2 --d-model 32 --heads 4 --ffn 64 --vocab "
                   "300 --mask-id 3 --eos-id 1 -o " +
                   model),
            0);
  ASSERT_EQ(ShCode(cli +
                   " tokenizer train --vocab-size 300 --special "
                   "'<|endoftext|>,<|im_end|>,<|im_start|>,<|mask|>' " +
                   (dir / "corpus.txt") + " -o " + model + "/tokenizer.json"),
            0);
  {
    std::ofstream cfg(model + "/tokenizer_config.json");
    cfg << R"({"chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}", "eos_token": "<|im_end|>"})";
  }
  const std::string session = "dllm_chat_test_" + std::to_string(getpid());
  ASSERT_EQ(ShCode("tmux new-session -d -s " + session + " -x 120 -y 40 \"" +
                   cli + " chat -m " + model +
                   " --gen-length 16 --block-length 8 --steps 16; echo "
                   "CHAT-EXITED-$?; sleep 30\""),
            0);
  std::string pane = WaitFor(session, [](const std::string& p) {
    return p.find("\n>") != std::string::npos;  // capture-pane trims the space
  });
  EXPECT_NE(pane.find("dllm chat:"), std::string::npos) << pane;

  ShCode("tmux send-keys -t " + session + " 'hello there' Enter");
  pane = WaitFor(session, [](const std::string& p) {
    return p.find("forward passes") != std::string::npos;
  });
  EXPECT_NE(pane.find("> hello there"), std::string::npos) << pane;
  EXPECT_NE(pane.find("tokens, "), std::string::npos) << pane;

  // A second turn goes through the history; then /quit ends the program.
  ShCode("tmux send-keys -t " + session + " 'and you?' Enter");
  pane = WaitFor(session, [](const std::string& p) {
    return Count(p, "forward passes") >= 2;
  });
  EXPECT_EQ(Count(pane, "forward passes"), 2u) << pane;
  ShCode("tmux send-keys -t " + session + " '/quit' Enter");
  pane = WaitFor(session, [](const std::string& p) {
    return p.find("CHAT-EXITED-") != std::string::npos;
  });
  EXPECT_NE(pane.find("CHAT-EXITED-0"), std::string::npos) << pane;
  ShCode("tmux kill-session -t " + session);
}

// Line editing as a person uses it on the shipped model (which ships a
// play-style chat template): the up arrow recalls the last line, a long
// conversation drops its oldest turns rather than failing, a stop string
// ends the answer, and Ctrl-C at the prompt leaves.
TEST(ChatTmux, HistoryContextAndCtrlC) {
  if (ShCode("tmux -V") != 0) GTEST_SKIP() << "tmux is not installed";
  const std::string cli = DLLM_CLI_PATH;
  const std::string model =
      std::string(DLLM_SOURCE_DIR) + "/models/shakespeare-ar";
  const std::string session = "dllm_chat_keys_" + std::to_string(getpid());
  // 256-token context: 200 new tokens leave room for about one turn.
  ASSERT_EQ(
      ShCode("tmux new-session -d -s " + session + " -x 200 -y 50 \"" + cli +
             " chat -m " + model +
             " --gen-length 200 --temperature 0 --stop '\\\\n\\\\n'; echo "
             "CHAT-EXITED-$?; sleep 30\""),
      0);
  WaitFor(session, [](const std::string& p) {
    return p.find("\n>") != std::string::npos;
  });
  ShCode("tmux send-keys -t " + session +
         " 'What news from Rome, my lord?' Enter");
  std::string pane = WaitFor(session, [](const std::string& p) {
    return Count(p, "forward passes") >= 1;
  });
  // The up arrow brings the question back; Enter sends it again.
  ShCode("tmux send-keys -t " + session + " Up Enter");
  pane = WaitFor(session, [](const std::string& p) {
    return Count(p, "forward passes") >= 2;
  });
  EXPECT_EQ(Count(pane, "> What news from Rome, my lord?"), 2u) << pane;
  EXPECT_EQ(pane.find("[A"), std::string::npos) << pane;  // no raw escapes
  // The second turn did not fit beside the first: the oldest went.
  EXPECT_NE(pane.find("(dropped the"), std::string::npos) << pane;
  // Ctrl-C at the prompt leaves, with status 0.
  ShCode("tmux send-keys -t " + session + " C-c");
  pane = WaitFor(session, [](const std::string& p) {
    return p.find("CHAT-EXITED-") != std::string::npos;
  });
  EXPECT_NE(pane.find("CHAT-EXITED-0"), std::string::npos) << pane;
  ShCode("tmux kill-session -t " + session);
}

}  // namespace
}  // namespace dllm
