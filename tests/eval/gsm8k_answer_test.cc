// GSM8K answer extraction on text shaped like real model output.
#include <gtest/gtest.h>

#include "dllm/code_eval.h"

namespace dllm {
namespace {

TEST(EvalGsm8kAnswer, ExtractsTheFinalNumber) {
  // The reference layout: the number after "####".
  EXPECT_EQ(ExtractGsm8kAnswer("9 * 2 = $<<9*2=18>>18 every day.\n#### 18"),
            "18");
  EXPECT_EQ(ExtractGsm8kAnswer("#### 72"), "72");
  EXPECT_EQ(ExtractGsm8kAnswer("#### 1,234,567\n"), "1234567");
  // "####" wins over numbers after it in later prose.
  EXPECT_EQ(ExtractGsm8kAnswer("3 + 4 = 7\n#### 7\nI used 2 steps."), "7");
  // Otherwise the last number, "$", grouping commas and the period gone.
  EXPECT_EQ(ExtractGsm8kAnswer("16 - 3 - 4 = 9 eggs, 9 * 2 = 18, so the "
                               "answer is $1,234."),
            "1234");
  EXPECT_EQ(ExtractGsm8kAnswer("The total is 18 dollars.\n"), "18");
  EXPECT_EQ(ExtractGsm8kAnswer("The answer is: 0.5"), "0.5");
  EXPECT_EQ(ExtractGsm8kAnswer("Each costs $3.75."), "3.75");
  EXPECT_EQ(ExtractGsm8kAnswer("The temperature fell to -12 degrees."), "-12");
  EXPECT_EQ(ExtractGsm8kAnswer("She owes -$40."), "-40");
  EXPECT_EQ(ExtractGsm8kAnswer("So 10-4=6"), "6");
  EXPECT_EQ(ExtractGsm8kAnswer("We get 20-5, which is 15"), "15");
  EXPECT_EQ(ExtractGsm8kAnswer("\\boxed{42}"), "42");
  // A list "3, 4" is two numbers, not 34; "1,23" is not a grouping.
  EXPECT_EQ(ExtractGsm8kAnswer("Pick from 3, 4"), "4");
  EXPECT_EQ(ExtractGsm8kAnswer("1,23"), "23");
  EXPECT_EQ(ExtractGsm8kAnswer("No idea."), "");
  EXPECT_EQ(ExtractGsm8kAnswer(""), "");
  EXPECT_EQ(ExtractGsm8kAnswer("#### "), "");
}

TEST(EvalGsm8kAnswer, MatchesNumbersNotSpellings) {
  EXPECT_TRUE(Gsm8kAnswersMatch("18", "18"));
  EXPECT_TRUE(Gsm8kAnswersMatch("18.00", "18"));
  EXPECT_TRUE(Gsm8kAnswersMatch("-3", "-3"));
  EXPECT_FALSE(Gsm8kAnswersMatch("-3", "3"));
  EXPECT_FALSE(Gsm8kAnswersMatch("18.5", "18"));
  EXPECT_FALSE(Gsm8kAnswersMatch("", "18"));
  EXPECT_FALSE(Gsm8kAnswersMatch("", ""));
}

}  // namespace
}  // namespace dllm
