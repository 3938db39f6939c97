// Chat templates come from strangers' model folders: every input here once
// crashed the engine (stack overflow) or ran for seconds to minutes. Each
// must now end quickly in a dllm::Error that names the limit it hit.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <string>

#include "dllm/chat_template.h"
#include "dllm/error.h"

namespace dllm {
namespace {

std::string Repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * n);
  for (int k = 0; k < n; ++k) out += s;
  return out;
}

// Parses and renders `source`; returns the error message ("" if none).
std::string ErrorOf(const std::string& source) {
  try {
    ChatTemplate::FromString(source).Apply(
        R"([{"role":"user","content":"hi"}])", true);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void ExpectLimit(const std::string& source, const std::string& limit) {
  std::string err = ErrorOf(source);
  EXPECT_NE(err.find(limit), std::string::npos)
      << "error: '" << err << "', wanted one naming '" << limit << "'";
}

TEST(ChatTemplateLimits, RecursiveMacro) {
  ExpectLimit("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
              "calls nested deeper than");
}

TEST(ChatTemplateLimits, NestedIf) {
  ExpectLimit(Repeat("{% if true %}", 3000) + "x" + Repeat("{% endif %}", 3000),
              "nesting deeper than 256");
}

TEST(ChatTemplateLimits, NestedParentheses) {
  ExpectLimit("{{ " + Repeat("(", 10000) + "1" + Repeat(")", 10000) + " }}",
              "nesting deeper than 256");
}

TEST(ChatTemplateLimits, OpenBrackets) {
  ExpectLimit("{{ " + Repeat("[", 100000) + " }}", "nesting deeper than 256");
}

TEST(ChatTemplateLimits, NestedFor) {
  ExpectLimit(
      Repeat("{% for x in [1] %}", 5000) + "x" + Repeat("{% endfor %}", 5000),
      "nesting deeper than 256");
}

TEST(ChatTemplateLimits, ManyNot) {
  ExpectLimit("{{ " + Repeat("not ", 200000) + "true }}",
              "nesting deeper than 256");
}

TEST(ChatTemplateLimits, LongFilterChain) {
  ExpectLimit("{{ 'a'" + Repeat("|upper", 200000) + " }}",
              "nesting deeper than 256");
}

TEST(ChatTemplateLimits, LongMemberAndOperatorChains) {
  ExpectLimit("{{ a" + Repeat(".b", 100000) + " }}", "nesting deeper than 256");
  ExpectLimit("{{ 1" + Repeat(" + 1", 100000) + " }}",
              "nesting deeper than 256");
}

TEST(ChatTemplateLimits, NestingErrorNamesTheLine) {
  std::string err =
      ErrorOf("\n\n{{ " + Repeat("(", 1000) + "1" + Repeat(")", 1000) + " }}");
  EXPECT_NE(err.find("line 3: nesting deeper than 256"), std::string::npos)
      << err;
}

TEST(ChatTemplateLimits, HugeRangeIsRefusedBeforeAllocating) {
  ExpectLimit("{{ range(50000000)|length }}", "range too large");
  ExpectLimit("{{ range(0, 9223372036854775807)|length }}", "range too large");
}

// ASan reserves terabytes of address space, so an RLIMIT_AS cap is for
// plain builds only.
#if defined(__SANITIZE_ADDRESS__)
#define DLLM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DLLM_TEST_ASAN 1
#endif
#endif

#ifndef DLLM_TEST_ASAN
// In a child capped at 768 MiB of address space: building the list first
// (1.8 GB for 50M items) and checking after would die of bad_alloc.
void RangeUnderMemoryCap() {
  rlimit lim;
  lim.rlim_cur = lim.rlim_max = size_t{768} << 20;
  setrlimit(RLIMIT_AS, &lim);
  std::string err = ErrorOf("{{ range(50000000)|length }}");
  std::_Exit(err.find("range too large") != std::string::npos ? 0 : 1);
}

TEST(ChatTemplateLimitsDeathTest, HugeRangeAllocatesNothing) {
  EXPECT_EXIT(RangeUnderMemoryCap(), ::testing::ExitedWithCode(0), "");
}
#endif

TEST(ChatTemplateLimits, LongNestedLoop) {
  ExpectLimit(
      "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
      "{% endfor %}",
      "steps of work");
}

TEST(ChatTemplateLimits, OutputSize) {
  // Doubling a string 30 times would reach 1 GiB.
  ExpectLimit(
      "{% set ns = namespace(s='x') %}{% for i in range(30) %}"
      "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
      "longer than 16 MiB");
  ExpectLimit("{% for i in range(100000) %}" + Repeat("0123456789", 20) +
                  "{% endfor %}",
              "output longer than 16 MiB");
}

TEST(ChatTemplateLimits, SelfContainingList) {
  // A list appended to itself: printing it would never end.
  ExpectLimit("{% set x = [] %}{% set _ = x.append(x) %}{{ x }}",
              "nested deeper than");
}

TEST(ChatTemplateLimits, DeeplyNestedValue) {
  ExpectLimit(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}"
      "{% set ns.x = [ns.x] %}{% endfor %}",
      "value nested deeper than");
}

TEST(ChatTemplateLimits, LongAppendChainIsFreedWithoutRecursion) {
  // Each list holds the next: destroying the head naively recurses 200,000
  // levels deep.
  ChatTemplate t = ChatTemplate::FromString(
      "{% set ns = namespace(cur=[]) %}{% set head = ns.cur %}"
      "{% for i in range(200000) %}{% set next = [] %}"
      "{% set _ = ns.cur.append(next) %}{% set ns.cur = next %}{% endfor %}"
      "done");
  EXPECT_EQ(t.Apply("[]", false), "done");
}

TEST(ChatTemplateLimits, MacroEscapingItsLoopStaysValid) {
  // The macro is defined in a loop's scope and called after the loop ended.
  ChatTemplate t = ChatTemplate::FromString(
      "{% set ns = namespace(f=none) %}{% for i in [7] %}"
      "{% macro g() %}[{{ i }}]{% endmacro %}{% set ns.f = g %}{% endfor %}"
      "{{ ns.f() }}");
  EXPECT_EQ(t.Apply("[]", false), "[7]");
}

TEST(ChatTemplateLimits, DeepContextJson) {
  std::string deep = Repeat("[", 100000) + Repeat("]", 100000);
  ChatTemplate t = ChatTemplate::FromString("{{ x|length }}");
  try {
    t.Render("{\"x\": " + deep + "}");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than"),
              std::string::npos)
        << e.what();
  }
}

TEST(ChatTemplateLimits, BreakOutsideALoop) {
  ExpectLimit("a{% break %}b", "outside a loop");
  ExpectLimit("{% macro f() %}{% continue %}{% endmacro %}{{ f() }}",
              "outside a loop");
}

TEST(ChatTemplateLimits, RealisticNestingStillWorks) {
  // Twenty nested blocks and parentheses are far inside the bounds.
  std::string src = Repeat("{% if true %}", 20) + "{{ " + Repeat("(", 20) +
                    "1 + 2" + Repeat(")", 20) + " }}" +
                    Repeat("{% endif %}", 20);
  EXPECT_EQ(ChatTemplate::FromString(src).Apply("[]", false), "3");
  EXPECT_EQ(ChatTemplate::FromString(
                "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ n }}"
                "{% endif %}{% endmacro %}{{ f(50)|length }}")
                .Apply("[]", false),
            "91");
}

}  // namespace
}  // namespace dllm
