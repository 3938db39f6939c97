// dllm bench quant: the matmul on quantized and float weights, in GB/s of
// weights read against this machine's memory bandwidth measured in the same
// run.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "args.h"
#include "command.h"
#include "dllm/ceiling.h"
#include "dllm/error.h"
#include "dllm/quant_bench.h"
#include "dllm/runtime.h"

namespace dllm::cli {
namespace {

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int64_t ParsePositive(const std::string& s, const char* what) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 1 || v > (1LL << 30))
    UsageFail("bench quant: ", what, " '", s, "' is not a positive integer");
  return v;
}

int RunBenchQuant(int argc, char** argv) {
  Args a(
      "dllm bench quant [--dtypes LIST] [--rows LIST] [--shapes LIST] "
      "[--kernels best|all|LIST]",
      "Times y = x w^T (x: M rows of K fp32, w: N x K as stored) for each "
      "weight type and\n"
      "prints JSON lines: ms per call, GB/s of weights read, and the ratio "
      "to the memory\n"
      "bandwidth measured in the same run (a single-thread copy, as "
      "dllm/ceiling.h\n"
      "measures it, and a read by every thread), with the error against the "
      "fp32 matmul.\n"
      "By default each call reads its weights from memory (copies are "
      "cycled through, as\n"
      "a model's layers are); --hot reuses one copy.");
  a.Option("--dtypes", "LIST", "weight types", "F16,Q8_0,Q4_0,Q4_K,Q6_K");
  a.Option("--rows", "LIST", "rows of x (M): 1 = decoding, 128 = a prefill",
           "1,128");
  a.Option("--shapes", "LIST", "weight shapes NxK",
           "768x768,3072x768,32000x768");
  a.Option("--kernels", "LIST",
           "quantized kernel targets: best, all, or names (avx512vnni, "
           "avx512bw, avx2, scalar)",
           "best");
  a.Option("--seconds", "S", "timed seconds per window", "0.3");
  a.Option("--windows", "N",
           "timed windows per case (and per ceiling); the fastest is reported",
           "1");
  a.Flag("--hot", "reuse one copy of the weights (cache-hot when it fits)");
  AddThreadsOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  ApplyThreadsOption(a);
  const int threads = NumThreads();
  const double seconds = a.GetDouble("--seconds", 0.01, 60);
  const int64_t cold = a.GetFlag("--hot") ? 0 : int64_t(256) << 20;
  const int windows = int(a.GetInt("--windows", 1, 100));

  struct Shape {
    int64_t N, K;
  };
  std::vector<Shape> shapes;
  for (const std::string& s : SplitList(a.Get("--shapes"))) {
    const size_t x = s.find('x');
    if (x == std::string::npos)
      UsageFail("bench quant: shape '", s, "' is not NxK (e.g. 3072x768)");
    shapes.push_back({ParsePositive(s.substr(0, x), "N"),
                      ParsePositive(s.substr(x + 1), "K")});
  }
  std::vector<int64_t> rows;
  for (const std::string& s : SplitList(a.Get("--rows")))
    rows.push_back(ParsePositive(s, "rows"));
  const std::vector<std::string> dtypes = SplitList(a.Get("--dtypes"));
  std::vector<std::string> kernels = SplitList(a.Get("--kernels"));
  if (kernels.size() == 1 && kernels[0] == "best") kernels = {""};
  if (kernels.size() == 1 && kernels[0] == "all")
    kernels = QuantKernelTargets();
  DLLM_USAGE_CHECK(!shapes.empty() && !rows.empty() && !dtypes.empty(),
                   "bench quant: empty --shapes, --rows or --dtypes");

  double copy_bw = 0, read_bw = 0;
  for (int w = 0; w < windows; ++w) {
    copy_bw = std::max(copy_bw, MeasureCopyBandwidth());
    read_bw = std::max(read_bw, MeasureReadBandwidth());
  }
  const std::vector<std::string> targets = QuantKernelTargets();
  std::printf(
      "{\"bench\":\"quant_ceiling\",\"threads\":%d,\"copy_gbps\":%.2f,"
      "\"read_gbps\":%.2f,\"best_kernel\":\"%s\"}\n",
      threads, copy_bw, read_bw, targets.front().c_str());
  std::fflush(stdout);
  for (const Shape& sh : shapes)
    for (int64_t M : rows)
      for (const std::string& dt : dtypes) {
        const bool quantized = dt != "F32" && dt != "F16" && dt != "BF16";
        for (const std::string& kern : kernels) {
          if (!quantized && kern != kernels.front()) continue;
          const MatMulBench b = BenchMatMul(
              dt, M, sh.N, sh.K, quantized ? kern : "", seconds, cold, windows);
          std::printf(
              "{\"bench\":\"quant_matmul\",\"dtype\":\"%s\",\"kernel\":\"%s\","
              "\"M\":%lld,\"N\":%lld,\"K\":%lld,\"threads\":%d,"
              "\"weight_mb\":%.2f,\"copies\":%lld,\"reps\":%lld,\"ms\":%.4f,"
              "\"gbps\":%.2f,\"gflops\":%.1f,\"ratio_to_copy_bw\":%.3f,"
              "\"ratio_to_read_bw\":%.3f,\"rel_err_vs_f32\":%.5f,"
              "\"rel_err_act\":%.5f}\n",
              b.dtype.c_str(), b.kernel.c_str(), (long long)b.M, (long long)b.N,
              (long long)b.K, threads, b.weight_bytes / 1e6,
              (long long)b.copies, (long long)b.reps, b.ms, b.gbps, b.gflops,
              b.gbps / copy_bw, b.gbps / read_bw, b.rel_err, b.rel_err_act);
          std::fflush(stdout);
        }
      }
  return 0;
}

}  // namespace

DLLM_COMMAND("bench quant",
             "time the matmul on quantized weights against memory bandwidth",
             RunBenchQuant);

}  // namespace dllm::cli
