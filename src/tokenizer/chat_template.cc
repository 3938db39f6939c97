#include "tokenizer/chat_template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/mmap_file.h"
#include "tokenizer/utf8.h"

namespace dllm {

using json = nlohmann::ordered_json;

namespace {

// ---------------------------------------------------------------------------
// Values

struct Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // insertion order
using Kwargs = std::vector<std::pair<std::string, Value>>;
using Func = std::function<Value(std::vector<Value>&, Kwargs&)>;

struct Value {
  enum Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kArray,
    kObject,
    kFunc
  };
  Kind kind = kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<Array> arr;
  std::shared_ptr<Object> obj;
  std::shared_ptr<Func> fn;
  bool is_namespace = false;

  static Value None() {
    Value v;
    v.kind = kNone;
    return v;
  }
  static Value Bool(bool x) {
    Value v;
    v.kind = kBool;
    v.b = x;
    return v;
  }
  static Value Int(int64_t x) {
    Value v;
    v.kind = kInt;
    v.i = x;
    return v;
  }
  static Value Float(double x) {
    Value v;
    v.kind = kFloat;
    v.f = x;
    return v;
  }
  static Value Str(std::string x) {
    Value v;
    v.kind = kString;
    v.s = std::move(x);
    return v;
  }
  static Value Arr(Array a = {}) {
    Value v;
    v.kind = kArray;
    v.arr = std::make_shared<Array>(std::move(a));
    return v;
  }
  static Value Obj(Object o = {}) {
    Value v;
    v.kind = kObject;
    v.obj = std::make_shared<Object>(std::move(o));
    return v;
  }
  static Value Fn(Func f) {
    Value v;
    v.kind = kFunc;
    v.fn = std::make_shared<Func>(std::move(f));
    return v;
  }
  bool numeric() const { return kind == kInt || kind == kFloat; }
  double num() const {
    return kind == kInt ? static_cast<double>(i) : kind == kFloat ? f : b;
  }
  const Value* Find(std::string_view key) const {
    if (kind != kObject) return nullptr;
    for (const auto& [k, v] : *obj)
      if (k == key) return &v;
    return nullptr;
  }
  void Set(const std::string& key, Value v) {
    for (auto& [k, old] : *obj)
      if (k == key) {
        old = std::move(v);
        return;
      }
    obj->emplace_back(key, std::move(v));
  }
};

const char* KindName(const Value& v) {
  switch (v.kind) {
    case Value::kUndefined:
      return "undefined";
    case Value::kNone:
      return "none";
    case Value::kBool:
      return "boolean";
    case Value::kInt:
      return "integer";
    case Value::kFloat:
      return "float";
    case Value::kString:
      return "string";
    case Value::kArray:
      return "list";
    case Value::kObject:
      return v.is_namespace ? "namespace" : "mapping";
    case Value::kFunc:
      return "function";
  }
  return "?";
}

bool Truthy(const Value& v) {
  switch (v.kind) {
    case Value::kUndefined:
    case Value::kNone:
      return false;
    case Value::kBool:
      return v.b;
    case Value::kInt:
      return v.i != 0;
    case Value::kFloat:
      return v.f != 0;
    case Value::kString:
      return !v.s.empty();
    case Value::kArray:
      return !v.arr->empty();
    case Value::kObject:
      return v.is_namespace || !v.obj->empty();
    case Value::kFunc:
      return true;
  }
  return false;
}

// JavaScript's Number.prototype.toString for finite doubles.
std::string JsNumber(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return "0";
  char buf[64];
  double ax = std::fabs(x);
  if (ax >= 1e-7 && ax < 1e21) {
    auto r = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::fixed);
    std::string s(buf, r.ptr);
    // to_chars(fixed) is shortest round-trip; trim nothing more.
    return s;
  }
  auto r =
      std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string s(buf, r.ptr);
  size_t e = s.find('e');
  std::string mant = s.substr(0, e), ex = s.substr(e + 1);
  int exp = std::stoi(ex);
  return mant + "e" + (exp >= 0 ? "+" : "-") + std::to_string(std::abs(exp));
}

// JSON.stringify of a string.
std::string JsonString(std::string_view s, bool ensure_ascii) {
  std::string out = "\"";
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\b':
        out += "\\b";
        ++i;
        continue;
      case '\f':
        out += "\\f";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    char buf[16];
    if (c < 0x20) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
      ++i;
      continue;
    }
    if (c < 0x80 || !ensure_ascii) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    uint32_t cp;
    int bad;
    int len = utf8::Decode(s, i, &cp, &bad);
    if (!len) {
      out += "\\ufffd";
      i += bad;
      continue;
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                    0xDC00 + (cp & 0x3FF));
    } else {
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
    }
    out += buf;
  }
  return out + "\"";
}

struct JsonOpts {
  int indent = 0;
  bool ensure_ascii = false, sort_keys = false;
  bool has_separators = false;
  std::string item_sep, key_sep;
};

