#include "canvas_view.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "dllm/tokenizer.h"

namespace dllm::cli {

CanvasView::CanvasView(const Tokenizer* tok, int32_t mask_id, FILE* out)
    : tok_(tok), mask_id_(mask_id), out_(out) {
  tty_ = isatty(fileno(out)) != 0;
  const char* no_color = std::getenv("NO_COLOR");
  color_ = tty_ && !(no_color && *no_color);
}

std::string CanvasView::Piece(int32_t id) const {
  if (!tok_) return std::to_string(id) + " ";
  std::string s = SanitizeUtf8(tok_->Decode(std::vector<int32_t>{id}));
  if (!tty_) {
    // One line per step off a TTY: keep newlines visible.
    std::string o;
    for (char ch : s) o += ch == '\n' ? std::string("\\n") : std::string(1, ch);
    return o;
  }
  return s;
}

void CanvasView::Draw(const StepInfo& info, int seq) {
  const Canvas& c = (*info.canvases)[size_t(seq)];
  const auto& now = (*info.committed)[size_t(seq)];
  int masked = 0;
  for (int i = c.prompt_len; i < c.gen_end; ++i) masked += c.masked[size_t(i)];
  std::string text;
  for (int i = c.prompt_len; i < int(c.ids.size()); ++i) {
    if (i == c.gen_end)
      text += color_ ? "\x1b[2m" : "", text += "|",
          text += color_ ? "\x1b[0m" : "";
    if (i < c.gen_end && c.masked[size_t(i)]) {
      text += color_ ? "\x1b[2m\xe2\x96\x91\x1b[0m"
                     : "_";  // a dim light shade block
      continue;
    }
    bool fresh = std::binary_search(now.begin(), now.end(), i);
    std::string p = Piece(c.ids[size_t(i)]);
    if (fresh && color_)
      text += "\x1b[1;7m" + p + "\x1b[0m";
    else
      text += p;
  }
  char head[128];
  std::snprintf(head, sizeof(head), "step %d/%d | masked %d | +%zu",
                info.step + 1, info.total_steps, masked, now.size());
  if (!tty_) {
    std::fprintf(out_, "%s | %s\n", head, text.c_str());
    return;
  }
  // Count the terminal lines this drawing takes, to replace it next time.
  struct winsize ws {};
  int width = ioctl(fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0
                  ? ws.ws_col
                  : 80;
  std::string frame = std::string(color_ ? "\x1b[1m" : "") + head +
                      (color_ ? "\x1b[0m" : "") + "\n" + text + "\n";
  int lines = 0, col = 0;
  bool esc = false;
  for (unsigned char ch : frame) {
    if (esc) {
      if (ch == 'm') esc = false;
      continue;
    }
    if (ch == 0x1b) {
      esc = true;
      continue;
    }
    if (ch == '\n') {
      ++lines, col = 0;
      continue;
    }
    if ((ch & 0xc0) == 0x80) continue;  // UTF-8 continuation byte
    if (++col > width) ++lines, col = 1;
  }
  if (lines_drawn_ > 0) std::fprintf(out_, "\x1b[%dA\x1b[J", lines_drawn_);
  std::fputs(frame.c_str(), out_);
  std::fflush(out_);
  lines_drawn_ = lines;
}

void CanvasView::Finish() { lines_drawn_ = 0; }

}  // namespace dllm::cli
