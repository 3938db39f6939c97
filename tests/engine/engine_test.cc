// The engine layer: the option table (one declaration feeds the CLI, JSON and
// validation), loading a model folder with its tokenizer, and committed-prefix
// streaming.
#include "dllm/engine.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dllm/generate.h"
#include "dllm/generate_options.h"
#include "dllm/prefix_stream.h"
#include "test_util.h"

namespace dllm {
namespace {

const std::string kModel =
    std::string(DLLM_SOURCE_DIR) + "/models/shakespeare-mdm";

TEST(GenerateOptionTable, EveryEntryRoundTripsThroughText) {
  GenerateOptions o;
  o.gen_length = 48, o.steps = 12, o.temperature = 0.7, o.top_k = 5;
  o.order = Order::kEntropy, o.schedule = Schedule::kThreshold;
  o.stop_at_eos = false, o.ban_eos = true, o.seed = 123456789012345ull;
  for (const GenerateOptionSpec& s : GenerateOptionSpecs()) {
    GenerateOptions copy;
    s.set(s, copy, s.get(o));
    EXPECT_EQ(s.get(copy), s.get(o)) << s.name;
    EXPECT_EQ(FindGenerateOption(s.name), &s);
  }
  EXPECT_EQ(FindGenerateOption("gen_length"), FindGenerateOption("gen-length"));
  EXPECT_EQ(FindGenerateOption("frobnicate"), nullptr);
}

TEST(GenerateOptionTable, ImplicationsAndExplicitChoices) {
  GenerateOptions o;
  ApplyGenerateOptions(o, {{"gen-length", "32"}});
  EXPECT_EQ(o.gen_length, 32);
  EXPECT_EQ(o.steps, 32);  // steps follow the gen length
  ApplyGenerateOptions(o, {{"gen-length", "64"}, {"steps", "16"}});
  EXPECT_EQ(o.steps, 16);
  ApplyGenerateOptions(o, {{"threshold", "0.8"}});
  EXPECT_EQ(o.schedule, Schedule::kThreshold);
  EXPECT_DOUBLE_EQ(o.threshold, 0.8);
  ApplyGenerateOptions(o, {{"gamma", "0.1"}, {"schedule", "blocks"}});
  EXPECT_EQ(o.schedule, Schedule::kEvenBlocks);  // the explicit one wins
  ApplyGenerateOptions(o, {{"no-early-stop", "true"}, {"sampler", "random"}});
  EXPECT_FALSE(o.stop_at_eos);
  EXPECT_EQ(o.order, Order::kRandom);
}

TEST(GenerateOptionTable, BadValuesNameTheOption) {
  GenerateOptions o;
  EXPECT_DLLM_ERROR(ApplyGenerateOptions(o, {{"steps", "ten"}}),
                    "option --steps: expected an integer, got 'ten'");
  EXPECT_DLLM_ERROR(ApplyGenerateOptions(o, {{"top-p", "1.5"}}),
                    "option --top-p: 1.5 is out of range [0, 1]");
  EXPECT_DLLM_ERROR(ApplyGenerateOptions(o, {{"temperature", "nan"}}),
                    "option --temperature: expected a finite number");
  EXPECT_DLLM_ERROR(ApplyGenerateOptions(o, {{"gen-length", "0"}}),
                    "option --gen-length: 0 is out of range");
  EXPECT_DLLM_ERROR(ApplyGenerateOptions(o, {{"sampler", "best"}}),
                    "unknown sampler 'best'");
  EXPECT_DLLM_ERROR(ApplyGenerateOptions(o, {{"frobnicate", "1"}}),
                    "unknown generation option 'frobnicate'");
}

TEST(GenerateOptionTable, Json) {
  GenerateOptions o;
  ApplyGenerateOptionsJson(
      o,
      R"({"gen_length": 24, "temperature": 0.5, "sampler": "entropy",
          "ban_eos": true, "model": "x"})",
      /*ignore_unknown=*/true);
  EXPECT_EQ(o.gen_length, 24);
  EXPECT_EQ(o.steps, 24);
  EXPECT_DOUBLE_EQ(o.temperature, 0.5);
  EXPECT_EQ(o.order, Order::kEntropy);
  EXPECT_TRUE(o.ban_eos);
  EXPECT_DLLM_ERROR(ApplyGenerateOptionsJson(o, R"({"model": "x"})", false),
                    "unknown generation option 'model'");
  EXPECT_DLLM_ERROR(ApplyGenerateOptionsJson(o, R"({"steps": "8"})", true),
                    "field steps: expected an integer");
  EXPECT_DLLM_ERROR(ApplyGenerateOptionsJson(o, R"({"steps": 2.5})", true),
                    "field steps: expected an integer");
  EXPECT_DLLM_ERROR(ApplyGenerateOptionsJson(o, "[1]", true),
                    "expected a JSON object");
  EXPECT_DLLM_ERROR(ApplyGenerateOptionsJson(o, "{", true),
                    "expected a JSON object");
  // And back: the JSON of the options names every entry of the table.
  const std::string j = GenerateOptionsToJson(o);
  EXPECT_NE(j.find("\"gen_length\":24"), std::string::npos) << j;
  EXPECT_NE(j.find("\"sampler\":\"entropy\""), std::string::npos) << j;
}

