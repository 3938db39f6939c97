// The CPU backend: buffers are host memory and every kernel is the one of
// ops.h, so a model on this backend runs exactly the code it ran before the
// seam existed.
#include <cstring>
#include <new>

#include "base/thread_pool.h"
#include "ops/backend.h"

namespace dllm::ops {
namespace {

class CpuBackendImpl final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::string description() const override { return "CPU (host memory)"; }
  bool host_memory() const override { return true; }

  float* Alloc(size_t n) override { return new float[n > 0 ? n : 1]; }
  void Free(float* p) override { delete[] p; }
  void Upload(float* dst, const float* host, size_t n) override {
    if (dst != host) std::memcpy(dst, host, n * sizeof(float));
  }
  void Download(float* host, const float* src, size_t n) override {
    if (host != src) std::memcpy(host, src, n * sizeof(float));
  }
  void Copy(float* dst, const float* src, size_t n) override {
    if (dst != src) std::memmove(dst, src, n * sizeof(float));
  }
  void Synchronize() override {}

  Matrix PlaceMatrix(const Matrix& host, const std::string&) override {
    return host;  // used in place, mmapped
  }
  const float* PlaceVector(const float* host, int64_t) override { return host; }
  size_t placed_bytes() const override { return 0; }

  void MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
                const float* bias) override {
    ops::MatMulWT(x, M, w, y, bias);
  }
  void MatMulWTGroup(const float* x, int64_t M, const MatMulOut* outs,
                     int n) override {
    ops::MatMulWTGroup(x, M, outs, n);
  }
  void RmsNorm(const float* x, const float* weight, int64_t M, int64_t C,
               float eps, float* y) override {
    ops::RmsNorm(x, weight, M, C, eps, y);
  }
  void Rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
            int64_t row_stride, const float* cos, const float* sin) override {
    ops::Rope(x, T, n_heads, head_dim, row_stride, cos, sin);
  }
  void Attention(const float* q, const float* k, const float* v,
                 const AttentionShape& s, const uint8_t* key_mask,
                 float* out) override {
    ops::Attention(q, k, v, s, key_mask, out);
  }
  void SwiGLU(const float* gate, const float* up, int64_t n,
              float* out) override {
    ops::SwiGLU(gate, up, n, out);
  }
  void AddInPlace(float* y, const float* x, int64_t n) override {
    ops::AddInPlace(y, x, n);
  }
  void Embed(const Matrix& table, const int32_t* ids, int64_t n,
             float* x) override {
    // A row is cols values: whole blocks for quantized tables.
    const size_t row_bytes = DTypeBytes(table.dtype, table.cols);
    for (int64_t i = 0; i < n; ++i)
      ops::ToF32(
          table.dtype,
          static_cast<const uint8_t*>(table.data) + size_t(ids[i]) * row_bytes,
          table.cols, x + i * table.cols);
  }
  void GatherRows(const float* x, int64_t width, const int32_t* rows, int64_t n,
                  float* out) override {
    for (int64_t r = 0; r < n; ++r)
      std::memcpy(out + r * width, x + int64_t(rows[r]) * width,
                  size_t(width) * sizeof(float));
  }
  void FillColumns(float* x, int64_t n, int64_t width, const int32_t* cols,
                   int64_t n_cols, float value) override {
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < n_cols; ++i) x[r * width + cols[i]] = value;
  }
  void RowStatsRows(const float* logits, int64_t n, int64_t V,
                    RowStats* out) override {
    // Rows are independent: one per task.
    ParallelFor(size_t(n), 1, [&](size_t b, size_t e, int) {
      for (size_t r = b; r < e; ++r)
        out[r] = ComputeRowStats(logits + int64_t(r) * V, V);
    });
  }
  double MeasureBandwidthGBs() override { return 0; }
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend() {
  return std::make_unique<CpuBackendImpl>();
}

Backend& CpuBackend() {
  static CpuBackendImpl* backend = new CpuBackendImpl;  // never destroyed
  return *backend;
}

}  // namespace dllm::ops