void ToJson(const Value& v, const JsonOpts& o, int depth, bool undef_to_null,
            std::string* out) {
  std::string item_sep = o.has_separators ? o.item_sep : o.indent ? "," : ", ";
  std::string key_sep = o.has_separators ? o.key_sep : ": ";
  switch (v.kind) {
    case Value::kNone:
      *out += "null";
      return;
    case Value::kUndefined:
      *out += undef_to_null ? "null" : "undefined";
      return;
    case Value::kBool:
      *out += v.b ? "true" : "false";
      return;
    case Value::kInt:
      *out += std::to_string(v.i);
      return;
    case Value::kFloat:
      *out += JsNumber(v.f);
      return;
    case Value::kString:
      *out += JsonString(v.s, o.ensure_ascii);
      return;
    case Value::kFunc:
      Fail("chat template: tojson: cannot serialise a function");
    case Value::kArray:
    case Value::kObject: {
      std::string ind(o.indent > 0 ? o.indent : 0, ' ');
      std::string base = "\n", child;
      for (int k = 0; k < depth; ++k) base += ind;
      child = base + ind;
      bool pretty = o.indent > 0;
      if (v.kind == Value::kArray) {
        const Array& a = *v.arr;
        *out += "[";
        if (pretty && !a.empty()) *out += child;
        for (size_t k = 0; k < a.size(); ++k) {
          if (k) *out += pretty ? item_sep + child : item_sep;
          ToJson(a[k], o, depth + 1, undef_to_null, out);
        }
        if (pretty && !a.empty()) *out += base;
        *out += "]";
      } else {
        Object entries = *v.obj;
        if (o.sort_keys)
          std::stable_sort(
              entries.begin(), entries.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
        *out += "{";
        if (pretty && !entries.empty()) *out += child;
        for (size_t k = 0; k < entries.size(); ++k) {
          if (k) *out += pretty ? item_sep + child : item_sep;
          *out += JsonString(entries[k].first, o.ensure_ascii);
          *out += key_sep;
          ToJson(entries[k].second, o, depth + 1, undef_to_null, out);
        }
        if (pretty && !entries.empty()) *out += base;
        *out += "}";
      }
      return;
    }
  }
}

std::string ToStr(const Value& v) {
  switch (v.kind) {
    case Value::kUndefined:
      return "";
    case Value::kNone:
      return "None";
    case Value::kBool:
      return v.b ? "true" : "false";
    case Value::kInt:
      return std::to_string(v.i);
    case Value::kFloat: {
      if (std::isfinite(v.f) && v.f == std::floor(v.f) &&
          std::fabs(v.f) < 1e21) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%.1f", v.f);
        return buf;
      }
      return JsNumber(v.f);
    }
    case Value::kString:
      return v.s;
    case Value::kFunc:
      return "[function]";
    case Value::kArray:
    case Value::kObject: {
      std::string out;
      ToJson(v, JsonOpts{}, 0, false, &out);
      return out;
    }
  }
  return "";
}

Value FromJson(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return Value::None();
    case json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case json::value_t::number_integer:
      return Value::Int(j.get<int64_t>());
    case json::value_t::number_unsigned:
      return Value::Int(static_cast<int64_t>(j.get<uint64_t>()));
    case json::value_t::number_float: {
      double d = j.get<double>();
      // JavaScript has one number type: integral values become integers.
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15)
        return Value::Int(static_cast<int64_t>(d));
      return Value::Float(d);
    }
    case json::value_t::string:
      return Value::Str(j.get<std::string>());
    case json::value_t::array: {
      Array a;
      for (const json& x : j) a.push_back(FromJson(x));
      return Value::Arr(std::move(a));
    }
    case json::value_t::object: {
      Object o;
      for (auto it = j.begin(); it != j.end(); ++it)
        o.emplace_back(it.key(), FromJson(it.value()));
      return Value::Obj(std::move(o));
    }
    default:
      return Value();
  }
}

// JavaScript's notion of white space (String.prototype.trim, /\s/).
bool IsJsSpace(uint32_t c) {
  return c == 0x09 || c == 0x0A || c == 0x0B || c == 0x0C || c == 0x0D ||
         c == 0x20 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

// Byte length of the white space at the start / end of s.
size_t LeadingSpace(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp;
    int bad;
    int len = utf8::Decode(s, i, &cp, &bad);
    if (!len || !IsJsSpace(cp)) break;
    i += len;
  }
  return i;
}
size_t TrailingSpace(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t k = end - 1;
    while (k > 0 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
    uint32_t cp;
    int bad;
    int len = utf8::Decode(s, k, &cp, &bad);
    if (!len || k + len != end || !IsJsSpace(cp)) break;
    end = k;
  }
  return s.size() - end;
}
std::string Trim(std::string_view s) {
  size_t a = LeadingSpace(s);
  s.remove_prefix(a);
  s.remove_suffix(TrailingSpace(s));
  return std::string(s);
}

// ---------------------------------------------------------------------------
// Lexer (follows @huggingface/jinja's tokenizer, so that whitespace handling
// is byte-identical)

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

std::string Preprocess(std::string src) {
  if (!src.empty() && src.back() == '\n') src.pop_back();
  // lstrip_blocks: spaces/tabs from the start of a line up to {% {# {-.
  std::string a;
  a.reserve(src.size());
  size_t i = 0;
  while (i < src.size()) {
    bool line_start = i == 0 || src[i - 1] == '\n' || src[i - 1] == '\r';
    if (line_start) {
      size_t j = i;
      while (j < src.size() && (src[j] == ' ' || src[j] == '\t')) ++j;
      if (j + 1 < src.size() && src[j] == '{' &&
          (src[j + 1] == '#' || src[j + 1] == '%' || src[j + 1] == '-')) {
        i = j;
      }
    }
    // Copy up to and including the next newline.
    size_t nl = src.find_first_of("\n\r", i);
    if (nl == std::string::npos) nl = src.size() - 1;
    a.append(src, i, nl - i + 1);
    i = nl + 1;
  }
  // trim_blocks: the newline right after %} #} -}.
  std::string b;
  b.reserve(a.size());
  for (size_t k = 0; k < a.size(); ++k) {
    b.push_back(a[k]);
    if (a[k] == '}' && k > 0 &&
        (a[k - 1] == '%' || a[k - 1] == '#' || a[k - 1] == '-') &&
        k + 1 < a.size() && a[k + 1] == '\n' && b.size() >= 2) {
      ++k;  // drop the newline
    }
  }
  return b;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordCh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) ||
         c == '_';
}