TEST(Engine, LoadsModelTokenizerAndDefaults) {
  auto e = Engine::Load(kModel);
  ASSERT_TRUE(e->tokenizer().loaded());
  EXPECT_EQ(e->config().arch, Arch::kLLaDA);
  ASSERT_FALSE(e->eos_ids().empty());
  EXPECT_EQ(e->eos_ids()[0], e->config().eos_token_id);
  GenerateOptions o = e->DefaultOptions();
  EXPECT_EQ(o.order, Order::kLowConfidence);
  EXPECT_EQ(o.eos_ids, e->eos_ids());
  std::vector<int32_t> ids = e->Encode("ROMEO:", true, "the prompt");
  EXPECT_EQ(e->Decode(ids), "ROMEO:");
}

TEST(Engine, ClearErrorsForWhatAFolderLacks) {
  test::TempDir d;
  ASSERT_EQ(test::RunShell(std::string(DLLM_CLI_PATH) + " init -o " + d.path() +
                           " --preset tiny")
                .code,
            0);
  auto e = Engine::Load(d.path());
  EXPECT_FALSE(e->tokenizer().loaded());
  EXPECT_DLLM_ERROR(e->Encode("x", true, "-p TEXT"),
                    "no tokenizer.json, so -p TEXT cannot be encoded");
  EXPECT_DLLM_ERROR(e->RequireChat(), "chat needs tokenizer.json");
  EXPECT_DLLM_ERROR(Engine::Load(d / "missing"), "config.json");
}

// The streamed pieces concatenate to exactly the final text.
TEST(PrefixStreamer, PiecesConcatenateToTheResult) {
  auto e = Engine::Load(kModel);
  GenerateOptions o = e->DefaultOptions();
  ApplyGenerateOptions(o, {{"gen-length", "32"},
                           {"block-length", "8"},
                           {"temperature", "0.7"},
                           {"seed", "3"}});
  struct State {
    PrefixStreamer* s;
    std::string text;
    int pieces = 0;
  };
  PrefixStreamer stream(e->tokenizer(), o.eos_ids);
  State st{&stream, "", 0};
  auto cb = [](const StepInfo& info, void* user) {
    auto* s = static_cast<State*>(user);
    std::string piece = s->s->OnStep((*info.canvases)[0]);
    s->pieces += !piece.empty();
    s->text += piece;
    return true;
  };
  auto r =
      Generate(e->model(), {e->Encode("ROMEO:", true, "prompt")}, o, cb, &st);
  st.text += stream.Finish(r[0].tokens);
  EXPECT_EQ(st.text, e->Decode(r[0].tokens));
  EXPECT_GT(st.pieces, 1);  // it streamed, rather than all at the end
}

}  // namespace
}  // namespace dllm

