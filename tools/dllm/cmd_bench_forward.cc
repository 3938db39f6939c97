// dllm bench forward: forward-pass speed as a fraction of this machine's
// SGEMM ceiling, measured in the same run.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "args.h"
#include "command.h"
#include "dllm/ceiling.h"
#include "dllm/config.h"
#include "dllm/error.h"
#include "dllm/model.h"
#include "dllm/runtime.h"
#include "dllm/timer.h"

namespace dllm::cli {
namespace {

// --prefix P: one block of L positions over a cached P-token prefix, the
// step of cached decoding. Memory-bound at small L, so the ceiling is the
// memory bandwidth: the weights (every matrix; embedding rows aside) and
// the cached keys and values read once per forward, over the bandwidth
// measured in the same run (the device's, or the host's read bandwidth on
// as many threads).
int BenchCachedBlock(Model& model, int64_t P, int64_t L, const Args& a) {
  const ModelConfig& c = model.config();
  const int64_t reps = a.GetInt("--reps");
  DLLM_CHECK(reps >= 1, "bench: --reps must be at least 1");
  const int64_t n_rows = a.Has("--logit-rows") ? a.GetInt("--logit-rows") : L;
  DLLM_USAGE_CHECK(n_rows >= 0 && n_rows <= L,
                   "bench forward: --logit-rows must be in [0, --tokens]");
  std::vector<int32_t> ids(size_t(P + L));
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = int32_t((i * 7919) % size_t(c.vocab_size));
  std::vector<int32_t> rows(static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r)
    rows[size_t(r)] = int32_t(L - n_rows + r);
  std::vector<float> logits(size_t(std::max<int64_t>(n_rows, 1)) *
                            size_t(c.vocab_size));
  KVCache cache(c, P + L);
  CachedRun prefix{&cache, ids.data(), 0, P, 0};
  model.ForwardCached(&prefix, 1, nullptr, 0, logits.data());
  CachedRun block{&cache, ids.data() + P, P, L, 0};
  model.ForwardCached(&block, 1, rows.data(), n_rows, logits.data());  // warm
  std::vector<double> ms;
  for (int64_t r = 0; r < reps; ++r) {
    Timer t;
    model.ForwardCached(&block, 1, rows.data(), n_rows, logits.data());
    ms.push_back(t.Millis());
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  const double weight_bytes = double(model.weight_bytes_per_forward());
  const double kv_bytes = double(c.n_layers) * 2 * double(P + L) *
                          double(c.n_kv_heads) * c.head_dim * 4;
  double bw = model.MeasureDeviceBandwidth();
  const bool device_bw = bw > 0;
  if (!device_bw) bw = MeasureReadBandwidth(NumThreads());
  const double gbs = (weight_bytes + kv_bytes) / (med * 1e-3) / 1e9;
  std::printf(
      "{\"bench\":\"forward_cached_block\",\"model\":\"%s\",\"arch\":\"%s\","
      "\"dtype\":\"%s\",\"device\":\"%s\",\"device_info\":\"%s\","
      "\"params_m\":%.2f,\"threads\":%d,\"prefix\":%lld,\"tokens\":%lld,"
      "\"logit_rows\":%lld,\"reps\":%lld,\"ms_per_forward\":%.3f,"
      "\"ms_min\":%.3f,\"weights_mb\":%.1f,\"kv_cache_mb\":%.1f,"
      "\"read_gbs\":%.1f,\"bandwidth_gbs\":%.1f,\"bandwidth_of\":\"%s\","
      "\"ratio_to_bandwidth\":%.3f,\"roofline_ms\":%.3f,"
      "\"tokens_per_s_at_4_per_pass\":%.1f}\n",
      model.dir().c_str(), ArchName(c.arch), model.weights_dtype().c_str(),
      model.device().c_str(), model.device_description().c_str(),
      double(c.NumParams()) / 1e6, NumThreads(), (long long)P, (long long)L,
      (long long)n_rows, (long long)reps, med, ms.front(), weight_bytes / 1e6,
      kv_bytes / 1e6, gbs, bw,
      device_bw ? "device copy" : "host read, same threads", gbs / bw,
      (weight_bytes + kv_bytes) / (bw * 1e9) * 1e3, 4.0 / (med * 1e-3));
  return 0;
}

int RunBenchForward(int argc, char** argv) {
  Args a(
      "dllm bench forward -m DIR [--tokens L] [--batch B] [--prefix P] "
      "[--device DEV] [--reps N]",
      "Times full forward passes (logits at every position) and prints one "
      "JSON line:\n"
      "ms per forward, GFLOP/s, and the ratio to an SGEMM of the model's "
      "FFN shape timed in\n"
      "the same run (the machine's ceiling), plus peak memory against "
      "weights + activations.");
  a.Option("-m,--model", "DIR", "model folder");
  a.Option("--tokens", "L", "tokens per sequence", "256");
  a.Option("--batch", "B", "sequences per forward", "1");
  a.Option("--logit-rows", "N", "rows of logits to compute (default: all B*L)");
  a.Option("--reps", "N", "timed forwards (after one warm-up)", "5");
  a.Option("--prefix", "P",
           "time a block instead: --tokens positions after a P-token prefix "
           "whose keys and values sit in a KV cache (the cached decoding "
           "step; one sequence)",
           "0");
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--model"), "bench forward: -m DIR is required");
  ApplyThreadsOption(a);
  const int threads = NumThreads();
  auto model = Model::Load(a.Get("--model"), {DeviceOption(a)});
  const ModelConfig& c = model->config();
  const int64_t L = a.GetInt("--tokens"), B = a.GetInt("--batch"),
                reps = a.GetInt("--reps");
  DLLM_CHECK(L >= 1 && L <= c.max_seq_len, "bench: --tokens must be in [1, ",
             c.max_seq_len, "]");
  DLLM_CHECK(B >= 1 && B <= 1024, "bench: --batch must be in [1, 1024]");
  DLLM_CHECK(reps >= 1, "bench: --reps must be at least 1");
  const int64_t n_rows =
      a.Has("--logit-rows") ? a.GetInt("--logit-rows") : B * L;
  DLLM_CHECK(n_rows >= 0 && n_rows <= B * L,
             "bench: --logit-rows must be in [0, B*L]");

  const int64_t P = a.GetInt("--prefix");
  DLLM_USAGE_CHECK(P >= 0 && P + L <= c.max_seq_len,
                   "bench forward: --prefix plus --tokens must fit the "
                   "model's context of ",
                   c.max_seq_len);
  DLLM_USAGE_CHECK(P == 0 || B == 1,
                   "bench forward: --prefix runs one sequence (--batch 1)");
  if (P > 0) return BenchCachedBlock(*model, P, L, a);
  std::vector<int32_t> ids(static_cast<size_t>(B * L)),
      rows(static_cast<size_t>(n_rows));
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = int32_t((i * 7919) % size_t(c.vocab_size));
  for (int64_t r = 0; r < n_rows; ++r)
    rows[size_t(r)] = int32_t(B * L - n_rows + r);
  std::vector<float> logits(size_t(n_rows) * size_t(c.vocab_size));
  ForwardBatch fb;
  fb.B = B, fb.T = L, fb.ids = ids.data(), fb.rows = rows.data(),
  fb.n_rows = n_rows;
  model->Forward(fb, logits.data());  // warm-up: faults in the weights
  std::vector<double> ms;
  for (int64_t r = 0; r < reps; ++r) {
    Timer t;
    model->Forward(fb, logits.data());
    ms.push_back(t.Millis());
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  const double flops = c.ForwardFlops(B * L, L, n_rows);
  const double gflops = flops / (med * 1e-3) / 1e9;
  const int64_t rss = PeakRssBytes();
  const double weights_mb = double(model->file_bytes()) / 1e6;
  const double act_mb = double(model->activation_bytes()) / 1e6;
  // Ceiling: the FFN-shaped SGEMM (tokens x d_model) * (d_model x d_ff).
  SgemmCeiling ceil = MeasureSgemm(B * L, c.d_ff, c.d_model, threads);
  const double fma = MeasureFmaPeak(threads);
  std::printf(
      "{\"bench\":\"forward\",\"model\":\"%s\",\"arch\":\"%s\",\"dtype\":\"%"
      "s\",\"device\":\"%s\",\"params_m\":%.2f,"
      "\"threads\":%d,\"batch\":%lld,\"tokens\":%lld,\"logit_rows\":%lld,"
      "\"reps\":%lld,"
      "\"ms_per_forward\":%.2f,\"ms_min\":%.2f,\"gflop\":%.2f,\"gflops\":%.1f,"
      "\"sgemm_shape\":[%lld,%d,%d],\"sgemm_gflops_blas_threads\":%.1f,\"sgemm_"
      "gflops_pool\":%.1f,"
      "\"ratio_to_sgemm\":%.3f,\"fma_peak_gflops\":%.1f,"
      "\"ratio_to_fma_peak\":%.3f,\"tokens_per_s\":%.1f,\"peak_rss_mb\":%.1f,"
      "\"weights_file_mb\":%.1f,"
      "\"activations_mb\":%.1f,\"rss_over_weights_plus_act\":%.3f}\n",
      model->dir().c_str(), ArchName(c.arch), model->weights_dtype().c_str(),
      model->device().c_str(), double(c.NumParams()) / 1e6, threads,
      (long long)B, (long long)L, (long long)n_rows, (long long)reps, med,
      ms.front(), flops / 1e9, gflops, (long long)(B * L), c.d_ff, c.d_model,
      ceil.gflops_blas_threads, ceil.gflops_pool, gflops / ceil.best(), fma,
      gflops / fma, double(B * L) / (med * 1e-3), double(rss) / 1e6, weights_mb,
      act_mb, double(rss) / 1e6 / (weights_mb + act_mb));
  return 0;
}

}  // namespace

DLLM_COMMAND("bench forward",
             "time the forward pass against this machine's SGEMM ceiling",
             RunBenchForward);

}  // namespace dllm::cli