std::vector<Tok> Lex(const std::string& source) {
  std::string src = Preprocess(source);
  std::vector<Tok> toks;
  size_t pos = 0, n = src.size();
  int line = 1;
  int curly = 0;
  auto at = [&](size_t k) -> char { return k < n ? src[k] : '\0'; };
  auto starts = [&](const char* s) {
    return src.compare(pos, std::strlen(s), s) == 0;
  };
  auto push = [&](T t, std::string v) {
    toks.push_back({t, std::move(v), line});
  };
  auto advance = [&](size_t k) {
    for (size_t e = std::min(n, pos + k); pos < e; ++pos)
      if (src[pos] == '\n') ++line;
  };
  auto is_ws_at = [&](size_t k, size_t* len) {
    uint32_t cp;
    int bad;
    int l = utf8::Decode(src, k, &cp, &bad);
    if (!l || !IsJsSpace(cp)) return false;
    *len = l;
    return true;
  };
  auto skip_ws = [&]() {
    size_t len;
    while (pos < n && is_ws_at(pos, &len)) advance(len);
  };
  auto strip_trailing = [&]() {
    if (!toks.empty() && toks.back().type == T::kText) {
      std::string& v = toks.back().value;
      v.resize(v.size() - TrailingSpace(v));
      if (v.empty()) toks.pop_back();
    }
  };
  auto fail = [&](const std::string& what) {
    Fail("chat template line ", line, ": ", what);
  };
  while (pos < n) {
    T last = toks.empty() ? T::kCloseStmt : toks.back().type;
    if (toks.empty() || last == T::kCloseStmt || last == T::kCloseExpr ||
        last == T::kComment) {
      size_t start = pos;
      while (pos < n &&
             !(src[pos] == '{' && (at(pos + 1) == '%' || at(pos + 1) == '{' ||
                                   at(pos + 1) == '#')))
        ++pos;
      if (pos > start) {
        toks.push_back({T::kText, src.substr(start, pos - start), line});
        for (size_t k = start; k < pos; ++k)
          if (src[k] == '\n') ++line;
        continue;
      }
    }
    if (starts("{#")) {
      advance(2);
      bool strip_before = at(pos) == '-';
      if (strip_before) advance(1);
      size_t end = src.find("#}", pos);
      if (end == std::string::npos) fail("missing end of comment tag #}");
      std::string comment = src.substr(pos, end - pos);
      bool strip_after = !comment.empty() && comment.back() == '-';
      if (strip_before) strip_trailing();
      advance(end - pos + 2);
      push(T::kComment, "");
      if (strip_after) skip_ws();
      continue;
    }
    if (starts("{%-")) {
      strip_trailing();
      push(T::kOpenStmt, "{%");
      advance(3);
      continue;
    }
    if (starts("{{-")) {
      strip_trailing();
      push(T::kOpenExpr, "{{");
      curly = 0;
      advance(3);
      continue;
    }
    skip_ws();
    if (pos >= n) fail("unexpected end of template inside a tag");
    if (starts("-%}")) {
      push(T::kCloseStmt, "%}");
      advance(3);
      skip_ws();
      continue;
    }
    if (starts("-}}")) {
      push(T::kCloseExpr, "}}");
      advance(3);
      skip_ws();
      continue;
    }
    char c = src[pos];
    if (c == '-' || c == '+') {
      if (toks.empty() || toks.back().type == T::kText)
        fail(StrCat("unexpected character ", c));
      T lt = toks.back().type;
      if (!(lt == T::kIdent || lt == T::kNumber || lt == T::kString ||
            lt == T::kCloseParen || lt == T::kCloseSquare)) {
        advance(1);
        std::string num;
        while (pos < n && IsDigit(src[pos])) num.push_back(src[pos++]);
        if (!num.empty() && at(pos) == '.' && IsDigit(at(pos + 1))) {
          ++pos;
          num.push_back('.');
          while (pos < n && IsDigit(src[pos])) num.push_back(src[pos++]);
        }
        push(num.empty() ? T::kUnary : T::kNumber, std::string(1, c) + num);
        continue;
      }
    }
    static const std::pair<const char*, T> kTable[] = {
        {"{%", T::kOpenStmt},   {"%}", T::kCloseStmt}, {"{{", T::kOpenExpr},
        {"}}", T::kCloseExpr},  {"(", T::kOpenParen},  {")", T::kCloseParen},
        {"{", T::kOpenCurly},   {"}", T::kCloseCurly}, {"[", T::kOpenSquare},
        {"]", T::kCloseSquare}, {",", T::kComma},      {".", T::kDot},
        {":", T::kColon},       {"|", T::kPipe},       {"<=", T::kCompare},
        {">=", T::kCompare},    {"==", T::kCompare},   {"!=", T::kCompare},
        {"<", T::kCompare},     {">", T::kCompare},    {"+", T::kAdd},
        {"-", T::kAdd},         {"~", T::kAdd},        {"**", T::kPow},
        {"*", T::kMul},         {"//", T::kMul},       {"/", T::kMul},
        {"%", T::kMul},         {"=", T::kEquals}};
    bool matched = false;
    for (const auto& [seq, type] : kTable) {
      if (type == T::kCloseExpr && curly > 0) continue;
      if (starts(seq)) {
        push(type, seq);
        if (type == T::kOpenExpr)
          curly = 0;
        else if (type == T::kOpenCurly)
          ++curly;
        else if (type == T::kCloseCurly)
          --curly;
        advance(std::strlen(seq));
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (c == '\'' || c == '"') {
      ++pos;
      std::string str;
      while (true) {
        if (pos >= n) fail("unterminated string literal");
        char d = src[pos];
        if (d == c) break;
        if (d == '\\') {
          ++pos;
          if (pos >= n) fail("unexpected end of input in a string escape");
          char e = src[pos++];
          if (e == 'x' || e == 'u') {
            size_t len = e == 'x' ? 2 : 4;
            if (pos + len > n) fail("invalid hexadecimal escape");
            uint32_t cp = 0;
            for (size_t k = 0; k < len; ++k) {
              char h = src[pos + k];
              int v = IsDigit(h)               ? h - '0'
                      : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                      : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                               : -1;
              if (v < 0) fail("invalid hexadecimal escape");
              cp = cp * 16 + v;
            }
            utf8::Append(&str, cp);
            pos += len;
            continue;
          }
          switch (e) {
            case 'n':
              str += '\n';
              break;
            case 't':
              str += '\t';
              break;
            case 'r':
              str += '\r';
              break;
            case 'b':
              str += '\b';
              break;
            case 'f':
              str += '\f';
              break;
            case 'v':
              str += '\v';
              break;
            case '\'':
              str += '\'';
              break;
            case '"':
              str += '"';
              break;
            case '\\':
              str += '\\';
              break;
            default:
              fail(StrCat("unexpected escaped character: ", e));
          }
          continue;
        }
        if (d == '\n') ++line;
        str.push_back(d);
        ++pos;
      }
      ++pos;
      push(T::kString, str);
      continue;
    }
    if (IsDigit(c)) {
      std::string num;
      while (pos < n && IsDigit(src[pos])) num.push_back(src[pos++]);
      if ((toks.empty() || toks.back().type != T::kDot) && at(pos) == '.' &&
          IsDigit(at(pos + 1))) {
        ++pos;
        num.push_back('.');
        while (pos < n && IsDigit(src[pos])) num.push_back(src[pos++]);
      }
      push(T::kNumber, num);
      continue;
    }
    if (IsWordCh(c)) {
      std::string w;
      while (pos < n && IsWordCh(src[pos])) w.push_back(src[pos++]);
      push(T::kIdent, w);
      continue;
    }
    fail(StrCat("unexpected character '", c, "'"));
  }
  return toks;
}

// ---------------------------------------------------------------------------
// AST

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

NodeP MakeNode(N kind, int line) {
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->line = line;
  return n;
}

class Parser {
 public:
  explicit Parser(std::vector<Tok> toks) : t_(std::move(toks)) {}

  std::vector<NodeP> ParseProgram() {
    std::vector<NodeP> out;
    while (cur_ < t_.size()) {
      NodeP n = ParseAny();
      if (n) out.push_back(std::move(n));
    }
    return out;
  }

 private:
  std::vector<Tok> t_;
  size_t cur_ = 0;

  int Line() const {
    return cur_ < t_.size() ? t_[cur_].line : (t_.empty() ? 1 : t_.back().line);
  }
  [[noreturn]] void Error(const std::string& what) const {
    Fail("chat template line ", Line(), ": ", what);
  }
  bool Is(T type, size_t off = 0) const {
    return cur_ + off < t_.size() && t_[cur_ + off].type == type;
  }
  bool IsIdent(const char* name, size_t off = 0) const {
    return Is(T::kIdent, off) && t_[cur_ + off].value == name;
  }
  bool IsStatement(std::initializer_list<const char*> names) const {
    if (!Is(T::kOpenStmt) || !Is(T::kIdent, 1)) return false;
    for (const char* nm : names)
      if (t_[cur_ + 1].value == nm) return true;
    return false;
  }
  const Tok& Expect(T type, const char* what) {
    if (!Is(type))
      Error(StrCat("expected ", what,
                   cur_ < t_.size() ? ", got '" + t_[cur_].value + "'"
                                    : ", got end of template"));
    return t_[cur_++];
  }
  void ExpectIdent(const char* name) {
    if (!IsIdent(name)) Error(StrCat("expected '", name, "'"));
    ++cur_;
  }
  void ExpectEnd(const char* name) {
    Expect(T::kOpenStmt, "{%");
    ExpectIdent(name);
    Expect(T::kCloseStmt, "%}");
  }

  NodeP ParseAny() {
    if (cur_ >= t_.size()) Error("unexpected end of template");
    switch (t_[cur_].type) {
      case T::kComment:
        ++cur_;
        return nullptr;
      case T::kText: {
        NodeP n = MakeNode(N::kText, Line());
        n->str = t_[cur_++].value;
        return n;
      }
      case T::kOpenStmt:
        return ParseStatement();
      case T::kOpenExpr: {
        ++cur_;
        NodeP n = MakeNode(N::kOutput, Line());
        n->kids.push_back(ParseExpression());
        Expect(T::kCloseExpr, "}}");
        return n;
      }
      default:
        Error(StrCat("unexpected '", t_[cur_].value, "'"));
    }
  }

  std::vector<NodeP> ParseBodyUntil(std::initializer_list<const char*> names) {
    std::vector<NodeP> body;
    while (!IsStatement(names)) {
      if (cur_ >= t_.size())
        Error(StrCat("missing {% ", *names.begin(), " %}"));
      NodeP n = ParseAny();
      if (n) body.push_back(std::move(n));
    }
    return body;
  }

  NodeP ParseStatement() {
    Expect(T::kOpenStmt, "{%");
    if (!Is(T::kIdent)) Error("expected a statement name after {%");
    std::string name = t_[cur_].value;
    int line = Line();
    ++cur_;
    if (name == "set") return ParseSet(line);
    if (name == "if") {
      NodeP n = ParseIf(line);
      ExpectEnd("endif");
      return n;
    }
    if (name == "for") return ParseFor(line);
    if (name == "macro") return ParseMacro(line);
    if (name == "break" || name == "continue") {
      Expect(T::kCloseStmt, "%}");
      return MakeNode(name == "break" ? N::kBreak : N::kContinue, line);
    }
    if (name == "generation" || name == "endgeneration") {
      Expect(T::kCloseStmt, "%}");
      return MakeNode(N::kNoop, line);
    }
    Error(StrCat("unsupported statement {% ", name,
                 " %} (supported: set, if, for, macro, break, continue)"));
  }

  NodeP ParseSet(int line) {
    NodeP target = ParseExpressionSequence(false);
    if (Is(T::kEquals)) {
      ++cur_;
      NodeP n = MakeNode(N::kSet, line);
      n->kids.push_back(std::move(target));
      n->kids.push_back(ParseExpressionSequence(false));
      Expect(T::kCloseStmt, "%}");
      return n;
    }
    Expect(T::kCloseStmt, "%}");
    NodeP n = MakeNode(N::kSetBlock, line);
    n->kids.push_back(std::move(target));
    n->body = ParseBodyUntil({"endset"});
    ExpectEnd("endset");
    return n;
  }

  NodeP ParseIf(int line) {
    NodeP n = MakeNode(N::kIf, line);
    n->kids.push_back(ParseExpression());
    Expect(T::kCloseStmt, "%}");
    n->body = ParseBodyUntil({"elif", "else", "endif"});
    if (IsStatement({"elif"})) {
      cur_ += 2;
      n->alt.push_back(ParseIf(Line()));
    } else if (IsStatement({"else"})) {
      cur_ += 2;
      Expect(T::kCloseStmt, "%}");
      n->alt = ParseBodyUntil({"endif"});
    }
    return n;
  }

  NodeP ParseFor(int line) {
    NodeP n = MakeNode(N::kFor, line);
    NodeP var = ParseExpressionSequence(true);
    if (var->kind != N::kIdent && var->kind != N::kTuple)
      Error("expected a name or names for the loop variable");
    if (!IsIdent("in")) Error("expected 'in' after the loop variable");
    ++cur_;
    n->kids.push_back(std::move(var));
    n->kids.push_back(ParseExpression());
    Expect(T::kCloseStmt, "%}");
    n->body = ParseBodyUntil({"endfor", "else"});
    if (IsStatement({"else"})) {
      cur_ += 2;
      Expect(T::kCloseStmt, "%}");
      n->alt = ParseBodyUntil({"endfor"});
    }
    ExpectEnd("endfor");
    return n;
  }

  NodeP ParseMacro(int line) {
    NodeP n = MakeNode(N::kMacro, line);
    n->str = Expect(T::kIdent, "a macro name").value;
    // Parameters: names with optional defaults, as kKwarg / kIdent nodes.
    Expect(T::kOpenParen, "(");
    while (!Is(T::kCloseParen)) {
      NodeP p = MakeNode(N::kIdent, Line());
      p->str = Expect(T::kIdent, "a parameter name").value;
      if (Is(T::kEquals)) {
        ++cur_;
        NodeP kw = MakeNode(N::kKwarg, p->line);
        kw->str = p->str;
        kw->kids.push_back(ParseExpression());
        n->kids.push_back(std::move(kw));
      } else {
        n->kids.push_back(std::move(p));
      }
      if (Is(T::kComma))
        ++cur_;
      else if (!Is(T::kCloseParen))
        Error("expected ',' or ')' in macro parameters");
    }
    ++cur_;
    Expect(T::kCloseStmt, "%}");
    n->body = ParseBodyUntil({"endmacro"});
    ExpectEnd("endmacro");
    return n;
  }

  NodeP ParseExpressionSequence(bool primary) {
    int line = Line();
    NodeP first = primary ? ParsePrimary() : ParseExpression();
    if (!Is(T::kComma)) return first;
    NodeP tup = MakeNode(N::kTuple, line);
    tup->kids.push_back(std::move(first));
    while (Is(T::kComma)) {
      ++cur_;
      tup->kids.push_back(primary ? ParsePrimary() : ParseExpression());
      if (!Is(T::kComma)) break;
    }
    return tup;
  }

  NodeP ParseExpression() {
    int line = Line();
    NodeP a = ParseOr();
    if (IsIdent("if")) {
      ++cur_;
      NodeP test = ParseOr();
      if (IsIdent("else")) {
        ++cur_;
        NodeP n = MakeNode(N::kTernary, line);
        n->kids.push_back(std::move(test));
        n->kids.push_back(std::move(a));
        n->kids.push_back(ParseExpression());
        return n;
      }
      NodeP n = MakeNode(N::kSelect, line);
      n->kids.push_back(std::move(a));
      n->kids.push_back(std::move(test));
      return n;
    }
    return a;
  }

  NodeP Binary(std::string op, NodeP l, NodeP r, int line) {
    NodeP n = MakeNode(N::kBinary, line);
    n->str = std::move(op);
    n->kids.push_back(std::move(l));
    n->kids.push_back(std::move(r));
    return n;
  }

  NodeP ParseOr() {
    NodeP l = ParseAnd();
    while (IsIdent("or")) {
      int line = Line();
      ++cur_;
      l = Binary("or", std::move(l), ParseAnd(), line);
    }
    return l;
  }
  NodeP ParseAnd() {
    NodeP l = ParseNot();
    while (IsIdent("and")) {
      int line = Line();
      ++cur_;
      l = Binary("and", std::move(l), ParseNot(), line);
    }
    return l;
  }
  NodeP ParseNot() {
    if (IsIdent("not")) {
      NodeP n = MakeNode(N::kUnary, Line());
      n->str = "not";
      ++cur_;
      n->kids.push_back(ParseNot());
      return n;
    }
    return ParseComparison();
  }
  NodeP ParseComparison() {
    NodeP l = ParseAdditive();
    while (true) {
      int line = Line();
      std::string op;
      if (IsIdent("not") && IsIdent("in", 1)) {
        op = "not in";
        cur_ += 2;
      } else if (IsIdent("in")) {
        op = "in";
        ++cur_;
      } else if (Is(T::kCompare)) {
        op = t_[cur_++].value;
      } else {
        break;
      }
      l = Binary(op, std::move(l), ParseAdditive(), line);
    }
    return l;
  }
  NodeP ParseAdditive() {
    NodeP l = ParseMultiplicative();
    while (Is(T::kAdd)) {
      int line = Line();
      std::string op = t_[cur_++].value;
      l = Binary(op, std::move(l), ParseMultiplicative(), line);
    }
    return l;
  }
  NodeP ParseMultiplicative() {
    NodeP l = ParsePower();
    while (Is(T::kMul)) {
      int line = Line();
      std::string op = t_[cur_++].value;
      l = Binary(op, std::move(l), ParsePower(), line);
    }
    return l;
  }
  NodeP ParsePower() {
    NodeP l = ParseTest();
    while (Is(T::kPow)) {
      int line = Line();
      ++cur_;
      l = Binary("**", std::move(l), ParseTest(), line);
    }
    return l;
  }
  NodeP ParseTest() {
    NodeP operand = ParseFilter();
    while (IsIdent("is")) {
      int line = Line();
      ++cur_;
      bool negate = IsIdent("not");
      if (negate) ++cur_;
      if (!Is(T::kIdent)) Error("expected a test name after 'is'");
      NodeP n = MakeNode(N::kTest, line);
      n->str = t_[cur_++].value;
      n->flag = negate;
      n->kids.push_back(std::move(operand));
      if (Is(T::kOpenParen)) ParseArgs(n.get());
      operand = std::move(n);
    }
    return operand;
  }
  NodeP ParseFilter() {
    NodeP operand = ParseUnarySign();
    while (Is(T::kPipe)) {
      int line = Line();
      ++cur_;
      if (!Is(T::kIdent)) Error("expected a filter name after '|'");
      NodeP n = MakeNode(N::kFilter, line);
      n->str = t_[cur_++].value;
      n->kids.push_back(std::move(operand));
      if (Is(T::kOpenParen)) ParseArgs(n.get());
      operand = std::move(n);
    }
    return operand;
  }
  NodeP ParseUnarySign() {
    if ((Is(T::kUnary) || Is(T::kAdd)) &&
        (t_[cur_].value == "-" || t_[cur_].value == "+")) {
      NodeP n = MakeNode(N::kUnary, Line());
      n->str = t_[cur_++].value;
      n->kids.push_back(ParseUnarySign());
      return n;
    }
    return ParseCallMember();
  }
  NodeP ParseCallMember() {
    NodeP m = ParseMember(ParsePrimary());
    while (Is(T::kOpenParen)) {
      NodeP call = MakeNode(N::kCall, Line());
      call->kids.push_back(std::move(m));
      ParseArgs(call.get());
      m = ParseMember(std::move(call));
    }
    return m;
  }
  // Appends call arguments (kKwarg nodes for name=value) to n->kids.
  void ParseArgs(Node* n) {
    Expect(T::kOpenParen, "(");
    while (!Is(T::kCloseParen)) {
      if (cur_ >= t_.size()) Error("unterminated argument list");
      if (Is(T::kIdent) && Is(T::kEquals, 1)) {
        NodeP kw = MakeNode(N::kKwarg, Line());
        kw->str = t_[cur_].value;
        cur_ += 2;
        kw->kids.push_back(ParseExpression());
        n->kids.push_back(std::move(kw));
      } else {
        n->kids.push_back(ParseExpression());
      }
      if (Is(T::kComma))
        ++cur_;
      else if (!Is(T::kCloseParen))
        Error("expected ',' or ')' in an argument list");
    }
    ++cur_;
  }
  NodeP ParseMember(NodeP obj) {
    while (Is(T::kDot) || Is(T::kOpenSquare)) {
      int line = Line();
      bool computed = Is(T::kOpenSquare);
      ++cur_;
      if (computed) {
        // index or slice
        NodeP idx[3];
        int part = 0;
        bool slice = false;
        while (!Is(T::kCloseSquare)) {
          if (cur_ >= t_.size()) Error("unterminated [");
          if (Is(T::kColon)) {
            slice = true;
            if (++part > 2) Error("too many ':' in a slice");
            ++cur_;
          } else {
            if (idx[part]) Error("expected ':' or ']'");
            idx[part] = ParseExpression();
          }
        }
        ++cur_;
        if (slice) {
          NodeP n = MakeNode(N::kSlice, line);
          n->kids.push_back(std::move(obj));
          for (auto& p : idx) n->kids.push_back(std::move(p));  // may be null
          obj = std::move(n);
        } else {
          if (!idx[0]) Error("empty []");
          NodeP n = MakeNode(N::kMember, line);
          n->flag = true;
          n->kids.push_back(std::move(obj));
          n->kids.push_back(std::move(idx[0]));
          obj = std::move(n);
        }
      } else {
        if (!Is(T::kIdent) && !Is(T::kNumber))
          Error("expected a name after '.'");
        NodeP n = MakeNode(N::kMember, line);
        n->str = t_[cur_++].value;
        n->kids.push_back(std::move(obj));
        obj = std::move(n);
      }
    }
    return obj;
  }
  NodeP ParsePrimary() {
    if (cur_ >= t_.size()) Error("unexpected end of template in an expression");
    const Tok& tk = t_[cur_++];
    int line = tk.line;
    switch (tk.type) {
      case T::kNumber: {
        NodeP n = MakeNode(N::kLiteral, line);
        if (tk.value.find('.') != std::string::npos)
          n->value = Value::Float(std::strtod(tk.value.c_str(), nullptr));
        else
          n->value = Value::Int(std::strtoll(tk.value.c_str(), nullptr, 10));
        return n;
      }
      case T::kString: {
        std::string v = tk.value;
        while (Is(T::kString)) v += t_[cur_++].value;
        NodeP n = MakeNode(N::kLiteral, line);
        n->value = Value::Str(v);
        return n;
      }
      case T::kIdent: {
        NodeP n = MakeNode(N::kIdent, line);
        n->str = tk.value;
        return n;
      }
      case T::kOpenParen: {
        NodeP e = ParseExpressionSequence(false);
        Expect(T::kCloseParen, ")");
        return e;
      }
      case T::kOpenSquare: {
        NodeP n = MakeNode(N::kList, line);
        while (!Is(T::kCloseSquare)) {
          if (cur_ >= t_.size()) Error("unterminated list literal");
          n->kids.push_back(ParseExpression());
          if (Is(T::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      case T::kOpenCurly: {
        NodeP n = MakeNode(N::kDict, line);
        while (!Is(T::kCloseCurly)) {
          if (cur_ >= t_.size()) Error("unterminated dict literal");
          n->kids.push_back(ParseExpression());
          Expect(T::kColon, "':' in a dict literal");
          n->kids.push_back(ParseExpression());
          if (Is(T::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      default:
        --cur_;
        Error(StrCat("unexpected '", tk.value, "' in an expression"));
    }
  }
};

}  // namespace

struct JinjaProgram {
  std::vector<NodeP> body;
};

namespace {

// ---------------------------------------------------------------------------
// Interpreter

struct Scope {
  std::unordered_map<std::string, Value> vars;
  Scope* parent = nullptr;
  Value* Lookup(const std::string& name) {
    for (Scope* s = this; s; s = s->parent) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

struct BreakSignal {};
struct ContinueSignal {};

class Interp {
 public:
  std::string Run(const std::vector<NodeP>& body, Scope* scope) {
    std::string out;
    Block(body, scope, &out);
    return out;
  }

 private:
  [[noreturn]] static void Error(const Node& n, const std::string& what) {
    Fail("chat template line ", n.line, ": ", what);
  }

  void Block(const std::vector<NodeP>& body, Scope* scope, std::string* out) {
    for (const NodeP& st : body) Exec(*st, scope, out);
  }

  void Assign(const Node& target, const Value& v, Scope* scope) {
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
      obj.Set(target.str, v);
    } else {
      Error(target, "invalid assignment target");
    }
  }

  void Exec(const Node& n, Scope* scope, std::string* out) {
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
      case N::kMacro: {
        const Node* macro = &n;
        Scope* def_scope = scope;
        scope->vars[n.str] = Value::Fn(
            [this, macro, def_scope](std::vector<Value>& args, Kwargs& kwargs) {
              Scope local;
              local.parent = def_scope;
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
                    v = Eval(*p->kids[0], &local);
                }
                local.vars[p->str] = v;
                ++k;
              }
              std::string s;
              Block(macro->body, &local, &s);
              return Value::Str(s);
            });
        return;
      }
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

  void ExecFor(const Node& n, Scope* scope, std::string* out) {
    const Node* iter_node = n.kids[1].get();
    const Node* cond = nullptr;
    if (iter_node->kind == N::kSelect) {
      cond = iter_node->kids[1].get();
      iter_node = iter_node->kids[0].get();
    }
    Value it = Eval(*iter_node, scope);
    Array items;
    if (it.kind == Value::kArray) {
      items = *it.arr;
    } else if (it.kind == Value::kObject) {
      for (const auto& [k, v] : *it.obj) items.push_back(Value::Str(k));
    } else if (it.kind == Value::kString) {
      size_t i = 0;
      while (i < it.s.size()) {
        uint32_t cp;
        int bad;
        int len = utf8::Decode(it.s, i, &cp, &bad);
        if (!len) len = bad;
        items.push_back(Value::Str(it.s.substr(i, len)));
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
      Scope s;
      s.parent = scope;
      Object loop = {{"index", Value::Int(k + 1)},
                     {"index0", Value::Int(k)},
                     {"revindex", Value::Int(len - k)},
                     {"revindex0", Value::Int(len - k - 1)},
                     {"first", Value::Bool(k == 0)},
                     {"last", Value::Bool(k == len - 1)},
                     {"length", Value::Int(len)},
                     {"previtem", k > 0 ? items[k - 1] : Value()},
                     {"nextitem", k + 1 < len ? items[k + 1] : Value()}};
      s.vars["loop"] = Value::Obj(std::move(loop));
      Assign(*n.kids[0], items[k], &s);
      try {
        Block(n.body, &s, out);
      } catch (const ContinueSignal&) {
        continue;
      } catch (const BreakSignal&) {
        break;
      }
    }
  }

  void EvalArgs(const Node& n, size_t from, Scope* scope,
                std::vector<Value>* args, Kwargs* kwargs) {
    for (size_t k = from; k < n.kids.size(); ++k) {
      const Node& a = *n.kids[k];
      if (a.kind == N::kKwarg)
        kwargs->emplace_back(a.str, Eval(*a.kids[0], scope));
      else
        args->push_back(Eval(a, scope));
    }
  }

  static const Value* Kw(const Kwargs& kw, const char* name) {
    for (const auto& [k, v] : kw)
      if (k == name) return &v;
    return nullptr;
  }
  // Positional argument i, else keyword `name`, else `def`.
  static Value Arg(const std::vector<Value>& args, const Kwargs& kw, size_t i,
                   const char* name, Value def) {
    if (i < args.size()) return args[i];
    if (const Value* v = Kw(kw, name)) return *v;
    return def;
  }

  static bool LooseEq(const Value& a, const Value& b) {
    bool an = a.kind == Value::kUndefined || a.kind == Value::kNone;
    bool bn = b.kind == Value::kUndefined || b.kind == Value::kNone;
    if (an || bn) return an && bn;
    if ((a.numeric() || a.kind == Value::kBool) &&
        (b.numeric() || b.kind == Value::kBool))
      return a.num() == b.num();
    if (a.kind == Value::kString && b.kind == Value::kString) return a.s == b.s;
    if (a.kind == Value::kArray && b.kind == Value::kArray)
      return a.arr == b.arr;
    if (a.kind == Value::kObject && b.kind == Value::kObject)
      return a.obj == b.obj;
    return false;
  }
  static bool StrictEq(const Value& a, const Value& b) {
    if (a.numeric() && b.numeric()) return a.num() == b.num();
    if (a.kind != b.kind) return false;
    return LooseEq(a, b);
  }

  bool RunTest(const Node& n, const std::string& name, const Value& v,
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

  bool Contains(const Node& n, const Value& container, const Value& x) {
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

  Value Binary(const Node& n, Scope* scope) {
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

  static int64_t NormIndex(int64_t i, int64_t len) {
    return i < 0 ? i + len : i;
  }

  Value Member(const Node& n, const Value& obj, const Value& key) {
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

  static std::vector<std::string> Chars(const std::string& s) {
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

  static std::string StripChars(const std::string& s, const Value& chars,
                                bool left, bool right) {
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

  static std::string Title(const std::string& s) {
    std::string out = s;
    bool start = true;
    for (char& c : out) {
      if (std::isalpha(static_cast<unsigned char>(c))) {
        c = start
                ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                : static_cast<char>(
                      std::tolower(static_cast<unsigned char>(c)));
        start = false;
      } else {
        start = true;
      }
    }
    return out;
  }
  static std::string Lower(std::string s) {
    for (char& c : s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  static std::string Upper(std::string s) {
    for (char& c : s)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }

  // Bound methods of strings, mappings and lists.
  Value Method(const Node& n, const Value& obj, const std::string& name) {
    if (obj.kind == Value::kArray) {
      if (name == "length")
        return Value::Int(static_cast<int64_t>(obj.arr->size()));
      if (name == "append") {
        Value o = obj;
        return Value::Fn([o](std::vector<Value>& a, Kwargs&) {
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
    if (name == "length")
      return Value::Int(static_cast<int64_t>(Chars(s).size()));
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
          if (start ? s.starts_with(q) : s.ends_with(q))
            return Value::Bool(true);
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

  static std::string ReplaceAll(const std::string& s, const std::string& from,
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
      pos = j + from.size();
      ++done;
    }
    out.append(s, pos, std::string::npos);
    return out;
  }

  Value Filter(const Node& n, Scope* scope) {
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
        return Value::Int(static_cast<int64_t>(Chars(v.s).size()));
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
        bool cs =
            Truthy(Arg(args, kw, 1, "case_sensitive", Value::Bool(false)));
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
        std::vector<Value> targs(
            args.begin() + std::min<size_t>(1, args.size()), args.end());
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
        std::vector<Value> targs(
            args.begin() + std::min<size_t>(2, args.size()), args.end());
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

  Value Call(const Node& n, Scope* scope) {
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
      if (name == "range") {
        int64_t start = 0, stop = 0, step = 1;
        if (args.size() == 1) {
          stop = args[0].kind == Value::kInt ? args[0].i : 0;
        } else if (args.size() >= 2) {
          start = args[0].i;
          stop = args[1].i;
          if (args.size() >= 3) step = args[2].i;
        }
        if (step == 0) Error(n, "range: step must not be zero");
        Array out;
        for (int64_t x = start; step > 0 ? x < stop : x > stop; x += step) {
          out.push_back(Value::Int(x));
          if (out.size() > 10000000) Error(n, "range too large");
        }
        return Value::Arr(std::move(out));
      }
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
    return (*f.fn)(args, kw);
  }

  Value Eval(const Node& n, Scope* scope) {
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
};

}  // namespace

// ---------------------------------------------------------------------------

ChatTemplate::ChatTemplate() = default;

ChatTemplate ChatTemplate::FromString(const std::string& source,
                                      const std::string& special_tokens_json) {
  ChatTemplate t;
  t.source_ = source;
  t.special_tokens_json_ = special_tokens_json;
  auto prog = std::make_shared<JinjaProgram>();
  prog->body = Parser(Lex(source)).ParseProgram();
  t.program_ = std::move(prog);
  return t;
}

ChatTemplate ChatTemplate::FromTokenizerConfig(const std::string& path) {
  namespace fs = std::filesystem;
  std::string file = path;
  std::string override_template;
  if (fs::is_directory(path)) {
    fs::path dir(path);
    if (fs::exists(dir / "chat_template.jinja"))
      override_template =
          ReadFileToString((dir / "chat_template.jinja").string());
    file = (dir / "tokenizer_config.json").string();
    if (!fs::exists(file)) {
      DLLM_CHECK(
          !override_template.empty(), path,
          ": no tokenizer_config.json or chat_template.jinja in this folder");
      return FromString(override_template);
    }
  }
  json cfg;
  try {
    cfg = json::parse(ReadFileToString(file));
  } catch (const json::exception& e) {
    Fail(file, ": not valid JSON: ", e.what());
  }
  DLLM_CHECK(cfg.is_object(), file, ": expected a JSON object");
  std::string tmpl = override_template;
  if (tmpl.empty()) {
    DLLM_CHECK(
        cfg.contains("chat_template"), file,
        ": no \"chat_template\" field (this model ships no chat template)");
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      tmpl = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const json& e : ct) {
        if (e.is_object() && e.value("name", "") == "default" &&
            e.contains("template") && e["template"].is_string())
          tmpl = e["template"].get<std::string>();
      }
      DLLM_CHECK(!tmpl.empty(), file,
                 ": chat_template: no entry named \"default\"");
    } else {
      Fail(file,
           ": chat_template: expected a string or a list of {name, template}");
    }
  }
  json specials = json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token",
                          "sep_token", "cls_token", "mask_token"}) {
    if (!cfg.contains(key)) continue;
    const json& v = cfg[key];
    if (v.is_string())
      specials[key] = v;
    else if (v.is_object() && v.contains("content") && v["content"].is_string())
      specials[key] = v["content"];
  }
  if (cfg.contains("additional_special_tokens") &&
      cfg["additional_special_tokens"].is_array())
    specials["additional_special_tokens"] = cfg["additional_special_tokens"];
  try {
    return FromString(tmpl, specials.dump());
  } catch (const Error& e) {
    Fail(file, ": ", e.what());
  }
}

std::string ChatTemplate::Render(std::string_view context_json) const {
  DLLM_CHECK(program_, "chat template: none loaded");
  json ctx;
  try {
    ctx = json::parse(context_json.begin(), context_json.end());
  } catch (const json::exception& e) {
    Fail("chat template context: not valid JSON: ", e.what());
  }
  DLLM_CHECK(ctx.is_object(), "chat template context: expected a JSON object");
  json specials = json::parse(special_tokens_json_);
  Scope global;
  for (auto it = specials.begin(); it != specials.end(); ++it)
    global.vars[it.key()] = FromJson(it.value());
  for (auto it = ctx.begin(); it != ctx.end(); ++it)
    global.vars[it.key()] = FromJson(it.value());
  Interp interp;
  return interp.Run(program_->body, &global);
}

std::string ChatTemplate::Apply(std::string_view messages_json,
                                bool add_generation_prompt) const {
  json in;
  try {
    in = json::parse(messages_json.begin(), messages_json.end());
  } catch (const json::exception& e) {
    Fail("messages: not valid JSON: ", e.what());
  }
  json ctx;
  if (in.is_array()) {
    ctx["messages"] = in;
  } else if (in.is_object() && in.contains("messages")) {
    ctx = in;
  } else {
    Fail(
        "messages: expected a JSON array of {\"role\", \"content\"} or an "
        "object with \"messages\"");
  }
  DLLM_CHECK(ctx["messages"].is_array(), "messages: expected an array");
  ctx["add_generation_prompt"] = add_generation_prompt;
  return Render(ctx.dump());
}

}  // namespace dllm
