// The KV-cached forward (Model::ForwardCached) against the plain forward:
// with every cached key current, running only some positions gives the rows
// of the whole-sequence forward, for bidirectional (LLaDA, Dream with GQA and
// bias) and causal models, random and golden.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "base/thread_pool.h"
#include "dllm/model.h"
#include "test_util.h"

namespace dllm {
namespace {

using test::TinyConfig;

std::vector<float> Full(Model& m, const std::vector<int32_t>& ids) {
  std::vector<float> out(ids.size() * size_t(m.config().vocab_size));
  ForwardBatch b;
  b.T = int64_t(ids.size()), b.ids = ids.data();
  m.Forward(b, out.data());
  return out;
}

// Largest difference between rows [p0, p0 + n) of `full` and `part` (n rows).
double MaxErr(const std::vector<float>& full, const float* part, int64_t p0,
              int64_t n, int V) {
  double e = 0;
  for (int64_t i = 0; i < n * V; ++i)
    e = std::max(e, double(std::fabs(full[size_t(p0 * V + i)] - part[i])));
  return e;
}

std::vector<int32_t> RandomIds(int n, int V, uint64_t seed) {
  std::vector<int32_t> ids;
  uint64_t x = seed * 2654435761u + 1;
  for (int i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    ids.push_back(int32_t((x >> 33) % uint64_t(V)));
  }
  return ids;
}

struct Case {
  Arch arch;
  bool causal;
  const char* dtype;
};

class CachedForward : public ::testing::TestWithParam<Case> {};

TEST_P(CachedForward, PiecesEqualTheWholeSequence) {
  const Case k = GetParam();
  test::TempDir dir;
  ModelConfig c = TinyConfig(k.arch, k.causal);
  InitRandomModel(c, dir.path(), k.dtype, 11, 0.2f);
  auto m = Model::Load(dir.path());
  const int V = c.vocab_size, T = 19;
  const std::vector<int32_t> ids = RandomIds(T, V, 3);
  const std::vector<float> full = Full(*m, ids);
  for (int threads : {1, 2}) {
    SetThreads(threads);
    for (int p0 : {1, 7, 16}) {
      KVCache cache(m->config(), 24);
      std::vector<float> got(size_t(T) * size_t(V));
      if (k.causal) {
        // Prefill a prefix, then the rest in pieces of 1, 3, ... tokens, as
        // AR decoding and block decoding do.
        CachedRun pre{&cache, ids.data(), 0, p0};
        m->ForwardCached(&pre, 1, nullptr, -1, got.data());
        EXPECT_LT(MaxErr(full, got.data(), 0, p0, V), 1e-5) << p0;
        for (int64_t at = p0, len = 1; at < T; at += len, len += 2) {
          len = std::min<int64_t>(len, T - at);
          CachedRun run{&cache, ids.data() + at, at, len};
          m->ForwardCached(&run, 1, nullptr, -1, got.data());
          EXPECT_LT(MaxErr(full, got.data(), at, len, V), 1e-5)
              << "causal p0=" << p0 << " at=" << at << " threads=" << threads;
        }
      } else {
        // Bidirectional: every key depends on the whole sequence, so the
        // cache is filled by a forward of all of it; then a range alone
        // (the current block: dual cache) and a range to the end (prefix
        // cache) read the other keys from the cache.
        CachedRun all{&cache, ids.data(), 0, T};
        m->ForwardCached(&all, 1, nullptr, -1, got.data());
        EXPECT_LT(MaxErr(full, got.data(), 0, T, V), 1e-5);
        for (int64_t n : {int64_t(1), int64_t(3), int64_t(T - p0)}) {
          CachedRun run{&cache, ids.data() + p0, p0, n, T};
          m->ForwardCached(&run, 1, nullptr, -1, got.data());
          EXPECT_LT(MaxErr(full, got.data(), p0, n, V), 1e-5)
              << "p0=" << p0 << " n=" << n << " threads=" << threads;
        }
      }
    }
  }
  SetThreads(0);
}

// Several sequences in one call (the batched matmuls), each with its own
// cache and range, and only some rows asked for: the same logits as alone.
TEST_P(CachedForward, BatchedRunsEqualRunsAlone) {
  const Case k = GetParam();
  test::TempDir dir;
  ModelConfig c = TinyConfig(k.arch, k.causal);
  InitRandomModel(c, dir.path(), k.dtype, 5, 0.2f);
  auto m = Model::Load(dir.path());
  const int V = c.vocab_size;
  const std::vector<int32_t> a = RandomIds(13, V, 1), b = RandomIds(9, V, 2);
  const std::vector<float> fa = Full(*m, a), fb = Full(*m, b);
  KVCache ca(m->config(), 13), cb(m->config(), 16);
  // Fill both caches in one call; then run a's [5, 8) and b's [8, 9).
  CachedRun fill[2] = {{&ca, a.data(), 0, 13}, {&cb, b.data(), 0, 9}};
  std::vector<float> got(22 * size_t(V));
  m->ForwardCached(fill, 2, nullptr, -1, got.data());
  EXPECT_LT(MaxErr(fa, got.data(), 0, 13, V), 1e-5);
  EXPECT_LT(MaxErr(fb, got.data() + 13 * V, 0, 9, V), 1e-5);
  CachedRun step[2] = {{&ca, a.data() + 5, 5, 3, k.causal ? 0 : 13},
                       {&cb, b.data() + 8, 8, 1}};
  const std::vector<int32_t> rows = {3, 1};  // b's row, then a's middle one
  std::vector<float> two(2 * size_t(V));
  m->ForwardCached(step, 2, rows.data(), 2, two.data());
  EXPECT_LT(MaxErr(fb, two.data(), 8, 1, V), 1e-5);
  EXPECT_LT(MaxErr(fa, two.data() + V, 6, 1, V), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Models, CachedForward,
                         ::testing::Values(Case{Arch::kLLaDA, false, "F32"},
                                           Case{Arch::kDream, false, "F32"},
                                           Case{Arch::kLLaDA, true, "F32"},
                                           Case{Arch::kDream, true, "BF16"},
                                           Case{Arch::kLLaDA, false, "BF16"}));

// A bidirectional prefix declared alone (key_end = its end) is the forward of
// that prefix by itself.
TEST(CachedForward, DeclaredKeysBoundTheAttention) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kLLaDA, false);
  InitRandomModel(c, dir.path(), "F32", 2, 0.2f);
  auto m = Model::Load(dir.path());
  const std::vector<int32_t> ids = RandomIds(10, c.vocab_size, 4);
  const std::vector<int32_t> head(ids.begin(), ids.begin() + 6);
  const std::vector<float> want = Full(*m, head);
  KVCache cache(m->config(), 10);
  CachedRun run{&cache, ids.data(), 0, 10};
  std::vector<float> got(10 * size_t(c.vocab_size));
  m->ForwardCached(&run, 1, nullptr, -1, got.data());  // every key written
  // The cache now holds keys [6, 10) too; a run of [0, 6) that declares
  // only its own keys must not see them.
  CachedRun prefix{&cache, ids.data(), 0, 6};
  m->ForwardCached(&prefix, 1, nullptr, -1, got.data());
  EXPECT_LT(MaxErr(want, got.data(), 0, 6, c.vocab_size), 1e-5);
}

// Block-causal models (block diffusion): the keys of finished blocks never
// change, so prefilling whole blocks and then running one block at a time
// against the cache gives the whole-sequence rows, as for AR models.
TEST(CachedForward, BlockCausalBlocksOneAtATime) {
  for (Arch arch : {Arch::kLLaDA, Arch::kDream}) {
    test::TempDir dir;
    ModelConfig c = TinyConfig(arch, false);
    c.block_size = 4;
    InitRandomModel(c, dir.path(), "F32", 6, 0.2f);
    auto m = Model::Load(dir.path());
    ASSERT_EQ(m->config().block_size, 4);
    const int V = c.vocab_size, T = 19;
    const std::vector<int32_t> ids = RandomIds(T, V, 8);
    const std::vector<float> full = Full(*m, ids);
    KVCache cache(m->config(), T);
    std::vector<float> got(size_t(T) * size_t(V));
    CachedRun pre{&cache, ids.data(), 0, 8};
    m->ForwardCached(&pre, 1, nullptr, -1, got.data());
    EXPECT_LT(MaxErr(full, got.data(), 0, 8, V), 1e-5);
    for (int64_t at = 8; at < T; at += 4) {
      const int64_t len = std::min<int64_t>(4, T - at);
      CachedRun run{&cache, ids.data() + at, at, len};
      m->ForwardCached(&run, 1, nullptr, -1, got.data());
      EXPECT_LT(MaxErr(full, got.data(), at, len, V), 1e-5)
          << ArchName(arch) << " block at " << at;
    }
  }
}

TEST(CachedForward, RejectsBadRuns) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kLLaDA, false);
  InitRandomModel(c, dir.path(), "F32", 2, 0.2f);
  auto m = Model::Load(dir.path());
  const std::vector<int32_t> ids = {1, 2, 3, 4};
  std::vector<float> out(4 * size_t(c.vocab_size));
  KVCache small(m->config(), 3);
  CachedRun over{&small, ids.data(), 0, 4};
  EXPECT_DLLM_ERROR(m->ForwardCached(&over, 1, nullptr, -1, out.data()),
                    "outside its cache of 3");
  KVCache cache(m->config(), 8);
  CachedRun short_keys{&cache, ids.data(), 2, 2, 3};
  EXPECT_DLLM_ERROR(m->ForwardCached(&short_keys, 1, nullptr, -1, out.data()),
                    "must cover its positions");
  ModelConfig other = c;
  other.n_layers = 3;
  KVCache foreign(other, 8);
  CachedRun bad{&foreign, ids.data(), 0, 4};
  EXPECT_DLLM_ERROR(m->ForwardCached(&bad, 1, nullptr, -1, out.data()),
                    "another model");
  const std::vector<int32_t> oov = {1, 99};
  CachedRun o{&cache, oov.data(), 0, 2};
  EXPECT_DLLM_ERROR(m->ForwardCached(&o, 1, nullptr, -1, out.data()),
                    "outside the vocabulary");
}

