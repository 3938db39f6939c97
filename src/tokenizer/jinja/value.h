// The values a chat template computes with. They follow JavaScript's model
// (as @huggingface/jinja does): one shared, mutable list or mapping may be
// reachable from several names, so lists and mappings are held by
// shared_ptr, and `x.append(y)` is seen through every alias.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dllm::jinja {

struct Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // insertion order
using Kwargs = std::vector<std::pair<std::string, Value>>;
using Func = std::function<Value(std::vector<Value>&, Kwargs&)>;

// Throws when a template builds text longer than kMaxOutputBytes.
void CheckSize(size_t bytes, const char* what);
// 1 + the deepest element of `a`.
int NestedDepth(const Array& a);
void CheckValueDepth(int depth);

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
  // Lists/mappings: 1 + the deepest element when built (0 for scalars).
  // Destroying a value recurses this deep, so building one deeper than
  // kMaxValueDepth fails. Containers changed in place (append, set ns.x)
  // may grow past it; the interpreter keeps those alive until the render
  // ends and empties them one by one, so their destruction never recurses.
  int depth = 0;

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
    v.depth = NestedDepth(a);
    CheckValueDepth(v.depth);
    v.arr = std::make_shared<Array>(std::move(a));
    return v;
  }
  static Value Obj(Object o = {}) {
    Value v;
    v.kind = kObject;
    for (const auto& [k, x] : o) v.depth = std::max(v.depth, x.depth);
    v.depth += 1;
    CheckValueDepth(v.depth);
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
    depth = std::max(depth, v.depth + 1);
    for (auto& [k, old] : *obj)
      if (k == key) {
        old = std::move(v);
        return;
      }
    obj->emplace_back(key, std::move(v));
  }
};

const char* KindName(const Value& v);
bool Truthy(const Value& v);

// JavaScript's Number.prototype.toString for finite doubles.
std::string JsNumber(double x);
// JSON.stringify of a string.
std::string JsonString(std::string_view s, bool ensure_ascii);

struct JsonOpts {
  int indent = 0;
  bool ensure_ascii = false, sort_keys = false;
  bool has_separators = false;
  std::string item_sep, key_sep;
};
// Appends the JSON of `v` (the tojson filter; `undef_to_null` as HF does).
void ToJson(const Value& v, const JsonOpts& o, int depth, bool undef_to_null,
            std::string* out);
// The text `{{ v }}` prints.
std::string ToStr(const Value& v);
Value FromJson(const nlohmann::ordered_json& j, int depth = 0);

// JavaScript's notion of white space (String.prototype.trim, /\s/).
bool IsJsSpace(uint32_t c);
// Byte length of the white space at the start / end of s.
size_t LeadingSpace(std::string_view s);
size_t TrailingSpace(std::string_view s);
std::string Trim(std::string_view s);

}  // namespace dllm::jinja
