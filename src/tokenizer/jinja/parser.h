// Recursive-descent parser from tokens to the syntax tree, with the
// precedence of @huggingface/jinja's parser.
#pragma once

#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace dllm::jinja {

// The program's top-level statements. Throws dllm::Error naming the line of
// a syntax error or of nesting deeper than kMaxParseDepth.
std::vector<NodeP> Parse(std::vector<Tok> toks);

}  // namespace dllm::jinja