// Golden models: the cached forward of the whole sequence matches the
// reference's logits, and ranges read from the cache match the whole.
class GoldenCached : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenCached, MatchesReference) {
  const std::string dir =
      std::string(DLLM_SOURCE_DIR) + "/tests/golden/" + GetParam();
  auto golden = nlohmann::json::parse(ReadFileToString(dir + "/golden.json"));
  auto model = Model::Load(dir);
  const int V = model->config().vocab_size;
  for (const auto& c : golden["cases"]) {
    std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    const int64_t T = int64_t(ids.size());
    const auto& want = c["logits"];
    KVCache cache(model->config(), T);
    CachedRun all{&cache, ids.data(), 0, T};
    std::vector<float> got(size_t(T) * size_t(V));
    model->ForwardCached(&all, 1, nullptr, -1, got.data());
    double max_err = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int v = 0; v < V; ++v)
        max_err = std::max(max_err, std::fabs(double(got[size_t(t * V + v)]) -
                                              want[t][v].get<double>()));
    EXPECT_LT(max_err, 1e-4) << GetParam() << " L=" << T;
    const std::vector<float> full = Full(*model, ids);
    const int64_t p0 = T / 2, n = std::min<int64_t>(3, T - p0);
    CachedRun part{&cache, ids.data() + p0, p0, n, T};
    std::vector<float> some(size_t(n) * size_t(V));
    model->ForwardCached(&part, 1, nullptr, -1, some.data());
    EXPECT_LT(MaxErr(full, some.data(), p0, n, V), 1e-5) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenCached,
                         ::testing::Values("llada_untied_f32", "llada_tied_f32",
                                           "dream_gqa_f32", "dream_tied_f32",
                                           "llada_untied_bf16",
                                           "dream_gqa_bf16"));

}  // namespace
}  // namespace dllm
