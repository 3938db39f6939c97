#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "dllm/error.h"

namespace dllm {
namespace {

// Per-thread match data and JIT stack, reused across calls.
struct MatchScratch {
  pcre2_match_data* md = nullptr;
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* ctx = nullptr;
  MatchScratch() {
    md = pcre2_match_data_create(4, nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    if (ctx && stack) pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
  }
};

MatchScratch& Scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

Regex::Regex(const std::string& pattern, bool literal,
             const std::string& source)
    : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  // PCRE2_LITERAL refuses most other options, PCRE2_UCP among them
  // ("invalid option bits"), and a literal has no \w or \d for UCP to
  // change anyway; UTF stays so that matches never split a character.
  uint32_t opts = PCRE2_UTF | PCRE2_NO_UTF_CHECK;
  opts |= literal ? PCRE2_LITERAL : PCRE2_UCP;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                                   pattern.size(), opts, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    Fail(source, ": regex /", pattern, "/ does not compile at offset ", off,
         ": ", reinterpret_cast<const char*>(buf));
  }
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::FindAll(std::string_view s,
                    std::vector<std::pair<uint32_t, uint32_t>>* out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  MatchScratch& sc = Scratch();
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t n = s.size(), pos = 0;
  while (pos <= n) {
    int rc = jit_ ? pcre2_jit_match(code, subject, n, pos, 0, sc.md, sc.ctx)
                  : pcre2_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK,
                                sc.md, sc.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof(buf));
      Fail("pre-tokenizer regex /", pattern_, "/: match failed at byte ", pos,
           ": ", reinterpret_cast<const char*>(buf));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(sc.md);
    size_t a = ov[0], b = ov[1];
    if (b == a) {
      // Empty match: skip one character.
      if (a >= n) break;
      size_t next = a + 1;
      while (next < n && (static_cast<uint8_t>(s[next]) & 0xC0) == 0x80) ++next;
      pos = next;
      continue;
    }
    out->emplace_back(static_cast<uint32_t>(a), static_cast<uint32_t>(b));
    pos = b;
  }
}

}  // namespace dllm
