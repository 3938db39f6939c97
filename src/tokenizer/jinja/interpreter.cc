#include "tokenizer/jinja/interpreter.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/limits.h"
#include "tokenizer/utf8.h"

namespace dllm::jinja {

Interp::Interp() : start_(std::chrono::steady_clock::now()) {}

Interp::~Interp() {
  // Empty the containers changed in place one at a time: each may hold the
  // next link of a long chain built by append, and letting the last
  // reference go would free the chain recursively.
  for (Value& v : mutated_) {
    if (v.kind == Value::kArray) v.arr->clear();
    if (v.kind == Value::kObject) v.obj->clear();
  }
}

Interp::Nest::Nest(Interp* in, const Node& n) : in(in) {
  if (in->depth_ >= kMaxRenderDepth)
    Error(n, StrCat("calls nested deeper than ", kMaxRenderDepth,
                    " (a macro that calls itself?)"));
  ++in->depth_;
}

void Interp::Step(const Node& n, int64_t cost) {
  int64_t before = steps_;
  steps_ += cost;
  if (steps_ > kMaxSteps)
    Error(n, StrCat("more than ", kMaxSteps,
                    " steps of work (a loop too long, or nested too deep?)"));
  // Reading the clock every 256 steps costs nothing measurable.
  if ((before >> 8) != (steps_ >> 8)) {
    std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start_;
    if (took.count() > kMaxRenderSeconds)
      Error(n, StrCat("rendering took longer than ", kMaxRenderSeconds, " s"));
  }
}

void Interp::Mutated(const Value& c) {
  const void* p = c.kind == Value::kArray
                      ? static_cast<const void*>(c.arr.get())
                      : static_cast<const void*>(c.obj.get());
  if (mutated_seen_.insert(p).second) mutated_.push_back(c);
}

std::unique_ptr<Scope> Interp::NewScope(Scope* parent) {
  auto s = std::make_unique<Scope>();
  s->parent = parent;
  return s;
}

void Interp::EndScope(std::unique_ptr<Scope> s) {
  if (s->captured) kept_scopes_.push_back(std::move(s));
}

std::string Interp::Run(const std::vector<NodeP>& body, Scope* scope) {
  std::string out;
  // The parser does not check that break/continue sit inside a loop; one
  // outside must still end as a dllm::Error, not an unknown exception.
  try {
    Block(body, scope, &out);
  } catch (const BreakSignal&) {
    Fail("chat template: {% break %} outside a loop");
  } catch (const ContinueSignal&) {
    Fail("chat template: {% continue %} outside a loop");
  }
  return out;
}

void Interp::Block(const std::vector<NodeP>& body, Scope* scope,
                   std::string* out) {
  for (const NodeP& st : body) Exec(*st, scope, out);
}

void Interp::Assign(const Node& target, const Value& v, Scope* scope) {
  if (target.kind == N::kIdent) {
    scope->vars[target.str] = v;
  } else if (target.kind == N::kTuple) {
    if (v.kind != Value::kArray || v.arr->size() != target.kids.size())
      Error(target, "cannot unpack: wrong number of values");
    for (size_t k = 0; k < target.kids.size(); ++k)
      Assign(*target.kids[k], (*v.arr)[k], scope);
  } else if (target.kind == N::kMember && !target.flag) {
    Value obj = Eval(*target.kids[0], scope);
    if (obj.kind != Value::kObject)
      Error(target, "can only set attributes of a namespace or mapping");
    Mutated(obj);
    obj.Set(target.str, v);
  } else {
    Error(target, "invalid assignment target");
  }
}

void Interp::Exec(const Node& n, Scope* scope, std::string* out) {
  Nest nest(this, n);
  Step(n);
  ExecNode(n, scope, out);
  CheckSize(out->size(), "output");
}

void Interp::ExecNode(const Node& n, Scope* scope, std::string* out) {
  switch (n.kind) {
    case N::kText:
      *out += n.str;
      return;
    case N::kOutput: {
      Value v = Eval(*n.kids[0], scope);
      if (v.kind != Value::kNone && v.kind != Value::kUndefined)
        *out += ToStr(v);
      return;
    }
    case N::kNoop:
      return;
    case N::kIf:
      if (Truthy(Eval(*n.kids[0], scope)))
        Block(n.body, scope, out);
      else
        Block(n.alt, scope, out);
      return;
    case N::kSet:
      Assign(*n.kids[0], Eval(*n.kids[1], scope), scope);
      return;
    case N::kSetBlock: {
      std::string s;
      Block(n.body, scope, &s);
      Assign(*n.kids[0], Value::Str(s), scope);
      return;
    }
    case N::kBreak:
      throw BreakSignal{};
    case N::kContinue:
      throw ContinueSignal{};
    case N::kMacro:
      DefineMacro(n, scope);
      return;
    case N::kFor:
      ExecFor(n, scope, out);
      return;
    default: {
      Value v = Eval(n, scope);
      if (v.kind != Value::kNone && v.kind != Value::kUndefined)
        *out += ToStr(v);
    }
  }
}

void Interp::DefineMacro(const Node& n, Scope* scope) {
  const Node* macro = &n;
  Scope* def_scope = scope;
  // The macro keeps def_scope (and so its parents) by pointer.
  for (Scope* s = scope; s && !s->captured; s = s->parent) s->captured = true;
  scope->vars[n.str] = Value::Fn(
      [this, macro, def_scope](std::vector<Value>& args, Kwargs& kwargs) {
        std::unique_ptr<Scope> local = NewScope(def_scope);
        size_t k = 0;
        for (const NodeP& p : macro->kids) {
          Value v;
          if (k < args.size()) {
            v = args[k];
          } else {
            bool found = false;
            for (auto& [kn, kv] : kwargs)
              if (kn == p->str) {
                v = kv;
                found = true;
              }
            if (!found && p->kind == N::kKwarg)
              v = Eval(*p->kids[0], local.get());
          }
          local->vars[p->str] = v;
          ++k;
        }
        std::string s;
        Block(macro->body, local.get(), &s);
        EndScope(std::move(local));
        return Value::Str(s);
      });
}

void Interp::ExecFor(const Node& n, Scope* scope, std::string* out) {
  const Node* iter_node = n.kids[1].get();
  const Node* cond = nullptr;
  // `for x in xs if cond`: the filter runs before the loop, so loop.length
  // and loop.last count only the items kept, as in Jinja.
  if (iter_node->kind == N::kSelect) {
    cond = iter_node->kids[1].get();
    iter_node = iter_node->kids[0].get();
  }
  Value it = Eval(*iter_node, scope);
  Array items;
  if (it.kind == Value::kArray) {
    Step(n, static_cast<int64_t>(it.arr->size()));
    items = *it.arr;
  } else if (it.kind == Value::kObject) {
    Step(n, static_cast<int64_t>(it.obj->size()));
    for (const auto& [k, v] : *it.obj) items.push_back(Value::Str(k));
  } else if (it.kind == Value::kString) {
    size_t i = 0;
    while (i < it.s.size()) {
      uint32_t cp;
      int bad;
      int len = utf8::Decode(it.s, i, &cp, &bad);
      if (!len) len = bad;
      items.push_back(Value::Str(it.s.substr(i, len)));
      Step(n);
      i += len;
    }
  } else if (it.kind == Value::kUndefined || it.kind == Value::kNone) {
    Error(n, StrCat("cannot iterate over ", KindName(it)));
  } else {
    Error(n, StrCat("cannot iterate over a ", KindName(it)));
  }
  if (cond) {
    Array kept;
    for (const Value& v : items) {
      Step(n);
      Scope s;
      s.parent = scope;
      Assign(*n.kids[0], v, &s);
      if (Truthy(Eval(*cond, &s))) kept.push_back(v);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    Block(n.alt, scope, out);
    return;
  }
  const int64_t len = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < len; ++k) {
    // The loop object costs about as much as ten simple expressions.
    Step(n, 10);
    std::unique_ptr<Scope> s = NewScope(scope);
    Object loop = {{"index", Value::Int(k + 1)},
                   {"index0", Value::Int(k)},
                   {"revindex", Value::Int(len - k)},
                   {"revindex0", Value::Int(len - k - 1)},
                   {"first", Value::Bool(k == 0)},
                   {"last", Value::Bool(k == len - 1)},
                   {"length", Value::Int(len)},
                   {"previtem", k > 0 ? items[k - 1] : Value()},
                   {"nextitem", k + 1 < len ? items[k + 1] : Value()}};
    s->vars["loop"] = Value::Obj(std::move(loop));
    Assign(*n.kids[0], items[k], s.get());
    bool stop = false;
    try {
      Block(n.body, s.get(), out);
    } catch (const ContinueSignal&) {
    } catch (const BreakSignal&) {
      stop = true;
    }
    EndScope(std::move(s));
    if (stop) break;
  }
}

void Interp::EvalArgs(const Node& n, size_t from, Scope* scope,
                      std::vector<Value>* args, Kwargs* kwargs) {
  for (size_t k = from; k < n.kids.size(); ++k) {
    const Node& a = *n.kids[k];
    if (a.kind == N::kKwarg)
      kwargs->emplace_back(a.str, Eval(*a.kids[0], scope));
    else
      args->push_back(Eval(a, scope));
  }
}

Value Interp::Binary(const Node& n, Scope* scope) {
  const std::string& op = n.str;
  Value l = Eval(*n.kids[0], scope);
  if (op == "and") return Truthy(l) ? Eval(*n.kids[1], scope) : l;
  if (op == "or") return Truthy(l) ? l : Eval(*n.kids[1], scope);
  Value r = Eval(*n.kids[1], scope);
  if (op == "==") return Value::Bool(LooseEq(l, r));
  if (op == "!=") return Value::Bool(!LooseEq(l, r));
  if (op == "in" || op == "not in") {
    if (r.kind == Value::kUndefined) return Value::Bool(op == "not in");
    if (l.kind == Value::kUndefined || l.kind == Value::kNone ||
        r.kind == Value::kNone)
      Error(n, StrCat("cannot apply '", op, "' to ", KindName(l), " and ",
                      KindName(r)));
    bool c = Contains(n, r, l);
    return Value::Bool(op == "in" ? c : !c);
  }
  if (l.kind == Value::kUndefined || r.kind == Value::kUndefined)
    Error(n, StrCat("cannot apply '", op, "' to an undefined value"));
  if (l.kind == Value::kNone || r.kind == Value::kNone)
    Error(n, StrCat("cannot apply '", op, "' to none"));
  if (op == "~") return Value::Str(ToStr(l) + ToStr(r));
  bool ln = l.numeric() || (op == "**" && l.kind == Value::kBool);
  bool rn = r.numeric() || (op == "**" && r.kind == Value::kBool);
  if (ln && rn) {
    bool is_float = l.kind == Value::kFloat || r.kind == Value::kFloat;
    double a = l.num(), b = r.num();
    if (op == "+" || op == "-" || op == "*") {
      if (!is_float) {
        int64_t x = op == "+" ? l.i + r.i : op == "-" ? l.i - r.i : l.i * r.i;
        return Value::Int(x);
      }
      return Value::Float(op == "+" ? a + b : op == "-" ? a - b : a * b);
    }
    if (op == "/") return Value::Float(a / b);
    if (op == "//") {
      if (!is_float) {
        if (r.i == 0) Error(n, "integer division by zero");
        return Value::Int(static_cast<int64_t>(std::floor(a / b)));
      }
      return Value::Float(std::floor(a / b));
    }
    if (op == "%") {
      if (!is_float) {
        if (r.i == 0) Error(n, "integer modulo by zero");
        return Value::Int(l.i % r.i);
      }
      return Value::Float(std::fmod(a, b));
    }
    if (op == "**") {
      double res = std::pow(a, b);
      if (is_float || b < 0) return Value::Float(res);
      return Value::Int(static_cast<int64_t>(res));
    }
    if (op == "<") return Value::Bool(a < b);
    if (op == ">") return Value::Bool(a > b);
    if (op == "<=") return Value::Bool(a <= b);
    if (op == ">=") return Value::Bool(a >= b);
  }
  if (l.kind == Value::kArray && r.kind == Value::kArray && op == "+") {
    Step(n, static_cast<int64_t>(l.arr->size() + r.arr->size()));
    Array a = *l.arr;
    a.insert(a.end(), r.arr->begin(), r.arr->end());
    return Value::Arr(std::move(a));
  }
  if ((l.kind == Value::kString || r.kind == Value::kString) && op == "+")
    return Value::Str(ToStr(l) + ToStr(r));
  if (l.kind == Value::kString && r.kind == Value::kString) {
    if (op == "<") return Value::Bool(l.s < r.s);
    if (op == ">") return Value::Bool(l.s > r.s);
    if (op == "<=") return Value::Bool(l.s <= r.s);
    if (op == ">=") return Value::Bool(l.s >= r.s);
  }
  Error(n, StrCat("unsupported operator '", op, "' between ", KindName(l),
                  " and ", KindName(r)));
}

Value Interp::Member(const Node& n, const Value& obj, const Value& key) {
  if (key.kind == Value::kString) {
    if (obj.kind == Value::kObject) {
      if (const Value* v = obj.Find(key.s)) return *v;
      if (!obj.is_namespace) {
        Value m = Method(n, obj, key.s);
        if (m.kind != Value::kUndefined) return m;
      }
      return Value();
    }
    if (obj.kind == Value::kString || obj.kind == Value::kArray)
      return Method(n, obj, key.s);
    if (obj.kind == Value::kUndefined) return Value();
    return Value();
  }
  if (key.kind == Value::kInt) {
    if (obj.kind == Value::kArray) {
      int64_t i = NormIndex(key.i, static_cast<int64_t>(obj.arr->size()));
      if (i < 0 || i >= static_cast<int64_t>(obj.arr->size())) return Value();
      return (*obj.arr)[i];
    }
    if (obj.kind == Value::kString) {
      Step(n, static_cast<int64_t>(obj.s.size() / 64));
      std::vector<std::string> chars = Chars(obj.s);
      int64_t i = NormIndex(key.i, static_cast<int64_t>(chars.size()));
      if (i < 0 || i >= static_cast<int64_t>(chars.size())) return Value();
      return Value::Str(chars[i]);
    }
    if (obj.kind == Value::kObject) {
      if (const Value* v = obj.Find(std::to_string(key.i))) return *v;
    }
    return Value();
  }
  return Value();
}

Value Interp::Call(const Node& n, Scope* scope) {
  const Node& callee = *n.kids[0];
  std::vector<Value> args;
  Kwargs kw;
  EvalArgs(n, 1, scope, &args, &kw);
  if (callee.kind == N::kIdent) {
    Value* user = scope->Lookup(callee.str);
    if (user && user->kind == Value::kFunc) return (*user->fn)(args, kw);
    const std::string& name = callee.str;
    if (name == "raise_exception") {
      Fail("chat template raised an exception: ",
           args.empty() ? "" : ToStr(args[0]));
    }
    if (name == "namespace") {
      Value ns = Value::Obj();
      ns.is_namespace = true;
      if (!args.empty() && args[0].kind == Value::kObject)
        for (auto& [k, x] : *args[0].obj) ns.Set(k, x);
      for (auto& [k, x] : kw) ns.Set(k, x);
      return ns;
    }
    if (name == "range") return Range(n, args);
    if (name == "strftime_now") {
      std::string fmt = args.empty() ? "%Y-%m-%d" : ToStr(args[0]);
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      size_t len = std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
      return Value::Str(std::string(buf, len));
    }
    if (name == "dict") {
      Value d = Value::Obj();
      for (auto& [k, x] : kw) d.Set(k, x);
      return d;
    }
    Error(n, StrCat("unknown function '", name, "'"));
  }
  Value f = Eval(callee, scope);
  if (f.kind != Value::kFunc) {
    if (callee.kind == N::kMember && !callee.flag)
      Error(n, StrCat("unsupported method '", callee.str, "'"));
    Error(n, StrCat("cannot call a ", KindName(f)));
  }
  Value r = (*f.fn)(args, kw);
  // items(), keys() and values() copy the whole mapping.
  if (r.kind == Value::kArray) Step(n, static_cast<int64_t>(r.arr->size()));
  return r;
}

Value Interp::Range(const Node& n, const std::vector<Value>& args) {
  int64_t start = 0, stop = 0, step = 1;
  if (args.size() == 1) {
    stop = args[0].kind == Value::kInt ? args[0].i : 0;
  } else if (args.size() >= 2) {
    start = args[0].i;
    stop = args[1].i;
    if (args.size() >= 3) step = args[2].i;
  }
  if (step == 0) Error(n, "range: step must not be zero");
  // Count first, in floating point so that huge bounds cannot overflow: the
  // list must be refused before it is allocated, not after.
  double count = std::ceil((static_cast<double>(stop) - start) / step);
  if (count > static_cast<double>(kMaxSteps))
    Error(n, StrCat("range too large (more than ", kMaxSteps, " items)"));
  Array out;
  if (count > 0) {
    Step(n, static_cast<int64_t>(count));
    out.reserve(static_cast<size_t>(count));
  }
  for (int64_t x = start; step > 0 ? x < stop : x > stop; x += step)
    out.push_back(Value::Int(x));
  return Value::Arr(std::move(out));
}

Value Interp::Eval(const Node& n, Scope* scope) {
  Nest nest(this, n);
  Step(n);
  Value v = EvalNode(n, scope);
  if (v.kind == Value::kString) {
    // Strings are copied by value, so their length is work too.
    Step(n, static_cast<int64_t>(v.s.size() >> 8));
    CheckSize(v.s.size(), "string");
  }
  return v;
}

Value Interp::EvalNode(const Node& n, Scope* scope) {
  switch (n.kind) {
    case N::kLiteral:
      return n.value;
    case N::kIdent: {
      if (Value* v = scope->Lookup(n.str)) return *v;
      if (n.str == "true" || n.str == "True") return Value::Bool(true);
      if (n.str == "false" || n.str == "False") return Value::Bool(false);
      if (n.str == "none" || n.str == "None") return Value::None();
      return Value();
    }
    case N::kMember: {
      Value obj = Eval(*n.kids[0], scope);
      if (obj.kind == Value::kUndefined) {
        // Jinja2 raises here; be lenient only for a plain chain of names.
        return Value();
      }
      Value key = n.flag ? Eval(*n.kids[1], scope) : Value::Str(n.str);
      if (!n.flag && !n.str.empty() && IsDigit(n.str[0]))
        key = Value::Int(std::stoll(n.str));
      return Member(n, obj, key);
    }
    case N::kSlice: {
      Value obj = Eval(*n.kids[0], scope);
      Value parts[3];
      for (int k = 0; k < 3; ++k)
        if (n.kids[k + 1]) parts[k] = Eval(*n.kids[k + 1], scope);
      std::vector<std::string> chars;
      int64_t len;
      if (obj.kind == Value::kArray) {
        len = static_cast<int64_t>(obj.arr->size());
      } else if (obj.kind == Value::kString) {
        chars = Chars(obj.s);
        len = static_cast<int64_t>(chars.size());
      } else {
        Error(n, StrCat("cannot slice a ", KindName(obj)));
      }
      int64_t step = parts[2].kind == Value::kInt ? parts[2].i : 1;
      if (step == 0) Error(n, "slice step cannot be zero");
      auto clampi = [&](const Value& v, int64_t def, bool is_start) {
        if (v.kind != Value::kInt) return def;
        int64_t i = v.i < 0 ? v.i + len : v.i;
        if (step > 0) return std::clamp<int64_t>(i, 0, len);
        (void)is_start;
        return std::clamp<int64_t>(i, -1, len - 1);
      };
      int64_t start = clampi(parts[0], step > 0 ? 0 : len - 1, true);
      int64_t stop = clampi(parts[1], step > 0 ? len : -1, false);
      Array out;
      std::string sout;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (obj.kind == Value::kArray)
          out.push_back((*obj.arr)[i]);
        else
          sout += chars[i];
      }
      return obj.kind == Value::kArray ? Value::Arr(std::move(out))
                                       : Value::Str(sout);
    }
    case N::kCall:
      return Call(n, scope);
    case N::kFilter:
      return Filter(n, scope);
    case N::kTest: {
      Value v = Eval(*n.kids[0], scope);
      std::vector<Value> args;
      Kwargs kw;
      EvalArgs(n, 1, scope, &args, &kw);
      bool r = RunTest(n, n.str, v, args);
      return Value::Bool(n.flag ? !r : r);
    }
    case N::kUnary: {
      Value v = Eval(*n.kids[0], scope);
      if (n.str == "not") return Value::Bool(!Truthy(v));
      if (v.kind == Value::kInt) return Value::Int(n.str == "-" ? -v.i : v.i);
      if (v.kind == Value::kFloat)
        return Value::Float(n.str == "-" ? -v.f : v.f);
      Error(n, StrCat("unary '", n.str, "' on a ", KindName(v)));
    }
    case N::kBinary:
      return Binary(n, scope);
    case N::kTernary:
      return Truthy(Eval(*n.kids[0], scope)) ? Eval(*n.kids[1], scope)
                                             : Eval(*n.kids[2], scope);
    case N::kSelect:
      return Truthy(Eval(*n.kids[1], scope)) ? Eval(*n.kids[0], scope)
                                             : Value();
    case N::kList:
    case N::kTuple: {
      Array a;
      for (const NodeP& k : n.kids) a.push_back(Eval(*k, scope));
      return Value::Arr(std::move(a));
    }
    case N::kDict: {
      Value d = Value::Obj();
      for (size_t k = 0; k + 1 < n.kids.size(); k += 2) {
        Value key = Eval(*n.kids[k], scope);
        if (key.kind != Value::kString) Error(n, "dict keys must be strings");
        d.Set(key.s, Eval(*n.kids[k + 1], scope));
      }
      return d;
    }
    default:
      Error(n, "statement used as an expression");
  }
}

}  // namespace dllm::jinja
