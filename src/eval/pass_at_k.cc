#include "dllm/code_eval.h"
#include "dllm/error.h"

namespace dllm {

// 1 - C(n-c, k) / C(n, k) as the product over i in (n-c, n] of (1 - k/i),
// which never forms the (huge) binomials.
double PassAtK(int64_t n, int64_t c, int64_t k) {
  DLLM_CHECK(n >= 1 && c >= 0 && c <= n && k >= 1 && k <= n,
             "pass@k needs 1 <= k <= n and 0 <= c <= n; got n=", n, " c=", c,
             " k=", k);
  if (n - c < k) return 1.0;
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) fail *= 1.0 - double(k) / double(i);
  return 1.0 - fail;
}

}  // namespace dllm
