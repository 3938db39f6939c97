#include <algorithm>
#include <cctype>
#include <functional>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/utf8.h"

namespace dllm::jinja {

const Value* Kw(const Kwargs& kw, const char* name) {
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}
// Positional argument i, else keyword `name`, else `def`.

Value Arg(const std::vector<Value>& args, const Kwargs& kw, size_t i,
          const char* name, Value def) {
  if (i < args.size()) return args[i];
  if (const Value* v = Kw(kw, name)) return *v;
  return def;
}

bool LooseEq(const Value& a, const Value& b) {
  bool an = a.kind == Value::kUndefined || a.kind == Value::kNone;
  bool bn = b.kind == Value::kUndefined || b.kind == Value::kNone;
  if (an || bn) return an && bn;
  if ((a.numeric() || a.kind == Value::kBool) &&
      (b.numeric() || b.kind == Value::kBool))
    return a.num() == b.num();
  if (a.kind == Value::kString && b.kind == Value::kString) return a.s == b.s;
  if (a.kind == Value::kArray && b.kind == Value::kArray) return a.arr == b.arr;
  if (a.kind == Value::kObject && b.kind == Value::kObject)
    return a.obj == b.obj;
  return false;
}

bool StrictEq(const Value& a, const Value& b) {
  if (a.numeric() && b.numeric()) return a.num() == b.num();
  if (a.kind != b.kind) return false;
  return LooseEq(a, b);
}

int64_t NormIndex(int64_t i, int64_t len) { return i < 0 ? i + len : i; }

std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp;
    int bad;
    int len = utf8::Decode(s, i, &cp, &bad);
    if (!len) len = bad;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

size_t CharCount(const std::string& s) {
  size_t count = 0, i = 0;
  while (i < s.size()) {
    uint32_t cp;
    int bad;
    int len = utf8::Decode(s, i, &cp, &bad);
    i += len ? len : bad;
    ++count;
  }
  return count;
}

std::string StripChars(const std::string& s, const Value& chars, bool left,
                       bool right) {
  if (chars.kind != Value::kString) {
    std::string_view v = s;
    if (left) v.remove_prefix(LeadingSpace(v));
    if (right) v.remove_suffix(TrailingSpace(v));
    return std::string(v);
  }
  size_t a = 0, b = s.size();
  if (left)
    while (a < b && chars.s.find(s[a]) != std::string::npos) ++a;
  if (right)
    while (b > a && chars.s.find(s[b - 1]) != std::string::npos) --b;
  return s.substr(a, b - a);
}

std::string Title(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      c = start
              ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
              : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      start = false;
    } else {
      start = true;
    }
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string ReplaceAll(const std::string& s, const std::string& from,
                       const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python: insert `to` between characters.
    std::vector<std::string> chars = Chars(s);
    int64_t done = 0;
    for (const auto& c : chars) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += c;
      CheckSize(out.size(), "replace result");
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t j = s.find(from, pos);
    if (j == std::string::npos) break;
    out.append(s, pos, j - pos);
    out += to;
    CheckSize(out.size(), "replace result");
    pos = j + from.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

bool Interp::RunTest(const Node& n, const std::string& name, const Value& v,
                     const std::vector<Value>& args) {
  if (name == "defined") return v.kind != Value::kUndefined;
  if (name == "undefined") return v.kind == Value::kUndefined;
  if (name == "none") return v.kind == Value::kNone;
  if (name == "boolean") return v.kind == Value::kBool;
  if (name == "true") return v.kind == Value::kBool && v.b;
  if (name == "false") return v.kind == Value::kBool && !v.b;
  if (name == "string") return v.kind == Value::kString;
  if (name == "number") return v.numeric();
  if (name == "integer") return v.kind == Value::kInt;
  if (name == "float") return v.kind == Value::kFloat;
  if (name == "iterable")
    return v.kind == Value::kArray || v.kind == Value::kString;
  if (name == "mapping") return v.kind == Value::kObject && !v.is_namespace;
  if (name == "sequence")
    return v.kind == Value::kArray || v.kind == Value::kString ||
           (v.kind == Value::kObject && !v.is_namespace);
  if (name == "callable") return v.kind == Value::kFunc;
  if (name == "odd" || name == "even") {
    if (v.kind != Value::kInt)
      Error(n, StrCat("cannot test ", name, " on a ", KindName(v)));
    return (v.i % 2 != 0) == (name == "odd");
  }
  if (name == "lower" || name == "upper") {
    if (v.kind != Value::kString) return false;
    for (char c : v.s)
      if (name == "lower" ? (c >= 'A' && c <= 'Z') : (c >= 'a' && c <= 'z'))
        return false;
    return true;
  }
  if (name == "equalto" || name == "eq" || name == "sameas")
    return !args.empty() && StrictEq(v, args[0]);
  if (name == "ne") return args.empty() || !StrictEq(v, args[0]);
  if (name == "in") return !args.empty() && Contains(n, args[0], v);
  Error(n, StrCat("unsupported test '", name, "'"));
}

bool Interp::Contains(const Node& n, const Value& container, const Value& x) {
  switch (container.kind) {
    case Value::kUndefined:
      return false;
    case Value::kArray:
      for (const Value& e : *container.arr)
        if (StrictEq(e, x)) return true;
      return false;
    case Value::kString:
      if (x.kind != Value::kString)
        Error(n, "'in <string>' needs a string on the left");
      return container.s.find(x.s) != std::string::npos;
    case Value::kObject:
      if (x.kind != Value::kString) return false;
      return container.Find(x.s) != nullptr;
    default:
      Error(n, StrCat("'in' is not supported on a ", KindName(container)));
  }
}

Value Interp::Method(const Node& n, const Value& obj, const std::string& name) {
  if (obj.kind == Value::kArray) {
    if (name == "length")
      return Value::Int(static_cast<int64_t>(obj.arr->size()));
    if (name == "append") {
      Value o = obj;
      return Value::Fn([this, o](std::vector<Value>& a, Kwargs&) {
        Mutated(o);
        if (!a.empty()) o.arr->push_back(a[0]);
        return Value::None();
      });
    }
    return Value();
  }
  if (obj.kind == Value::kObject) {
    Value o = obj;
    if (name == "items")
      return Value::Fn([o](std::vector<Value>&, Kwargs&) {
        Array a;
        for (const auto& [k, v] : *o.obj)
          a.push_back(Value::Arr({Value::Str(k), v}));
        return Value::Arr(std::move(a));
      });
    if (name == "keys")
      return Value::Fn([o](std::vector<Value>&, Kwargs&) {
        Array a;
        for (const auto& [k, v] : *o.obj) a.push_back(Value::Str(k));
        return Value::Arr(std::move(a));
      });
    if (name == "values")
      return Value::Fn([o](std::vector<Value>&, Kwargs&) {
        Array a;
        for (const auto& [k, v] : *o.obj) a.push_back(v);
        return Value::Arr(std::move(a));
      });
    if (name == "get")
      return Value::Fn([o](std::vector<Value>& a, Kwargs& kw) {
        Value key = Arg(a, kw, 0, "key", Value());
        if (key.kind == Value::kString)
          if (const Value* v = o.Find(key.s)) return *v;
        return Arg(a, kw, 1, "default", Value::None());
      });
    return Value();
  }
  if (obj.kind != Value::kString) return Value();
  const std::string s = obj.s;
  const Node* np = &n;
  if (name == "length") return Value::Int(static_cast<int64_t>(CharCount(s)));
  auto fn = [&](std::function<Value(std::vector<Value>&, Kwargs&)> f) {
    return Value::Fn(std::move(f));
  };
  if (name == "upper")
    return fn([s](auto&, auto&) { return Value::Str(Upper(s)); });
  if (name == "lower")
    return fn([s](auto&, auto&) { return Value::Str(Lower(s)); });
  if (name == "title")
    return fn([s](auto&, auto&) { return Value::Str(Title(s)); });
  if (name == "capitalize")
    return fn([s](auto&, auto&) {
      std::string r = Lower(s);
      if (!r.empty())
        r[0] =
            static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
      return Value::Str(r);
    });
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return fn([s, l, r](std::vector<Value>& a, Kwargs& kw) {
      return Value::Str(StripChars(s, Arg(a, kw, 0, "chars", Value()), l, r));
    });
  }
  if (name == "startswith" || name == "endswith") {
    bool start = name == "startswith";
    return fn([s, start, np](std::vector<Value>& a, Kwargs& kw) {
      Value p = Arg(a, kw, 0, "prefix", Value());
      std::vector<std::string> pats;
      if (p.kind == Value::kString)
        pats.push_back(p.s);
      else if (p.kind == Value::kArray)
        for (const Value& x : *p.arr)
          if (x.kind == Value::kString) pats.push_back(x.s);
      if (pats.empty()) Error(*np, "startswith/endswith needs a string");
      for (const auto& q : pats)
        if (start ? s.starts_with(q) : s.ends_with(q)) return Value::Bool(true);
      return Value::Bool(false);
    });
  }
  if (name == "split")
    return fn([s](std::vector<Value>& a, Kwargs& kw) {
      Value sep = Arg(a, kw, 0, "sep", Value::None());
      Value maxv = Arg(a, kw, 1, "maxsplit", Value::Int(-1));
      int64_t maxsplit = maxv.kind == Value::kInt ? maxv.i : -1;
      Array out;
      if (sep.kind != Value::kString) {
        // Split on runs of white space, dropping empty strings.
        std::string_view v = s;
        while (true) {
          v.remove_prefix(LeadingSpace(v));
          if (v.empty()) break;
          if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
            out.push_back(Value::Str(
                std::string(v.substr(0, v.size() - TrailingSpace(v)))));
            break;
          }
          size_t i = 0;
          while (i < v.size()) {
            uint32_t cp;
            int bad;
            int len = utf8::Decode(v, i, &cp, &bad);
            if (len && IsJsSpace(cp)) break;
            i += len ? len : bad;
          }
          out.push_back(Value::Str(std::string(v.substr(0, i))));
          v.remove_prefix(i);
        }
        return Value::Arr(std::move(out));
      }
      if (sep.s.empty()) Fail("chat template: split: empty separator");
      size_t pos = 0;
      while (true) {
        size_t j = s.find(sep.s, pos);
        if (j == std::string::npos ||
            (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit)) {
          out.push_back(Value::Str(s.substr(pos)));
          break;
        }
        out.push_back(Value::Str(s.substr(pos, j - pos)));
        pos = j + sep.s.size();
      }
      return Value::Arr(std::move(out));
    });
  if (name == "replace")
    return fn([s](std::vector<Value>& a, Kwargs& kw) {
      Value from = Arg(a, kw, 0, "old", Value()),
            to = Arg(a, kw, 1, "new", Value());
      Value count = Arg(a, kw, 2, "count", Value::Int(-1));
      if (from.kind != Value::kString || to.kind != Value::kString)
        Fail("chat template: replace needs two strings");
      return Value::Str(ReplaceAll(s, from.s, to.s,
                                   count.kind == Value::kInt ? count.i : -1));
    });
  return Value();
}

}  // namespace dllm::jinja
