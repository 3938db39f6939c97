// The unbiased pass@k estimator, against values worked out by hand from
// 1 - C(n-c, k) / C(n, k).
#include <gtest/gtest.h>

#include "dllm/code_eval.h"
#include "test_util.h"

namespace dllm {
namespace {

TEST(EvalPassAtK, MatchesTheBinomialFormula) {
  EXPECT_DOUBLE_EQ(PassAtK(1, 1, 1), 1.0);
  EXPECT_DOUBLE_EQ(PassAtK(1, 0, 1), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(10, 3, 1), 0.3);  // pass@1 = c / n
  // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
  EXPECT_DOUBLE_EQ(PassAtK(5, 2, 2), 0.7);
  // n=10, c=1, k=5: 1 - C(9,5)/C(10,5) = 1 - 126/252.
  EXPECT_DOUBLE_EQ(PassAtK(10, 1, 5), 0.5);
  // n=200, c=10, k=100: 1 - C(190,100)/C(200,100), computed in Python with
  // exact integers.
  EXPECT_NEAR(PassAtK(200, 10, 100), 0.99922897, 1e-8);
  // Fewer failures than k: some sample in any k is right.
  EXPECT_DOUBLE_EQ(PassAtK(10, 8, 3), 1.0);
  EXPECT_DOUBLE_EQ(PassAtK(10, 0, 10), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(10, 10, 10), 1.0);
}

TEST(EvalPassAtK, RejectsImpossibleCounts) {
  EXPECT_DLLM_ERROR(PassAtK(5, 6, 1), "0 <= c <= n");
  EXPECT_DLLM_ERROR(PassAtK(5, 1, 6), "1 <= k <= n");
  EXPECT_DLLM_ERROR(PassAtK(0, 0, 1), "got n=0");
}

}  // namespace
}  // namespace dllm
