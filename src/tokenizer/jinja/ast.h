// The syntax tree of a parsed template. One node type for statements and
// expressions keeps the parser and interpreter small; what the fields hold
// depends on `kind` (see the comments on Node).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace dllm::jinja {

enum class N {
  // statements
  kText,
  kOutput,
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kBreak,
  kContinue,
  kNoop,
  // expressions
  kLiteral,
  kIdent,
  kMember,
  kSlice,
  kCall,
  kFilter,
  kTest,
  kUnary,
  kBinary,
  kTernary,
  kSelect,
  kList,
  kTuple,
  kDict,
  kKwarg
};

struct Node {
  N kind;
  int line = 0;
  std::string str;    // identifier / operator / filter or test name / text
  Value value;        // literal
  bool flag = false;  // computed member / negated test
  std::vector<std::unique_ptr<Node>> kids;
  std::vector<std::unique_ptr<Node>> body, alt;
};
using NodeP = std::unique_ptr<Node>;

inline NodeP MakeNode(N kind, int line) {
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->line = line;
  return n;
}

}  // namespace dllm::jinja
