// The CUDA backend (ops/backend.h) on one NVIDIA GPU: buffers are device
// memory from cudaMalloc, every kernel and copy is queued on the backend's
// one stream, and only Download, RowStatsRows and Synchronize wait. Weights
// are uploaded once by PlaceMatrix/PlaceVector into allocations the backend
// keeps until it goes. Host-side arguments (token ids, row indices, key
// masks) are copied into small device scratch buffers on the stream first.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "ops/backend.h"
#include "ops/cuda/cuda_common.cuh"

namespace dllm::ops::cuda {
namespace {

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int ordinal) : ordinal_(ordinal) {
    DLLM_CUDA_CHECK(cudaSetDevice(ordinal_), "selecting the device");
    DLLM_CUDA_CHECK(cudaGetDeviceProperties(&props_, ordinal_),
                    "reading the device properties");
    DLLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                    "creating a stream");
    gemm_ = std::make_unique<Gemm>(stream_, std::getenv("DLLM_CUDA_GEMM"));
  }

  ~CudaBackend() override {
    cudaSetDevice(ordinal_);
    cudaStreamSynchronize(stream_);
    gemm_.reset();
    for (void* p : placed_) cudaFree(p);
    cudaStreamDestroy(stream_);  // (the scratch buffers are freed after)
  }

  std::string name() const override {
    return "cuda:" + std::to_string(ordinal_);
  }
  std::string description() const override {
    char gib[32];
    std::snprintf(gib, sizeof(gib), "%.1f",
                  double(props_.totalGlobalMem) / double(1 << 30));
    return StrCat("cuda:", ordinal_, " ", props_.name, " (sm_", props_.major,
                  props_.minor, ", ", props_.multiProcessorCount, " SMs, ", gib,
                  " GiB)");
  }
  bool host_memory() const override { return false; }

  float* Alloc(size_t n) override {
    Use();
    void* p = nullptr;
    DLLM_CUDA_CHECK(cudaMalloc(&p, (n ? n : 1) * sizeof(float)),
                    StrCat("allocating ", n * sizeof(float), " bytes").c_str());
    return static_cast<float*>(p);
  }
  void Free(float* p) override {
    if (!p) return;
    Use();
    // Work still queued may read p: let it finish first.
    DLLM_CUDA_CHECK(cudaStreamSynchronize(stream_), "freeing a buffer");
    DLLM_CUDA_CHECK(cudaFree(p), "freeing a buffer");
  }
  void Upload(float* dst, const float* host, size_t n) override {
    Use();
    DLLM_CUDA_CHECK(cudaMemcpyAsync(dst, host, n * sizeof(float),
                                    cudaMemcpyHostToDevice, stream_),
                    "uploading a buffer");
  }
  void Download(float* host, const float* src, size_t n) override {
    Use();
    DLLM_CUDA_CHECK(cudaMemcpyAsync(host, src, n * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream_),
                    "downloading a buffer");
    DLLM_CUDA_CHECK(cudaStreamSynchronize(stream_), "waiting for a download");
  }
  void Copy(float* dst, const float* src, size_t n) override {
    Use();
    if (n == 0 || dst == src) return;
    const size_t bytes = n * sizeof(float);
    if (dst < src + n && src < dst + n) {  // overlapping: like memmove
      void* tmp = copy_.Get(bytes, stream_);
      DLLM_CUDA_CHECK(
          cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, stream_),
          "copying a buffer");
      src = static_cast<const float*>(tmp);
    }
    DLLM_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_),
        "copying a buffer");
  }
  void Synchronize() override {
    Use();
    DLLM_CUDA_CHECK(cudaStreamSynchronize(stream_), "synchronizing");
  }

  Matrix PlaceMatrix(const Matrix& host, const std::string& name) override {
    Use();
    const DType t = host.dtype;
    const bool ok = t == DType::kF32 || t == DType::kBF16 || t == DType::kF16 ||
                    t == DType::kQ8_0 || t == DType::kQ4_0;
    DLLM_CHECK(ok, "cuda: tensor ", name, " is ", CudaDTypeName(t),
               ", which the CUDA backend has no kernel for (it runs F32, "
               "BF16, F16, Q8_0 and Q4_0): convert the model first, e.g. "
               "`dllm convert SRC DST --outtype bf16` (or q8_0)");
    DLLM_CHECK(host.cols % DTypeBlock(t) == 0, "cuda: tensor ", name, ": ",
               host.cols, " columns are not whole ", CudaDTypeName(t),
               " blocks of ", DTypeBlock(t));
    const size_t bytes = size_t(host.rows) * DTypeBytes(t, host.cols);
    Matrix m = host;
    m.data = UploadBytes(host.data, bytes, name);
    return m;
  }
  const float* PlaceVector(const float* host, int64_t n) override {
    Use();
    return static_cast<const float*>(
        UploadBytes(host, size_t(n) * sizeof(float), "a vector"));
  }
  size_t placed_bytes() const override { return placed_bytes_; }

  void MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
                const float* bias) override {
    Use();
    gemm_->MatMulWT(x, M, w, y, bias);
  }
  void RmsNorm(const float* x, const float* weight, int64_t M, int64_t C,
               float eps, float* y) override {
    Use();
    LaunchRmsNorm(stream_, x, weight, M, C, eps, y);
  }
  void Rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
            int64_t row_stride, const float* cos, const float* sin) override {
    Use();
    LaunchRope(stream_, x, T, n_heads, head_dim, row_stride, cos, sin);
  }
  void Attention(const float* q, const float* k, const float* v,
                 const AttentionShape& s, const uint8_t* key_mask,
                 float* out) override {
    Use();
    const uint8_t* mask = nullptr;
    if (key_mask) {
      const size_t n = size_t(s.B * s.keys());
      void* d = mask_.Get(n, stream_);
      DLLM_CUDA_CHECK(
          cudaMemcpyAsync(d, key_mask, n, cudaMemcpyHostToDevice, stream_),
          "attention: uploading the key mask");
      mask = static_cast<const uint8_t*>(d);
    }
    LaunchAttention(stream_, q, k, v, s, mask, out, &attn_partial_,
                    props_.multiProcessorCount);
  }
  void SwiGLU(const float* gate, const float* up, int64_t n,
              float* out) override {
    Use();
    LaunchSwiGLU(stream_, gate, up, n, out);
  }
  void AddInPlace(float* y, const float* x, int64_t n) override {
    Use();
    LaunchAdd(stream_, y, x, n);
  }
  void Embed(const Matrix& table, const int32_t* ids, int64_t n,
             float* x) override {
    Use();
    if (n <= 0) return;
    LaunchEmbed(stream_, table, UploadIndices(ids, n, "embed"), n, x);
  }
  void GatherRows(const float* x, int64_t width, const int32_t* rows, int64_t n,
                  float* out) override {
    Use();
    if (n <= 0) return;
    LaunchGatherRows(stream_, x, width, UploadIndices(rows, n, "gather"), n,
                     out);
  }
  void FillColumns(float* x, int64_t n, int64_t width, const int32_t* cols,
                   int64_t n_cols, float value) override {
    Use();
    if (n <= 0 || n_cols <= 0) return;
    LaunchFillColumns(stream_, x, n, width, UploadIndices(cols, n_cols, "ban"),
                      n_cols, value);
  }
  void RowStatsRows(const float* logits, int64_t n, int64_t V,
                    RowStats* out) override {
    Use();
    if (n <= 0) return;
    auto* d = static_cast<RowStats*>(
        stats_.Get(size_t(n) * sizeof(RowStats), stream_));
    LaunchRowStats(stream_, logits, n, V, d);
    DLLM_CUDA_CHECK(cudaMemcpyAsync(out, d, size_t(n) * sizeof(RowStats),
                                    cudaMemcpyDeviceToHost, stream_),
                    "row stats: downloading");
    DLLM_CUDA_CHECK(cudaStreamSynchronize(stream_), "row stats: waiting");
  }

  // Best of 5 device-to-device copies of 1 GiB (less when memory is short),
  // counting bytes read + written.
  double MeasureBandwidthGBs() override {
    Use();
    size_t free_b = 0, total_b = 0;
    DLLM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b), "reading free memory");
    size_t bytes = size_t(1) << 30;
    while (bytes > (size_t(1) << 24) &&
           2 * bytes + (size_t(256) << 20) > free_b)
      bytes /= 2;
    void *a = nullptr, *b = nullptr;
    DLLM_CUDA_CHECK(cudaMalloc(&a, bytes), "bandwidth: allocating");
    DLLM_CUDA_CHECK(cudaMalloc(&b, bytes), "bandwidth: allocating");
    cudaEvent_t e0, e1;
    DLLM_CUDA_CHECK(cudaEventCreate(&e0), "bandwidth: creating an event");
    DLLM_CUDA_CHECK(cudaEventCreate(&e1), "bandwidth: creating an event");
    DLLM_CUDA_CHECK(cudaMemsetAsync(a, 1, bytes, stream_), "bandwidth: memset");
    DLLM_CUDA_CHECK(
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream_),
        "bandwidth: warm-up copy");
    float best_ms = 0;
    for (int rep = 0; rep < 5; ++rep) {
      DLLM_CUDA_CHECK(cudaEventRecord(e0, stream_), "bandwidth: event");
      DLLM_CUDA_CHECK(
          cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream_),
          "bandwidth: copy");
      DLLM_CUDA_CHECK(cudaEventRecord(e1, stream_), "bandwidth: event");
      DLLM_CUDA_CHECK(cudaEventSynchronize(e1), "bandwidth: waiting");
      float ms = 0;
      DLLM_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1), "bandwidth: timing");
      if (rep == 0 || ms < best_ms) best_ms = ms;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    return best_ms > 0 ? 2.0 * double(bytes) / (best_ms * 1e-3) / 1e9 : 0.0;
  }

 private:
  // Keeps this thread on our device (cheap when it already is).
  void Use() const {
    DLLM_CUDA_CHECK(cudaSetDevice(ordinal_), "selecting the device");
  }

  void* UploadBytes(const void* host, size_t bytes, const std::string& what) {
    void* d = nullptr;
    DLLM_CUDA_CHECK(cudaMalloc(&d, bytes ? bytes : 1),
                    StrCat("allocating ", bytes, " bytes for ", what,
                           " (device memory full? ", placed_bytes_,
                           " bytes of weights placed so far)")
                        .c_str());
    placed_.push_back(d);
    placed_bytes_ += bytes;
    if (bytes)
      DLLM_CUDA_CHECK(
          cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, stream_),
          StrCat("uploading ", what).c_str());
    return d;
  }

  // Host indices to a device scratch, queued on the stream (the host array
  // may be reused as soon as this returns: pageable copies are staged).
  const int32_t* UploadIndices(const int32_t* host, int64_t n,
                               const char* what) {
    void* d = ids_.Get(size_t(n) * sizeof(int32_t), stream_);
    DLLM_CUDA_CHECK(cudaMemcpyAsync(d, host, size_t(n) * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, stream_),
                    StrCat(what, ": uploading indices").c_str());
    return static_cast<const int32_t*>(d);
  }

  int ordinal_;
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<Gemm> gemm_;
  std::vector<void*> placed_;
  size_t placed_bytes_ = 0;
  DeviceScratch ids_, mask_, stats_, attn_partial_, copy_;
};

}  // namespace

std::unique_ptr<Backend> MakeCudaBackend(int ordinal) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    Fail("cuda: no CUDA device (cudaGetDeviceCount: ", cudaGetErrorString(e),
         "); is the NVIDIA driver loaded? run on the CPU with --device cpu");
  DLLM_CHECK(count > 0, "cuda: no CUDA device (cudaGetDeviceCount: 0)");
  DLLM_CHECK(ordinal >= 0 && ordinal < count, "cuda: device ", ordinal,
             " out of range (this machine has ", count, " CUDA device",
             count == 1 ? "" : "s", ")");
  return std::make_unique<CudaBackend>(ordinal);
}

}  // namespace dllm::ops::cuda
