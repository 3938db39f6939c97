#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "dllm/error.h"
#include "tokenizer/jinja/limits.h"
#include "tokenizer/utf8.h"

namespace dllm::jinja {

using json = nlohmann::ordered_json;

void CheckSize(size_t bytes, const char* what) {
  if (bytes > kMaxOutputBytes)
    Fail("chat template: ", what, " longer than ", kMaxOutputBytes >> 20,
         " MiB");
}

int NestedDepth(const Array& a) {
  int d = 0;
  for (const Value& v : a) d = std::max(d, v.depth);
  return d + 1;
}

void CheckValueDepth(int depth) {
  if (depth > kMaxValueDepth)
    Fail("chat template: value nested deeper than ", kMaxValueDepth);
}

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

void ToJson(const Value& v, const JsonOpts& o, int depth, bool undef_to_null,
            std::string* out) {
  // A list appended to itself is a cycle; the depth bound ends it.
  if (depth > kMaxValueDepth)
    Fail("chat template: tojson: value nested deeper than ", kMaxValueDepth);
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
          CheckSize(out->size(), "tojson output");
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
          CheckSize(out->size(), "tojson output");
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

Value FromJson(const json& j, int depth) {
  // The caller's JSON is outside input too: recursing on 100,000 nested
  // arrays would overflow the stack before any value check ran.
  if (depth > kMaxValueDepth)
    Fail("chat template context: JSON nested deeper than ", kMaxValueDepth);
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
      // JavaScript has one number type: integral values become integers,
      // so 2.0 in the messages prints as "2" as on the Hub.
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15)
        return Value::Int(static_cast<int64_t>(d));
      return Value::Float(d);
    }
    case json::value_t::string:
      return Value::Str(j.get<std::string>());
    case json::value_t::array: {
      Array a;
      for (const json& x : j) a.push_back(FromJson(x, depth + 1));
      return Value::Arr(std::move(a));
    }
    case json::value_t::object: {
      Object o;
      for (auto it = j.begin(); it != j.end(); ++it)
        o.emplace_back(it.key(), FromJson(it.value(), depth + 1));
      return Value::Obj(std::move(o));
    }
    default:
      return Value();
  }
}

bool IsJsSpace(uint32_t c) {
  return c == 0x09 || c == 0x0A || c == 0x0B || c == 0x0C || c == 0x0D ||
         c == 0x20 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

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

}  // namespace dllm::jinja
