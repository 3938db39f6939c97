#include "base/dtype.h"

namespace dllm {

namespace {
struct Entry {
  DType type;
  const char* name;
};
constexpr Entry kNames[] = {
    {DType::kF32, "F32"},   {DType::kF16, "F16"},   {DType::kBF16, "BF16"},
    {DType::kI32, "I32"},   {DType::kI64, "I64"},   {DType::kU8, "U8"},
    {DType::kI8, "I8"},     {DType::kQ8_0, "Q8_0"}, {DType::kQ4_0, "Q4_0"},
    {DType::kQ4_K, "Q4_K"}, {DType::kQ6_K, "Q6_K"}};
}  // namespace

const char* DTypeName(DType t) {
  for (const Entry& e : kNames)
    if (e.type == t) return e.name;
  return "?";
}

bool ParseDType(const std::string& name, DType* out) {
  for (const Entry& e : kNames)
    if (name == e.name) {
      *out = e.type;
      return true;
    }
  return false;
}

}  // namespace dllm
