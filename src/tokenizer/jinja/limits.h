// Bounds on what a chat template may cost. Templates ship in strangers' model
// folders and run inside servers, so a hostile or broken one must end in a
// dllm::Error, never in a stack overflow, an endless loop or an OOM. The
// bounds sit far above what real chat templates need (nesting under 20,
// a few thousand steps and kilobytes per conversation).
#pragma once

#include <cstddef>
#include <cstdint>

namespace dllm::jinja {

// Nesting of the template source: one counter in the parser for every
// recursive production (statement blocks, parentheses, lists, `not`, ...)
// and for every link of a left-deep chain (`a|f|f|f`, `a.b.c`, `a+b+c`),
// since the interpreter and the destructors walk the tree recursively.
inline constexpr int kMaxParseDepth = 256;
// Nesting of Exec/Eval calls at render time: bounds macro recursion, which
// the parser cannot see.
inline constexpr int kMaxRenderDepth = 1024;
// Nesting of values (lists in lists, mappings in mappings): ToJson and
// FromJson recurse, and a list that contains itself would never end.
inline constexpr int kMaxValueDepth = 512;
// Size of the rendered text and of any single string a template builds.
inline constexpr size_t kMaxOutputBytes = size_t{16} << 20;
// Work units per render: statements and expressions evaluated, loop
// iterations and list elements created. Real templates use thousands.
inline constexpr int64_t kMaxSteps = 10'000'000;
// Wall time per render, the last resort for work the step count misses
// (e.g. string copies inside one filter).
inline constexpr double kMaxRenderSeconds = 10.0;

}  // namespace dllm::jinja
