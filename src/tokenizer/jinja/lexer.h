// The template lexer. It follows @huggingface/jinja's tokenizer step by step
// (rather than Jinja2's) because that is what the Hub renders with, and the
// whitespace a template leaves between tags must come out byte-identical:
// a stray newline changes the prompt and so the model's answer.
#pragma once

#include <string>
#include <vector>

namespace dllm::jinja {

enum class T {
  kText,
  kComment,
  kOpenStmt,
  kCloseStmt,
  kOpenExpr,
  kCloseExpr,
  kOpenParen,
  kCloseParen,
  kOpenCurly,
  kCloseCurly,
  kOpenSquare,
  kCloseSquare,
  kComma,
  kDot,
  kColon,
  kPipe,
  kCompare,
  kAdd,
  kMul,
  kPow,
  kEquals,
  kString,
  kNumber,
  kIdent,
  kUnary
};

struct Tok {
  T type;
  std::string value;
  int line;
};

// Applies lstrip_blocks and trim_blocks, then splits into tokens. Throws
// dllm::Error with the line of a malformed tag or literal.
std::vector<Tok> Lex(const std::string& source);

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace dllm::jinja
