// The page `dllm serve` answers at `/`: type a prompt (or chat), pick the
// settings and watch the canvas denoise live (masks dimmed, each step's
// tokens highlighted, as `dllm generate --visual`), then the answer and its
// tokens/s. One static HTML file with its CSS and JavaScript inline, no
// external resources; it uses only the public API (/props, and
// /v1/completions or /v1/chat/completions with "stream" and "diffusing").
#pragma once

namespace dllm::server {

extern const char kWebPage[];

}  // namespace dllm::server
