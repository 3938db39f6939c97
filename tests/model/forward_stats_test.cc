// Model::ForwardStats / ForwardCachedStats / RestatRows: the statistics a
// deterministic sampler decides from (what a GPU sends back instead of the
// logits) equal ComputeRowStats of the logits Forward gives, with the bans
// applied, bit for bit on the CPU.
#include <gtest/gtest.h>

#include <cmath>

#include "dllm/model.h"
#include "ops/ops.h"
#include "test_util.h"

namespace dllm {
namespace {

void ExpectSame(const RowStats& got, const RowStats& want,
                const std::string& what) {
  EXPECT_EQ(got.argmax, want.argmax) << what;
  EXPECT_EQ(got.max, want.max) << what;
  EXPECT_EQ(got.second, want.second) << what;
  EXPECT_EQ(got.log_norm, want.log_norm) << what;
  EXPECT_EQ(got.entropy, want.entropy) << what;
  EXPECT_EQ(got.ties, want.ties) << what;
}

// The stats of logits row `row` (V wide) with `banned` set to -inf.
RowStats StatsOf(std::vector<float> logits, int64_t row, int V,
                 const std::vector<int32_t>& banned) {
  float* r = logits.data() + row * V;
  for (int32_t b : banned) r[b] = -INFINITY;
  return ops::ComputeRowStats(r, V);
}

TEST(ForwardStats, EqualTheStatisticsOfTheLogits) {
  test::TempDir dir;
  const ModelConfig c = test::TinyConfig(Arch::kDream);
  InitRandomModel(c, dir.path(), "F32", 5, 0.2f);
  auto m = Model::Load(dir.path());
  const int V = c.vocab_size;
  std::vector<int32_t> ids;
  for (int i = 0; i < 12; ++i) ids.push_back((i * 37 + 3) % V);
  const std::vector<int32_t> rows = {11, 0, 4, 7};
  ForwardBatch b;
  b.T = int64_t(ids.size()), b.ids = ids.data();
  b.rows = rows.data(), b.n_rows = int64_t(rows.size());
  std::vector<float> logits(rows.size() * size_t(V));
  m->Forward(b, logits.data());
  // Ban the argmax of row 0, so that the ban changes the answer.
  const int32_t top0 = ops::ComputeRowStats(logits.data(), V).argmax;
  const std::vector<int32_t> banned = {top0, 2};
  std::vector<RowStats> st(rows.size());
  m->ForwardStats(b, banned, st.data());
  for (size_t r = 0; r < rows.size(); ++r)
    ExpectSame(st[r], StatsOf(logits, int64_t(r), V, banned),
               "row " + std::to_string(r));
  EXPECT_NE(st[0].argmax, top0);

  // RestatRows bans more in some rows of the kept logits, in any order.
  const int32_t which[2] = {2, 0};
  std::vector<RowStats> re(2);
  m->RestatRows(which, 2, {st[2].argmax}, re.data());
  ExpectSame(re[0], StatsOf(logits, 2, V, {top0, 2, st[2].argmax}), "restat 2");
  ExpectSame(re[1], StatsOf(logits, 0, V, {top0, 2, st[2].argmax}), "restat 0");
  EXPECT_NE(re[0].argmax, st[2].argmax);
  const int32_t outside = 4;
  EXPECT_DLLM_ERROR(m->RestatRows(&outside, 1, {}, re.data()),
                    "outside the last call's 4 rows");
  EXPECT_DLLM_ERROR(m->ForwardStats(b, {V}, st.data()),
                    "banned token 50 is outside the vocabulary");

  // The cached forward over a prefix then a block: the same statistics.
  KVCache cache(c, int64_t(ids.size()));
  CachedRun prefix{&cache, ids.data(), 0, 8, 0};
  m->ForwardCached(&prefix, 1, nullptr, 0, logits.data());
  CachedRun block{&cache, ids.data() + 8, 8, 4, 0};
  const int32_t brows[2] = {3, 0};
  std::vector<float> bl(2 * size_t(V));
  m->ForwardCached(&block, 1, brows, 2, bl.data());
  std::vector<RowStats> bs(2);
  m->ForwardCachedStats(&block, 1, brows, 2, banned, bs.data());
  for (int r = 0; r < 2; ++r)
    ExpectSame(bs[size_t(r)], StatsOf(bl, r, V, banned),
               "cached row " + std::to_string(r));
}

}  // namespace
}  // namespace dllm
