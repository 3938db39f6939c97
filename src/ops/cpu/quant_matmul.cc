// The quantized matmul of ops/quant.h on the CPU: picks the kernel
// (quant_kernels.h) for this CPU, quantizes the activation rows once per
// call, then spreads tiles of (rows of x) x (rows of w) over the thread pool.
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "base/thread_pool.h"
#include "dllm/error.h"
#include "ops/cpu/quant_kernels.h"
#include "ops/cpu/weight_slices.h"
#include "ops/quant.h"

namespace dllm::cpu {

namespace {

#if defined(__x86_64__) || defined(__i386__)
bool HasF16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

std::vector<QuantTarget> Detect() {
  std::vector<QuantTarget> t;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the vector state.
  const bool avx2 = __builtin_cpu_supports("avx2") &&
                    __builtin_cpu_supports("fma") && HasF16c();
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl");
  if (avx512 && __builtin_cpu_supports("avx512vnni"))
    t.push_back(QuantTarget::kAvx512Vnni);
  if (avx512) t.push_back(QuantTarget::kAvx512);
  if (avx2) t.push_back(QuantTarget::kAvx2);
#endif
  t.push_back(QuantTarget::kScalar);
  return t;
}

const std::vector<QuantTarget>& Targets() {
  static const std::vector<QuantTarget> t = Detect();
  return t;
}

std::atomic<int> g_forced{-1};

const quant::Kernel& KernelFor(QuantTarget t) {
  switch (t) {
#if defined(__x86_64__) || defined(__i386__)
    case QuantTarget::kAvx512Vnni:
      return quant::Avx512VnniKernel();
    case QuantTarget::kAvx512:
      return quant::Avx512Kernel();
    case QuantTarget::kAvx2:
      return quant::Avx2Kernel();
#endif
    default:
      return quant::ScalarKernel();
  }
}

}  // namespace

std::vector<QuantTarget> QuantTargets() { return Targets(); }

void ForceQuantTarget(QuantTarget t) {
  const auto& avail = Targets();
  DLLM_CHECK(std::find(avail.begin(), avail.end(), t) != avail.end(),
             "quantized matmul: this CPU cannot run the ", QuantTargetName(t),
             " kernel");
  g_forced = int(t);
}

void ResetQuantTarget() { g_forced = -1; }

QuantTarget ActiveQuantTarget() {
  const int f = g_forced.load(std::memory_order_relaxed);
  return f >= 0 ? QuantTarget(f) : Targets().front();
}

const char* QuantTargetName(QuantTarget t) {
  switch (t) {
    case QuantTarget::kScalar:
      return "scalar";
    case QuantTarget::kAvx2:
      return "avx2";
    case QuantTarget::kAvx512:
      return "avx512bw";
    case QuantTarget::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

}  // namespace dllm::cpu

namespace dllm::ops {

namespace {

using cpu::quant::Act;
using cpu::quant::Kernel;
using cpu::quant::Tile;
using cpu::quant::TileShape;

// Per-thread activation buffer that only grows; parts 64-byte aligned.
uint8_t* ActScratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  uintptr_t p = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<uint8_t*>((p + 63) & ~uintptr_t(63));
}

size_t Align64(size_t n) { return (n + 63) & ~size_t(63); }

// Below this many multiply-adds a matmul runs on the calling thread.
constexpr int64_t kSerialMacs = 1 << 18;

// Lays out and quantizes the M rows of x.
Act QuantizeActivations(const Kernel& k, DType t, const float* x, int64_t M,
                        int64_t K, int64_t B) {
  const size_t nq = Align64(size_t(M * K));
  const size_t nd = Align64(size_t(M * (K / B)) * 4);
  const size_t nd8 = B == 32 ? Align64(size_t(M * (K / 4)) * 4) : 0;
  const size_t nbs = B == 256 ? Align64(size_t(M * (K / 16)) * 2) : 0;
  uint8_t* p =
      ActScratch(nq + nd + 2 * nd8 + nbs + 64);  // + slack past the end
  Act a;
  a.K = K, a.B = B;
  a.corr_off = t == DType::kQ8_0 ? 128 : t == DType::kQ4_0 ? 8 : 0;
  a.q = reinterpret_cast<int8_t*>(p);
  a.d = reinterpret_cast<float*>(p + nq);
  if (B == 32) {
    a.d8 = reinterpret_cast<float*>(p + nq + nd);
    a.corr = reinterpret_cast<int32_t*>(p + nq + nd + nd8);
  } else {
    a.bsums = reinterpret_cast<int16_t*>(p + nq + nd);
  }
  if (M * K < (1 << 16) || Pool().size() == 1) {
    for (int64_t m = 0; m < M; ++m) k.quantize_act(x + m * K, a, m);
  } else {
    ParallelFor(size_t(M), std::max<size_t>(1, size_t((1 << 14) / K)),
                [&](size_t b, size_t e, int) {
                  for (size_t m = b; m < e; ++m)
                    k.quantize_act(x + m * K, a, int64_t(m));
                });
  }
  return a;
}

// Runs one tile, split into shapes the kernel takes: (rows, cols),
// (rows, 1), (1, cols1), (1, 1).
void RunTile(const Kernel& k, DType t, const TileShape& sh, const Tile& tile) {
  if ((tile.R == sh.rows && (tile.C == sh.cols || tile.C == 1)) ||
      (tile.R == 1 && (tile.C == sh.cols1 || tile.C == 1)))
    return k.tile(t, tile);
  for (int r = 0; r < tile.R; ++r)
    for (int c = 0; c < tile.C;) {
      const int C = c + sh.cols1 <= tile.C ? sh.cols1 : 1;
      Tile one = tile;
      one.w = tile.w + size_t(c) * tile.w_stride;
      one.m0 = tile.m0 + r, one.R = 1, one.C = C;
      one.y = tile.y + r * tile.ldy + c;
      k.tile(t, one);
      c += C;
    }
}

}  // namespace

void MatMulWTQuantized(const float* x, int64_t M, const Matrix& w, float* y,
                       const float* bias) {
  const MatMulOut out{&w, y, bias};
  MatMulWTQuantizedGroup(x, M, &out, 1);
}

void MatMulWTQuantizedGroup(const float* x, int64_t M, const MatMulOut* outs,
                            int n) {
  if (n == 0) return;
  const DType t = outs[0].w->dtype;
  const int64_t K = outs[0].w->cols;
  for (int i = 0; i < n; ++i) {
    const Matrix& w = *outs[i].w;
    DLLM_CHECK(IsQuantized(w.dtype), "MatMulWTQuantized: ", DTypeName(w.dtype),
               " is not a block format");
    DLLM_CHECK(w.dtype == t && w.cols == K,
               "matmul group: quantized weights of different types or widths");
    DLLM_CHECK(K % DTypeBlock(t) == 0, "matmul: a ", DTypeName(t),
               " weight of shape (", w.rows, ", ", K, ") needs its row length ",
               K, " to be a multiple of ", DTypeBlock(t), " (", DTypeName(t),
               " packs ", DTypeBlock(t), " values per block)");
  }
  if (M == 0) return;
  if (K == 0) {
    for (int i = 0; i < n; ++i) {
      const int64_t N = outs[i].w->rows;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t c = 0; c < N; ++c)
          outs[i].y[m * N + c] = outs[i].bias ? outs[i].bias[c] : 0.0f;
    }
    return;
  }
  const Kernel& k = cpu::KernelFor(cpu::ActiveQuantTarget());
  const int64_t B = cpu::quant::ActBlock(t);
  // One quantized x for the whole group.
  const Act act = QuantizeActivations(k, t, x, M, K, B);
  const TileShape sh = k.shape(t);
  const size_t row_bytes = DTypeBytes(t, K);

  // Columns of w per tile: cols when whole tiles of x rows exist, else the
  // decoding shape.
  const int64_t cols = M >= sh.rows ? sh.cols : sh.cols1;
  // Small products run on the calling thread: waking the pool costs more.
  int64_t macs = 0;
  for (int i = 0; i < n; ++i) macs += M * outs[i].w->rows * K;
  const int64_t nt = macs < kSerialMacs ? 1 : Pool().size();
  // Each weight in contiguous slices of its rows, in whole tiles; a few per
  // thread so a slow thread does not hold the rest back.
  std::vector<WeightSlice>& tasks = CallerSliceList();
  for (int i = 0; i < n; ++i) {
    const int64_t N = outs[i].w->rows;
    const int64_t units = (N + cols - 1) / cols;
    const int64_t want = std::clamp<int64_t>(nt * (M == 1 ? 2 : 4), 1, units);
    const int64_t per = (units + want - 1) / want * cols;
    for (int64_t n0 = 0; n0 < N; n0 += per)
      tasks.push_back({i, n0, std::min(N, n0 + per)});
  }
  // Rows of x per pass: their quantized rows stay in L2 (~256 KB) while a
  // tile of w's rows is reused over them.
  const int64_t act_row = K + 4 * (K / B) + (B == 32 ? 2 * K : K / 8);
  const int64_t mc = std::max<int64_t>(
      sh.rows, (262144 / std::max<int64_t>(act_row, 1)) / sh.rows * sh.rows);

  auto run = [&](size_t task, int) {
    const WeightSlice& tk = tasks[task];
    const MatMulOut& o = outs[tk.i];
    const int64_t N = o.w->rows, n0 = tk.n0, n1 = tk.n1;
    const uint8_t* W = static_cast<const uint8_t*>(o.w->data);
    for (int64_t m0 = 0; m0 < M; m0 += mc) {
      const int64_t m1 = std::min(M, m0 + mc);
      for (int64_t c = n0; c < n1;) {
        const int C = c + cols <= n1 ? int(cols) : 1;
        for (int64_t m = m0; m < m1;) {
          const int R = m + sh.rows <= m1 ? sh.rows : 1;
          Tile tile;
          tile.w = W + size_t(c) * row_bytes;
          tile.w_stride = row_bytes;
          tile.C = C;
          tile.act = &act;
          tile.m0 = m;
          tile.R = R;
          tile.y = o.y + m * N + c;
          tile.ldy = N;
          RunTile(k, t, sh, tile);
          m += R;
        }
        c += C;
      }
    }
    if (o.bias)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t c = n0; c < n1; ++c) o.y[m * N + c] += o.bias[c];
  };
  if (nt == 1) {
    for (size_t task = 0; task < tasks.size(); ++task) run(task, 0);
  } else {
    Pool().Run(tasks.size(), run);
  }
}

}  // namespace dllm::ops
