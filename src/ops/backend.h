// The seam between the model and the hardware it runs on. The transformer
// forward (model/) is written once against this interface; a backend owns
// the memory its buffers live in and runs the kernels of ops.h on them.
// ops/cpu implements it with the kernels of ops.h on host memory; ops/cuda
// (built with -DDLLM_CUDA=ON) on one NVIDIA GPU, with the activations, the
// weights and the KV caches in device memory.
//
// Conventions. A "buffer" is a float* in the backend's memory, from Alloc;
// kernels take and return buffers (the contracts of ops.h, same shapes).
// Host-side arguments are said so: token ids, row indices, key masks and
// results such as RowStats come from and go to host memory. Kernels are
// queued in order and may run asynchronously; Download and Synchronize wait
// for everything queued before them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ops/ops.h"

namespace dllm::ops {

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu" or "cuda:0"; and a line saying what it runs on (for logs).
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  // True when buffers are host memory (the CPU backend), so host code may
  // read and write them directly.
  virtual bool host_memory() const = 0;

  // Buffers of n floats (n >= 1); Free(nullptr) is a no-op.
  virtual float* Alloc(size_t n) = 0;
  virtual void Free(float* p) = 0;
  // Host to buffer, buffer to host (waits), buffer to buffer.
  virtual void Upload(float* dst, const float* host, size_t n) = 0;
  virtual void Download(float* host, const float* src, size_t n) = 0;
  virtual void Copy(float* dst, const float* src, size_t n) = 0;
  virtual void Synchronize() = 0;

  // Weights, placed once at load and kept until the backend goes: a matrix
  // as stored (F32, BF16, F16 or a block type ops/quant.h knows) becomes one
  // the kernels read; fp32 vectors (norms, biases) likewise. The CPU backend
  // returns its argument; the CUDA one uploads a copy and fails with a clear
  // error for a dtype it has no kernel for.
  virtual Matrix PlaceMatrix(const Matrix& host, const std::string& name) = 0;
  virtual const float* PlaceVector(const float* host, int64_t n) = 0;
  // Bytes of weights placed so far in the backend's own memory (0 on CPU,
  // where they stay mmapped).
  virtual size_t placed_bytes() const = 0;

  // The kernels of ops.h. Rope's cos/sin are buffers; Attention's key_mask
  // is host memory (B, keys()) or nullptr.
  virtual void MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
                        const float* bias) = 0;
  // Several products of one x (ops::MatMulWTGroup); by default one
  // MatMulWT each.
  virtual void MatMulWTGroup(const float* x, int64_t M, const MatMulOut* outs,
                             int n) {
    for (int i = 0; i < n; ++i)
      MatMulWT(x, M, *outs[i].w, outs[i].y, outs[i].bias);
  }
  virtual void RmsNorm(const float* x, const float* weight, int64_t M,
                       int64_t C, float eps, float* y) = 0;
  virtual void Rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
                    int64_t row_stride, const float* cos, const float* sin) = 0;
  virtual void Attention(const float* q, const float* k, const float* v,
                         const AttentionShape& s, const uint8_t* key_mask,
                         float* out) = 0;
  virtual void SwiGLU(const float* gate, const float* up, int64_t n,
                      float* out) = 0;
  virtual void AddInPlace(float* y, const float* x, int64_t n) = 0;

  // x (n, table.cols) = the rows ids[0, n) (host) of a placed table,
  // converted to fp32.
  virtual void Embed(const Matrix& table, const int32_t* ids, int64_t n,
                     float* x) = 0;
  // out (n, width) = the rows rows[0, n) (host indices) of x (., width).
  virtual void GatherRows(const float* x, int64_t width, const int32_t* rows,
                          int64_t n, float* out) = 0;
  // x[r * width + cols[i]] = value for every row r < n and every column
  // index of cols (host memory): banned tokens.
  virtual void FillColumns(float* x, int64_t n, int64_t width,
                           const int32_t* cols, int64_t n_cols,
                           float value) = 0;
  // The sampling reductions of ComputeRowStats over each of n rows of
  // logits (n, V), written to host memory, so only these come back.
  virtual void RowStatsRows(const float* logits, int64_t n, int64_t V,
                            RowStats* out) = 0;

  // The memory roofline in GB/s measured now (bytes read + written per
  // second by a large buffer-to-buffer copy), for benchmarks; 0 when the
  // backend leaves that to the CPU's own measurement (ceiling.h).
  virtual double MeasureBandwidthGBs() = 0;
};

// The CPU backend. It holds no state (the kernels share the process's
// thread pool), so every instance is the same; CpuBackend() is one that
// lives as long as the process, for code without a model (training).
std::unique_ptr<Backend> MakeCpuBackend();
Backend& CpuBackend();

// A backend by name: "cpu", "cuda" (= "cuda:0") or "cuda:N". Fails with a
// clear error for an unknown name, for "cuda" in a build without
// -DDLLM_CUDA=ON, and when no usable GPU is found.
std::unique_ptr<Backend> MakeBackend(const std::string& device);

// Whether this build has the CUDA backend compiled in.
bool HaveCudaBackend();

// A growable buffer on one backend (the model's activation buffers).
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { Reset(); }
  // At least n floats on `be`; contents are lost when it grows.
  float* Grow(Backend& be, size_t n) {
    if (be_ != &be || size_ < n) {
      Reset();
      be_ = &be;
      data_ = be.Alloc(n);
      size_ = n;
    }
    return data_;
  }
  float* data() const { return data_; }
  size_t size() const { return size_; }
  void Reset() {
    if (be_) be_->Free(data_);
    be_ = nullptr;
    data_ = nullptr;
    size_ = 0;
  }

 private:
  Backend* be_ = nullptr;
  float* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace dllm::ops

// Entry point of the CUDA backend (ops/cuda), present when built with
// -DDLLM_CUDA=ON: device ordinal -> backend, failing clearly when the
// driver or the device is missing.
namespace dllm::ops::cuda {
std::unique_ptr<Backend> MakeCudaBackend(int ordinal);
}  // namespace dllm::ops::cuda
