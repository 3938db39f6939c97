// Renders a parsed template: a tree-walking interpreter over Value, with
// @huggingface/jinja's semantics (what the Hub shows for a model's chat
// template), under the bounds of limits.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dllm/error.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace dllm::jinja {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  Scope* parent = nullptr;
  // A macro defined here (or in a scope below) holds a pointer to this
  // scope, and the macro may escape the block (`{% set ns.f = f %}`), so a
  // captured scope lives until the render ends instead of the block.
  bool captured = false;
  Value* Lookup(const std::string& name) {
    for (Scope* s = this; s; s = s->parent) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

// {% break %} / {% continue %} unwind to the innermost loop as exceptions:
// they may sit deep inside if-blocks, and loops are rare enough in
// templates that the cost does not matter.
struct BreakSignal {};
struct ContinueSignal {};

class Interp {
 public:
  Interp();
  ~Interp();
  Interp(const Interp&) = delete;
  Interp& operator=(const Interp&) = delete;

  std::string Run(const std::vector<NodeP>& body, Scope* scope);

 private:
  [[noreturn]] static void Error(const Node& n, const std::string& what) {
    Fail("chat template line ", n.line, ": ", what);
  }

  // Bounds (limits.h). Exec and Eval are the only recursive entry points,
  // so their guards bound the render's stack depth and count its work.
  struct Nest {
    Nest(Interp* in, const Node& n);
    ~Nest() { --in->depth_; }
    Interp* in;
  };
  void Step(const Node& n, int64_t cost = 1);
  // Keeps a list or mapping changed in place alive until the render ends
  // (see Value::depth): emptying it then breaks the cycles that
  // `x.append(x)` makes, which reference counting alone would leak.
  void Mutated(const Value& container);
  std::unique_ptr<Scope> NewScope(Scope* parent);
  void EndScope(std::unique_ptr<Scope> s);

  void Block(const std::vector<NodeP>& body, Scope* scope, std::string* out);
  void Assign(const Node& target, const Value& v, Scope* scope);
  void Exec(const Node& n, Scope* scope, std::string* out);
  void ExecNode(const Node& n, Scope* scope, std::string* out);
  void ExecFor(const Node& n, Scope* scope, std::string* out);
  void DefineMacro(const Node& n, Scope* scope);
  void EvalArgs(const Node& n, size_t from, Scope* scope,
                std::vector<Value>* args, Kwargs* kwargs);
  Value Eval(const Node& n, Scope* scope);
  Value EvalNode(const Node& n, Scope* scope);
  Value Binary(const Node& n, Scope* scope);
  Value Member(const Node& n, const Value& obj, const Value& key);
  Value Call(const Node& n, Scope* scope);
  Value Range(const Node& n, const std::vector<Value>& args);

  // builtins.cc
  bool RunTest(const Node& n, const std::string& name, const Value& v,
               const std::vector<Value>& args);
  bool Contains(const Node& n, const Value& container, const Value& x);
  // Bound methods of strings, mappings and lists.
  Value Method(const Node& n, const Value& obj, const std::string& name);
  // filters.cc
  Value Filter(const Node& n, Scope* scope);

  int depth_ = 0;
  int64_t steps_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::vector<std::unique_ptr<Scope>> kept_scopes_;
  std::unordered_set<const void*> mutated_seen_;
  std::vector<Value> mutated_;
};

// Helpers shared by the interpreter's files (builtins.cc).
const Value* Kw(const Kwargs& kw, const char* name);
// Positional argument i, else keyword `name`, else `def`.
Value Arg(const std::vector<Value>& args, const Kwargs& kw, size_t i,
          const char* name, Value def);
bool LooseEq(const Value& a, const Value& b);
bool StrictEq(const Value& a, const Value& b);
int64_t NormIndex(int64_t i, int64_t len);
// The UTF-8 characters of s (an ill-formed byte is one "character").
std::vector<std::string> Chars(const std::string& s);
size_t CharCount(const std::string& s);
std::string StripChars(const std::string& s, const Value& chars, bool left,
                       bool right);
std::string Title(const std::string& s);
std::string Lower(std::string s);
std::string Upper(std::string s);
std::string ReplaceAll(const std::string& s, const std::string& from,
                       const std::string& to, int64_t count);

}  // namespace dllm::jinja
