// The backend seam (ops/backend.h): the CPU backend's own pieces (buffers,
// embedding rows, row gathers, per-row statistics) against plain loops, and
// the clear errors for devices this build or this machine cannot run. The
// CUDA backend's kernels are checked against this one on a GPU machine
// (tests/cuda, scripts/device_check.sh).
#include "ops/backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "dllm/model.h"
#include "ops/quant.h"
#include "test_util.h"

namespace dllm {
namespace {

TEST(Backend, CpuBuffersAreHostMemory) {
  std::unique_ptr<ops::Backend> be = ops::MakeBackend("cpu");
  EXPECT_EQ(be->name(), "cpu");
  EXPECT_TRUE(be->host_memory());
  ops::Buffer b;
  float* p = b.Grow(*be, 5);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(b.size(), 5u);
  EXPECT_EQ(b.Grow(*be, 3), p);  // big enough: kept
  const float src[5] = {1, 2, 3, 4, 5};
  be->Upload(p, src, 5);
  be->Copy(p, p + 2, 3);  // overlapping, like memmove
  float out[5];
  be->Download(out, p, 5);
  EXPECT_EQ(std::vector<float>(out, out + 5),
            (std::vector<float>{3, 4, 5, 4, 5}));
  ASSERT_NE(b.Grow(*be, 100), nullptr);
  EXPECT_EQ(b.size(), 100u);
  b.Reset();
  EXPECT_EQ(b.data(), nullptr);
}

TEST(Backend, EmbedGatherAndRowStats) {
  ops::Backend& be = ops::CpuBackend();
  const int64_t V = 6, C = 64;
  std::vector<float> table = test::RandomVector(size_t(V * C), 7, 1);
  // A Q8_0 table: each row two blocks of 32.
  std::vector<uint8_t> q8(DTypeBytes(DType::kQ8_0, V * C));
  const size_t row_bytes = DTypeBytes(DType::kQ8_0, C);
  for (int64_t r = 0; r < V; ++r)
    ops::QuantizeRow(DType::kQ8_0, table.data() + r * C, C,
                     q8.data() + size_t(r) * row_bytes);
  const int32_t ids[3] = {4, 0, 4};
  for (DType t : {DType::kF32, DType::kQ8_0}) {
    const void* data =
        t == DType::kF32 ? static_cast<const void*>(table.data()) : q8.data();
    const ops::Matrix m{t, data, V, C};
    std::vector<float> x(3 * C);
    be.Embed(m, ids, 3, x.data());
    for (int i = 0; i < 3; ++i) {
      std::vector<float> want(C);
      if (t == DType::kF32) {
        std::memcpy(want.data(), table.data() + ids[i] * C, C * 4);
      } else {
        ops::DequantizeRow(t, q8.data() + size_t(ids[i]) * row_bytes, C,
                           want.data());
      }
      EXPECT_EQ(std::vector<float>(x.begin() + i * C, x.begin() + (i + 1) * C),
                want)
          << DTypeName(t) << " row " << i;
    }
  }

  const int32_t rows[2] = {5, 1};
  std::vector<float> g(2 * C);
  be.GatherRows(table.data(), C, rows, 2, g.data());
  EXPECT_EQ(g[0], table[5 * C]);
  EXPECT_EQ(g[2 * C - 1], table[2 * C - 1]);

  // Per-row statistics are ComputeRowStats row by row, -inf included.
  std::vector<float> logits = test::RandomVector(3 * 100, 9, 3);
  logits[100 + 7] = -INFINITY;
  logits[200 + 3] = logits[200 + 50] = 40;  // a tie: the first index wins
  std::vector<ops::RowStats> st(3);
  be.RowStatsRows(logits.data(), 3, 100, st.data());
  for (int r = 0; r < 3; ++r) {
    const ops::RowStats want =
        ops::ComputeRowStats(logits.data() + r * 100, 100);
    EXPECT_EQ(st[r].argmax, want.argmax);
    EXPECT_EQ(st[r].max, want.max);
    EXPECT_EQ(st[r].second, want.second);
    EXPECT_EQ(st[r].log_norm, want.log_norm);
    EXPECT_EQ(st[r].entropy, want.entropy);
  }
  EXPECT_EQ(st[2].argmax, 3);
}

TEST(Backend, UnknownAndUnavailableDevicesAreClearErrors) {
  EXPECT_DLLM_ERROR(ops::MakeBackend("gpu"), "unknown device");
  EXPECT_DLLM_ERROR(ops::MakeBackend("cuda:x"), "expected cuda:N");
  if (!ops::HaveCudaBackend()) {
    EXPECT_DLLM_ERROR(ops::MakeBackend("cuda"), "-DDLLM_CUDA=ON");
    EXPECT_DLLM_ERROR(ops::MakeBackend("cuda:1"), "-DDLLM_CUDA=ON");
    EXPECT_EQ(CompiledDevices(), std::vector<std::string>{"cpu"});
  } else {
    EXPECT_EQ(CompiledDevices(), (std::vector<std::string>{"cpu", "cuda"}));
  }
}

// Loading on a device this build lacks fails before anything runs, naming
// the fix; the CPU load of the same folder works and says where it runs.
TEST(Backend, ModelLoadNamesTheDevice) {
  test::TempDir dir;
  InitRandomModel(test::TinyConfig(Arch::kLLaDA), dir.path(), "F32", 1);
  auto cpu = Model::Load(dir.path());
  EXPECT_EQ(cpu->device(), "cpu");
  EXPECT_EQ(cpu->device_weight_bytes(), 0u);
  if (!ops::HaveCudaBackend())
    EXPECT_DLLM_ERROR(Model::Load(dir.path(), {"cuda"}), "-DDLLM_CUDA=ON");
}

}  // namespace
}  // namespace dllm