namespace dllm {
namespace {

// The README's library example (compiled from README.md by the build) runs,
// and its two halves (Generate() and the Generator stepper with streaming)
// print the same text.
TEST(ReadmeExample, RunsAndBothWaysAgree) {
  test::CommandResult r = test::RunShell(std::string(DLLM_README_EXAMPLE_PATH) +
                                         " " + kModel + " 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  // "ROMEO:<text>\n" twice (the text may hold newlines of its own).
  ASSERT_EQ(r.out.size() % 2, 0u) << r.out;
  const std::string first = r.out.substr(0, r.out.size() / 2);
  const std::string second = r.out.substr(r.out.size() / 2);
  EXPECT_EQ(first.rfind("ROMEO:", 0), 0u) << r.out;
  EXPECT_GT(first.size(), 16u) << r.out;
  EXPECT_EQ(second, first) << r.out;
}

}  // namespace
}  // namespace dllm

namespace dllm {
namespace {

TEST(GenerationConfig, HuggingFaceDreamAndOurFields) {
  GenerateOptions o;
  o.eos_ids = {0};
  ApplyGenerationConfig(o, R"({
      "max_new_tokens": 48, "do_sample": true, "temperature": 0.2,
      "top_p": 0.95, "top_k": 20, "alg": "maskgit_plus", "alg_temp": 0.5,
      "steps": 24, "eos_token_id": [7, 0], "pad_token_id": 3,
      "transformers_version": "4.46.2", "block_length": 8,
      "schedule": "timesteps"})",
                        "g.json", 100);
  EXPECT_EQ(o.gen_length, 48);
  EXPECT_EQ(o.steps, 24);
  EXPECT_DOUBLE_EQ(o.temperature, 0.2);
  EXPECT_DOUBLE_EQ(o.top_p, 0.95);
  EXPECT_EQ(o.top_k, 20);
  EXPECT_EQ(o.order, Order::kMaskgitPlus);
  EXPECT_DOUBLE_EQ(o.alg_temp, 0.5);
  EXPECT_EQ(o.block_length, 8);
  EXPECT_EQ(o.schedule, Schedule::kTimesteps);
  EXPECT_EQ(o.eos_ids, (std::vector<int32_t>{0, 7}));
  // Greedy when sampling is off, whatever the temperature.
  ApplyGenerationConfig(o, R"({"do_sample": false, "temperature": 0.9})",
                        "g.json", 100);
  EXPECT_EQ(o.temperature, 0.0);
  EXPECT_DLLM_ERROR(ApplyGenerationConfig(o, "[]", "g.json", 100),
                    "g.json: expected a JSON object");
  EXPECT_DLLM_ERROR(
      ApplyGenerationConfig(o, R"({"steps": "many"})", "g.json", 100),
      "g.json: field steps: expected an integer");
  EXPECT_DLLM_ERROR(
      ApplyGenerationConfig(o, R"({"eos_token_id": 100})", "g.json", 100),
      "g.json: field eos_token_id: 100 is not a token id");
  EXPECT_DLLM_ERROR(
      ApplyGenerationConfig(o, R"({"alg": "best"})", "g.json", 100),
      "g.json: unknown sampler 'best'");
}

// The shipped models carry their own defaults, so a run with no options
// samples (greedy decoding of the small diffusion model degenerates).
TEST(GenerationConfig, ShippedModelsRunWellWithNoOptions) {
  auto e = Engine::Load(kModel);
  const GenerateOptions& o = e->DefaultOptions();
  EXPECT_GT(o.temperature, 0.0);
  EXPECT_EQ(o.gen_length, 64);
  EXPECT_EQ(o.block_length, 8);
  EXPECT_EQ(o.steps, 32);
}

}  // namespace
}  // namespace dllm

namespace dllm {
namespace {

// Reveals `ids` one token per step, left to right, and returns the pieces.
std::vector<std::string> StreamOneByOne(PrefixStreamer& s,
                                        const std::vector<int32_t>& ids) {
  Canvas c;
  c.ids = ids;
  c.masked.assign(ids.size(), 1);
  c.prompt_len = 0;
  c.gen_end = int(ids.size());
  std::vector<std::string> pieces;
  for (size_t i = 0; i < ids.size(); ++i) {
    c.masked[i] = 0;
    pieces.push_back(s.OnStep(c));
  }
  pieces.push_back(s.Finish(ids));
  return pieces;
}

TEST(PrefixStreamer, StopStringsAreCutAndNeverHalfShown) {
  auto e = Engine::Load(kModel);
  const std::string text = "ROMEO:\nI know it well.\n\nJULIET:\nNo, sir.";
  const std::vector<int32_t> ids = e->Encode(text, false, "text");
  {
    PrefixStreamer s(e->tokenizer(), {}, {"\n\nJULIET"});
    std::string got;
    for (const std::string& p : StreamOneByOne(s, ids)) {
      got += p;
      // Never more than the text before the stop, not even for a step.
      EXPECT_EQ(std::string("ROMEO:\nI know it well.").rfind(got, 0), 0u)
          << got;
    }
    EXPECT_EQ(got, "ROMEO:\nI know it well.");
    EXPECT_TRUE(s.stopped());
    EXPECT_EQ(s.text(), got);
  }
  {
    PrefixStreamer s(e->tokenizer(), {}, {"zzz", "sir"});
    std::string got;
    for (const std::string& p : StreamOneByOne(s, ids)) got += p;
    EXPECT_EQ(got, "ROMEO:\nI know it well.\n\nJULIET:\nNo, ");
  }
  {
    PrefixStreamer s(e->tokenizer(), {}, {});
    std::string got;
    for (const std::string& p : StreamOneByOne(s, ids)) got += p;
    EXPECT_EQ(got, text);
  }
  {
    // An EOS ends the text like a stop string.
    std::vector<int32_t> with_eos = ids;
    with_eos.insert(with_eos.begin() + 3, e->eos_ids()[0]);
    PrefixStreamer s(e->tokenizer(), e->eos_ids(), {});
    std::string got;
    for (const std::string& p : StreamOneByOne(s, with_eos)) got += p;
    EXPECT_EQ(got, e->Decode({ids.begin(), ids.begin() + 3}));
    EXPECT_TRUE(s.stopped());
  }
}

}  // namespace
}  // namespace dllm
