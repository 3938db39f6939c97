#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "tokenizer/jinja/interpreter.h"

namespace dllm::jinja {

Value Interp::Filter(const Node& n, Scope* scope) {
  Value v = Eval(*n.kids[0], scope);
  std::vector<Value> args;
  Kwargs kw;
  EvalArgs(n, 1, scope, &args, &kw);
  const std::string& f = n.str;
  auto bad = [&]() -> Value {
    Error(n, StrCat("filter '", f, "' is not supported on a ", KindName(v)));
  };
  if (f == "safe") return v;
  if (f == "tojson") {
    JsonOpts o;
    Value ind = Arg(args, kw, 0, "indent", Value::None());
    if (ind.kind == Value::kInt)
      o.indent = static_cast<int>(std::clamp<int64_t>(ind.i, 0, 64));
    else if (ind.kind != Value::kNone)
      Error(n, "tojson: indent must be an integer");
    Value ea = Arg({}, kw, 9, "ensure_ascii", Value::Bool(false));
    o.ensure_ascii = ea.kind == Value::kBool && ea.b;
    Value sk = Arg({}, kw, 9, "sort_keys", Value::Bool(false));
    o.sort_keys = sk.kind == Value::kBool && sk.b;
    Value sep = Arg({}, kw, 9, "separators", Value::None());
    if (sep.kind == Value::kArray) {
      if (sep.arr->size() != 2 || (*sep.arr)[0].kind != Value::kString ||
          (*sep.arr)[1].kind != Value::kString)
        Error(n, "tojson: separators must be two strings");
      o.has_separators = true;
      o.item_sep = (*sep.arr)[0].s;
      o.key_sep = (*sep.arr)[1].s;
    }
    std::string out;
    ToJson(v, o, 0, true, &out);
    return Value::Str(out);
  }
  if (f == "default" || f == "d") {
    Value def = Arg(args, kw, 0, "default_value", Value::Str(""));
    Value boolean = Arg(args, kw, 1, "boolean", Value::Bool(false));
    if (v.kind == Value::kUndefined || (Truthy(boolean) && !Truthy(v)))
      return def;
    return v;
  }
  if (f == "length" || f == "count") {
    if (v.kind == Value::kArray)
      return Value::Int(static_cast<int64_t>(v.arr->size()));
    if (v.kind == Value::kString)
      return Value::Int(static_cast<int64_t>(CharCount(v.s)));
    if (v.kind == Value::kObject)
      return Value::Int(static_cast<int64_t>(v.obj->size()));
    return bad();
  }
  if (f == "string") {
    if (v.kind == Value::kBool) return Value::Str(v.b ? "true" : "false");
    if (v.kind == Value::kUndefined) return Value::Str("");
    return Value::Str(ToStr(v));
  }
  if (f == "int" || f == "float") {
    bool is_int = f == "int";
    Value def =
        Arg(args, kw, 0, "default", is_int ? Value::Int(0) : Value::Float(0));
    if (v.kind == Value::kString) {
      const char* p = v.s.c_str();
      char* end = nullptr;
      if (is_int) {
        long long x = std::strtoll(p, &end, 10);
        return end == p ? def : Value::Int(x);
      }
      double x = std::strtod(p, &end);
      return end == p ? def : Value::Float(x);
    }
    if (v.kind == Value::kInt)
      return is_int ? v : Value::Float(static_cast<double>(v.i));
    if (v.kind == Value::kFloat)
      return is_int ? Value::Int(static_cast<int64_t>(std::floor(v.f))) : v;
    if (v.kind == Value::kBool)
      return is_int ? Value::Int(v.b) : Value::Float(v.b);
    return bad();
  }
  if (f == "abs") {
    if (v.kind == Value::kInt) return Value::Int(v.i < 0 ? -v.i : v.i);
    if (v.kind == Value::kFloat) return Value::Float(std::fabs(v.f));
    return bad();
  }
  if (f == "bool") {
    if (v.kind == Value::kBool) return v;
    return bad();
  }
  if (v.kind == Value::kString) {
    if (f == "trim") return Value::Str(Trim(v.s));
    if (f == "upper") return Value::Str(Upper(v.s));
    if (f == "lower") return Value::Str(Lower(v.s));
    if (f == "title") return Value::Str(Title(v.s));
    if (f == "capitalize") {
      std::string r = Lower(v.s);
      if (!r.empty())
        r[0] =
            static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
      return Value::Str(r);
    }
    if (f == "list") {
      Array a;
      for (auto& c : Chars(v.s)) a.push_back(Value::Str(c));
      return Value::Arr(std::move(a));
    }
    if (f == "join") {
      Value sep = Arg(args, kw, 0, "separator", Value::Str(""));
      std::string out;
      auto chars = Chars(v.s);
      for (size_t k = 0; k < chars.size(); ++k) {
        if (k) out += ToStr(sep);
        out += chars[k];
        CheckSize(out.size(), "join result");
      }
      return Value::Str(out);
    }
    if (f == "replace") {
      Value from = Arg(args, kw, 0, "old", Value()),
            to = Arg(args, kw, 1, "new", Value());
      Value count = Arg(args, kw, 2, "count", Value::Int(-1));
      if (from.kind != Value::kString || to.kind != Value::kString)
        Error(n, "replace needs two strings");
      return Value::Str(ReplaceAll(v.s, from.s, to.s,
                                   count.kind == Value::kInt ? count.i : -1));
    }
    if (f == "indent") {
      Value width = Arg(args, kw, 0, "width", Value::Int(4));
      bool first = Truthy(Arg(args, kw, 1, "first", Value::Bool(false)));
      bool blank = Truthy(Arg(args, kw, 2, "blank", Value::Bool(false)));
      std::string ind =
          width.kind == Value::kString
              ? width.s
              : std::string(std::clamp<int64_t>(width.i, 0, 256), ' ');
      std::string out;
      size_t pos = 0;
      int line = 0;
      while (true) {
        size_t e = v.s.find('\n', pos);
        std::string ln = v.s.substr(
            pos, e == std::string::npos ? std::string::npos : e - pos);
        if (!((!first && line == 0) || (!blank && ln.empty()))) out += ind;
        out += ln;
        CheckSize(out.size(), "indent result");
        if (e == std::string::npos) break;
        out += '\n';
        pos = e + 1;
        ++line;
      }
      return Value::Str(out);
    }
    return bad();
  }
  if (v.kind == Value::kArray) {
    const Array& a = *v.arr;
    if (f == "list") return v;
    if (f == "first") return a.empty() ? Value() : a.front();
    if (f == "last") return a.empty() ? Value() : a.back();
    if (f == "reverse") return Value::Arr(Array(a.rbegin(), a.rend()));
    if (f == "join") {
      Value sep = Arg(args, kw, 0, "d", Value::Str(""));
      if (const Value* s2 = Kw(kw, "separator")) sep = *s2;
      Value attr = Arg({}, kw, 9, "attribute", Value());
      std::string out;
      for (size_t k = 0; k < a.size(); ++k) {
        if (k) out += ToStr(sep);
        Value item = a[k];
        if (attr.kind == Value::kString) item = Member(n, item, attr);
        out += ToStr(item);
        CheckSize(out.size(), "join result");
      }
      return Value::Str(out);
    }
    if (f == "unique") {
      Array out;
      for (const Value& x : a) {
        bool seen = false;
        for (const Value& y : out) seen = seen || StrictEq(x, y);
        if (!seen) out.push_back(x);
      }
      return Value::Arr(std::move(out));
    }
    if (f == "sort") {
      bool reverse = Truthy(Arg(args, kw, 0, "reverse", Value::Bool(false)));
      bool cs = Truthy(Arg(args, kw, 1, "case_sensitive", Value::Bool(false)));
      Value attr = Arg(args, kw, 2, "attribute", Value::None());
      Array out = a;
      auto key = [&](const Value& x) {
        return attr.kind == Value::kString ? Member(n, x, attr) : x;
      };
      auto less = [&](const Value& x, const Value& y) {
        Value kx = key(x), ky = key(y);
        if (kx.kind == Value::kString && ky.kind == Value::kString)
          return cs ? kx.s < ky.s : Lower(kx.s) < Lower(ky.s);
        return kx.num() < ky.num();
      };
      std::stable_sort(out.begin(), out.end(),
                       [&](const Value& x, const Value& y) {
                         return reverse ? less(y, x) : less(x, y);
                       });
      return Value::Arr(std::move(out));
    }
    if (f == "select" || f == "reject") {
      bool sel = f == "select";
      Array out;
      std::string test =
          !args.empty() && args[0].kind == Value::kString ? args[0].s : "";
      std::vector<Value> targs(args.begin() + std::min<size_t>(1, args.size()),
                               args.end());
      for (const Value& x : a) {
        bool r = test.empty() ? Truthy(x) : RunTest(n, test, x, targs);
        if (r == sel) out.push_back(x);
      }
      return Value::Arr(std::move(out));
    }
    if (f == "selectattr" || f == "rejectattr") {
      bool sel = f == "selectattr";
      if (args.empty() || args[0].kind != Value::kString)
        Error(n, StrCat(f, " needs an attribute name"));
      std::string test =
          args.size() > 1 && args[1].kind == Value::kString ? args[1].s : "";
      std::vector<Value> targs(args.begin() + std::min<size_t>(2, args.size()),
                               args.end());
      Array out;
      for (const Value& x : a) {
        if (x.kind != Value::kObject)
          Error(n, StrCat(f, " can only be applied to a list of mappings"));
        const Value* at = x.Find(args[0].s);
        bool r =
            at ? (test.empty() ? Truthy(*at) : RunTest(n, test, *at, targs))
               : false;
        if (r == sel) out.push_back(x);
      }
      return Value::Arr(std::move(out));
    }
    if (f == "map") {
      const Value* attr = Kw(kw, "attribute");
      Array out;
      if (attr && attr->kind == Value::kString) {
        const Value* def = Kw(kw, "default");
        for (const Value& x : a) {
          Value r = Member(n, x, *attr);
          out.push_back(r.kind == Value::kUndefined && def ? *def : r);
        }
        return Value::Arr(std::move(out));
      }
      if (!args.empty() && args[0].kind == Value::kString) {
        // map('filter_name'): apply a simple filter to each item.
        for (const Value& x : a) {
          Node fake;
          fake.kind = N::kFilter;
          fake.line = n.line;
          fake.str = args[0].s;
          auto lit = MakeNode(N::kLiteral, n.line);
          lit->value = x;
          fake.kids.push_back(std::move(lit));
          out.push_back(Filter(fake, scope));
        }
        return Value::Arr(std::move(out));
      }
      Error(n, "map needs attribute= or a filter name");
    }
    if (f == "items") return bad();
    return bad();
  }
  if (v.kind == Value::kObject) {
    if (f == "items" || f == "keys" || f == "values") {
      Value m = Method(n, v, f);
      std::vector<Value> none;
      Kwargs nokw;
      return (*m.fn)(none, nokw);
    }
    if (f == "dictsort") {
      Object o = *v.obj;
      std::stable_sort(o.begin(), o.end(), [](const auto& x, const auto& y) {
        return Lower(x.first) < Lower(y.first);
      });
      Array out;
      for (auto& [k, x] : o) out.push_back(Value::Arr({Value::Str(k), x}));
      return Value::Arr(std::move(out));
    }
    return bad();
  }
  return bad();
}

}  // namespace dllm::jinja
