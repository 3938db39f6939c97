// Terminal rendering of a diffusion canvas for --visual: masks dimmed, tokens
// committed this step highlighted, redrawn in place on a TTY.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "dllm/generate.h"

namespace dllm {
class Tokenizer;
}

namespace dllm::cli {

class CanvasView {
 public:
  // `tok` may be null (ids are shown); `out` is usually stderr.
  CanvasView(const Tokenizer* tok, int32_t mask_id, FILE* out);

  // Draws sequence `seq` of the step. On a TTY the previous drawing is
  // replaced; elsewhere each step is printed below the last.
  void Draw(const StepInfo& info, int seq);
  // Leaves the last drawing on screen and moves below it.
  void Finish();

 private:
  std::string Piece(int32_t id) const;
  const Tokenizer* tok_;
  int32_t mask_id_;
  FILE* out_;
  bool tty_, color_;
  int lines_drawn_ = 0;
};

}  // namespace dllm::cli
