#include "formats/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "dllm/error.h"

namespace dllm {

namespace {

constexpr int kMaxArrayDepth = 8;
constexpr int kMaxDims = 4;

// Bytes of one element of a fixed-size value type; 0 for string and array.
size_t FixedSize(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

bool KnownType(uint32_t t) { return t <= uint32_t(GgufType::kF64); }

bool IsIntegerType(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kU16:
    case GgufType::kI16:
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kU64:
    case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

bool IsSignedType(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 ||
         t == GgufType::kI64;
}

// Sign-extends the low `bytes` bytes of v.
int64_t SignExtend(uint64_t v, size_t bytes) {
  if (bytes >= 8) return static_cast<int64_t>(v);
  const unsigned shift = unsigned(64 - 8 * bytes);
  return static_cast<int64_t>(v << shift) >> shift;
}

// Keeps only the bits of the type's width (what the file holds).
uint64_t Truncate(uint64_t v, GgufType t) {
  const size_t n = FixedSize(t);
  return n >= 8 ? v : v & ((uint64_t(1) << (8 * n)) - 1);
}

// A bounds-checked little-endian cursor over the image. Every failure names
// the file, the offset and what was being read.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& origin)
      : p_(data), size_(size), origin_(origin) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void Need(uint64_t n, const std::string& what) const {
    DLLM_CHECK(n <= left(), origin_, ": ", what, " at byte ", pos_, " needs ",
               n, " bytes but only ", left(),
               " are left in the file: truncated?");
  }
  uint64_t ReadUint(size_t bytes, const std::string& what) {
    Need(bytes, what);
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) v |= uint64_t(p_[pos_ + i]) << (8 * i);
    pos_ += bytes;
    return v;
  }
  uint32_t U32(const std::string& what) { return uint32_t(ReadUint(4, what)); }
  uint64_t U64(const std::string& what) { return ReadUint(8, what); }
  std::string String(const std::string& what) {
    const uint64_t n = U64(what + " (its length)");
    DLLM_CHECK(n <= left(), origin_, ": ", what, " at byte ", pos_ - 8,
               " claims ", n, " bytes but only ", left(),
               " are left in the file: truncated or not a GGUF file?");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& origin_;
};

double BitsToFloat(uint64_t bits, GgufType t) {
  if (t == GgufType::kF32) {
    const uint32_t u = uint32_t(bits);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

uint64_t FloatToBits(double v, GgufType t) {
  if (t == GgufType::kF32) {
    const float f = float(v);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  }
  uint64_t u;
  std::memcpy(&u, &v, 8);
  return u;
}

// Reads one value of type t (elements of arrays included); `what` names the
// key for messages.
void ReadValue(Cursor& c, GgufType t, int depth, const std::string& what,
               const std::string& origin, GgufValue* out) {
  out->type = t;
  switch (t) {
    case GgufType::kString:
      out->str = c.String(what);
      return;
    case GgufType::kArray: {
      DLLM_CHECK(depth < kMaxArrayDepth, origin, ": ", what,
                 ": arrays nested more than ", kMaxArrayDepth, " deep");
      const uint32_t et = c.U32(what + " (array element type)");
      DLLM_CHECK(KnownType(et), origin, ": ", what,
                 ": unknown array element type ", et,
                 " (GGUF value types are 0-12)");
      out->elem = GgufType(et);
      const uint64_t n = c.U64(what + " (array length)");
      // Each element takes at least this many bytes, which bounds the count
      // by what is left before anything is allocated.
      const size_t min_bytes = out->elem == GgufType::kString ? 8
                               : out->elem == GgufType::kArray
                                   ? 12
                                   : FixedSize(out->elem);
      DLLM_CHECK(n <= c.left() / min_bytes, origin, ": ", what, ": array of ",
                 n, " ", GgufTypeName(out->elem), " needs at least ", min_bytes,
                 " bytes per element but only ", c.left(),
                 " bytes are left in the file: truncated?");
      // Elements are appended as they are read (a reserve capped at 64k),
      // so a count that only the tensor data could cover allocates no more
      // than the elements actually parsed.
      const size_t hint = size_t(std::min<uint64_t>(n, 1 << 16));
      if (out->elem == GgufType::kString) {
        out->strings.reserve(hint);
        for (uint64_t i = 0; i < n; ++i)
          out->strings.push_back(c.String(StrCat(what, "[", i, "]")));
      } else if (out->elem == GgufType::kArray) {
        out->arrays.reserve(hint);
        for (uint64_t i = 0; i < n; ++i) {
          out->arrays.emplace_back();
          ReadValue(c, GgufType::kArray, depth + 1, StrCat(what, "[", i, "]"),
                    origin, &out->arrays.back());
        }
      } else if (out->elem == GgufType::kF32 || out->elem == GgufType::kF64) {
        const size_t sz = FixedSize(out->elem);
        out->floats.reserve(hint);
        for (uint64_t i = 0; i < n; ++i)
          out->floats.push_back(BitsToFloat(c.ReadUint(sz, what), out->elem));
      } else {
        const size_t sz = FixedSize(out->elem);
        out->ints.reserve(hint);
        for (uint64_t i = 0; i < n; ++i) {
          const uint64_t v = c.ReadUint(sz, what);
          DLLM_CHECK(out->elem != GgufType::kBool || v <= 1, origin, ": ", what,
                     "[", i, "]: bool holds ", v, " (expected 0 or 1)");
          out->ints.push_back(v);
        }
      }
      return;
    }
    case GgufType::kF32:
    case GgufType::kF64:
      out->f = BitsToFloat(c.ReadUint(FixedSize(t), what), t);
      return;
    default: {
      const uint64_t v = c.ReadUint(FixedSize(t), what);
      DLLM_CHECK(t != GgufType::kBool || v <= 1, origin, ": ", what,
                 ": bool holds ", v, " (expected 0 or 1)");
      out->bits = v;
      return;
    }
  }
}

}  // namespace

const char* GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::kU8:
      return "u8";
    case GgufType::kI8:
      return "i8";
    case GgufType::kU16:
      return "u16";
    case GgufType::kI16:
      return "i16";
    case GgufType::kU32:
      return "u32";
    case GgufType::kI32:
      return "i32";
    case GgufType::kF32:
      return "f32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kU64:
      return "u64";
    case GgufType::kI64:
      return "i64";
    case GgufType::kF64:
      return "f64";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// GgufValue

GgufValue GgufValue::Uint(GgufType t, uint64_t v) {
  DLLM_ASSERT(IsIntegerType(t) && !IsSignedType(t));
  GgufValue x;
  x.type = t;
  x.bits = Truncate(v, t);
  return x;
}

GgufValue GgufValue::Int(GgufType t, int64_t v) {
  DLLM_ASSERT(IsSignedType(t));
  GgufValue x;
  x.type = t;
  x.bits = Truncate(static_cast<uint64_t>(v), t);
  return x;
}

GgufValue GgufValue::Float(GgufType t, double v) {
  DLLM_ASSERT(t == GgufType::kF32 || t == GgufType::kF64);
  GgufValue x;
  x.type = t;
  x.f = t == GgufType::kF32 ? double(float(v)) : v;
  return x;
}

GgufValue GgufValue::Bool(bool v) {
  GgufValue x;
  x.type = GgufType::kBool;
  x.bits = v ? 1 : 0;
  return x;
}

GgufValue GgufValue::String(std::string v) {
  GgufValue x;
  x.type = GgufType::kString;
  x.str = std::move(v);
  return x;
}

GgufValue GgufValue::IntArray(GgufType elem, std::vector<uint64_t> v) {
  DLLM_ASSERT(IsIntegerType(elem) || elem == GgufType::kBool);
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem = elem;
  for (uint64_t& e : v) e = Truncate(e, elem);
  x.ints = std::move(v);
  return x;
}

GgufValue GgufValue::FloatArray(GgufType elem, std::vector<double> v) {
  DLLM_ASSERT(elem == GgufType::kF32 || elem == GgufType::kF64);
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem = elem;
  if (elem == GgufType::kF32)
    for (double& e : v) e = double(float(e));
  x.floats = std::move(v);
  return x;
}

GgufValue GgufValue::StringArray(std::vector<std::string> v) {
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem = GgufType::kString;
  x.strings = std::move(v);
  return x;
}

GgufValue GgufValue::ArrayOfArrays(std::vector<GgufValue> v) {
  for (const GgufValue& e : v) DLLM_ASSERT(e.is_array());
  GgufValue x;
  x.type = GgufType::kArray;
  x.elem = GgufType::kArray;
  x.arrays = std::move(v);
  return x;
}

bool GgufValue::is_integer() const { return IsIntegerType(type); }

size_t GgufValue::size() const {
  if (!is_array()) return 0;
  switch (elem) {
    case GgufType::kString:
      return strings.size();
    case GgufType::kArray:
      return arrays.size();
    case GgufType::kF32:
    case GgufType::kF64:
      return floats.size();
    default:
      return ints.size();
  }
}

bool GgufValue::AsInt64(int64_t* out) const {
  if (!is_integer()) return false;
  if (IsSignedType(type)) {
    *out = SignExtend(bits, FixedSize(type));
    return true;
  }
  if (bits > uint64_t(INT64_MAX)) return false;
  *out = int64_t(bits);
  return true;
}

bool GgufValue::AsDouble(double* out) const {
  if (is_float()) {
    *out = f;
    return true;
  }
  if (!is_integer()) return false;
  *out = IsSignedType(type) ? double(SignExtend(bits, FixedSize(type)))
                            : double(bits);
  return true;
}

std::string GgufValue::Describe() const {
  if (is_array()) return StrCat("array of ", size(), " ", GgufTypeName(elem));
  if (type == GgufType::kString) {
    std::string s = str.size() > 40 ? str.substr(0, 40) + "..." : str;
    return StrCat("string \"", s, "\"");
  }
  if (type == GgufType::kBool) return bits ? "bool true" : "bool false";
  if (is_float()) return StrCat(GgufTypeName(type), " ", f);
  int64_t v;
  if (AsInt64(&v)) return StrCat(GgufTypeName(type), " ", v);
  return StrCat(GgufTypeName(type), " ", bits);
}

bool GgufValue::operator==(const GgufValue& o) const {
  if (type != o.type) return false;
  if (is_array())
    return elem == o.elem && ints == o.ints && strings == o.strings &&
           arrays == o.arrays &&
           // Bitwise, so that NaN == NaN and -0 != +0 as in the file.
           floats.size() == o.floats.size() &&
           std::equal(floats.begin(), floats.end(), o.floats.begin(),
                      [&](double a, double b) {
                        return FloatToBits(a, elem) == FloatToBits(b, elem);
                      });
  if (type == GgufType::kString) return str == o.str;
  if (is_float()) return FloatToBits(f, type) == FloatToBits(o.f, type);
  return bits == o.bits;
}

// ---------------------------------------------------------------------------
// ggml types

const char* GgmlTypeName(uint32_t id) {
  static const char* const kNames[] = {
      "F32",        "F16",        "Q4_0",       "Q4_1",     "Q4_2",    "Q4_3",
      "Q5_0",       "Q5_1",       "Q8_0",       "Q8_1",     "Q2_K",    "Q3_K",
      "Q4_K",       "Q5_K",       "Q6_K",       "Q8_K",     "IQ2_XXS", "IQ2_XS",
      "IQ3_XXS",    "IQ1_S",      "IQ4_NL",     "IQ3_S",    "IQ2_S",   "IQ4_XS",
      "I8",         "I16",        "I32",        "I64",      "F64",     "IQ1_M",
      "BF16",       "Q4_0_4_4",   "Q4_0_4_8",   "Q4_0_8_8", "TQ1_0",   "TQ2_0",
      "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",    "NVFP4",   "Q1_0",
      "Q2_0"};
  return id < sizeof(kNames) / sizeof(kNames[0]) ? kNames[id] : "unknown";
}

bool DTypeFromGgml(uint32_t id, DType* out) {
  switch (id) {
    case kGgmlF32:
      *out = DType::kF32;
      return true;
    case kGgmlF16:
      *out = DType::kF16;
      return true;
    case kGgmlBF16:
      *out = DType::kBF16;
      return true;
    case kGgmlQ8_0:
      *out = DType::kQ8_0;
      return true;
    case kGgmlQ4_0:
      *out = DType::kQ4_0;
      return true;
    case kGgmlQ4_K:
      *out = DType::kQ4_K;
      return true;
    case kGgmlQ6_K:
      *out = DType::kQ6_K;
      return true;
    case kGgmlI8:
      *out = DType::kI8;
      return true;
    case kGgmlI32:
      *out = DType::kI32;
      return true;
    case kGgmlI64:
      *out = DType::kI64;
      return true;
    default:
      return false;
  }
}

bool GgmlFromDType(DType t, uint32_t* out) {
  switch (t) {
    case DType::kF32:
      *out = kGgmlF32;
      return true;
    case DType::kF16:
      *out = kGgmlF16;
      return true;
    case DType::kBF16:
      *out = kGgmlBF16;
      return true;
    case DType::kQ8_0:
      *out = kGgmlQ8_0;
      return true;
    case DType::kQ4_0:
      *out = kGgmlQ4_0;
      return true;
    case DType::kQ4_K:
      *out = kGgmlQ4_K;
      return true;
    case DType::kQ6_K:
      *out = kGgmlQ6_K;
      return true;
    case DType::kI8:
      *out = kGgmlI8;
      return true;
    case DType::kI32:
      *out = kGgmlI32;
      return true;
    case DType::kI64:
      *out = kGgmlI64;
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// Parsing

void ParseGguf(const uint8_t* data, size_t size, const std::string& origin,
               GgufContents* out) {
  *out = GgufContents();
  DLLM_CHECK(size >= 4 && std::memcmp(data, "GGUF", 4) == 0, origin,
             size < 4
                 ? ": file is too short for a GGUF header"
                 : ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  Cursor c(data, size, origin);
  c.U32("magic");
  const uint32_t version = c.U32("version");
  DLLM_CHECK(version != 1, origin,
             ": GGUF version 1 is not supported (32-bit counts; convert it "
             "again with a current llama.cpp)");
  DLLM_CHECK((version & 0xFFFF) != 0, origin, ": GGUF version ", version,
             " looks byte-swapped: big-endian GGUF files are not supported");
  DLLM_CHECK(version == 2 || version == 3, origin, ": GGUF version ", version,
             " is not supported (expected 2 or 3)");
  out->version = version;
  const uint64_t n_tensors = c.U64("tensor count");
  const uint64_t n_kv = c.U64("metadata count");
  // A key-value pair takes at least 13 bytes (8 + key + 4 + 1), a tensor
  // info at least 24 (8 + name + 4 + 4 + 8): counts the file cannot hold
  // are refused before anything is allocated.
  DLLM_CHECK(n_kv <= c.left() / 13, origin, ": header claims ", n_kv,
             " metadata entries but the file has room for at most ",
             c.left() / 13, ": truncated or not a GGUF file?");
  DLLM_CHECK(n_tensors <= c.left() / 24, origin, ": header claims ", n_tensors,
             " tensors but the file has room for at most ", c.left() / 24,
             ": truncated or not a GGUF file?");

  std::map<std::string, size_t> keys;
  out->metadata.reserve(size_t(std::min<uint64_t>(n_kv, 1 << 16)));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string where = StrCat("metadata entry ", i);
    std::string key = c.String(where + " key");
    DLLM_CHECK(!key.empty(), origin, ": ", where, " has an empty key");
    DLLM_CHECK(keys.emplace(key, out->metadata.size()).second, origin,
               ": metadata key '", key, "' appears twice");
    const std::string what = "metadata '" + key + "'";
    const uint32_t t = c.U32(what + " (type)");
    DLLM_CHECK(KnownType(t), origin, ": ", what, " has unknown value type ", t,
               " (GGUF value types are 0-12)");
    GgufValue v;
    ReadValue(c, GgufType(t), 0, what, origin, &v);
    out->metadata.emplace_back(std::move(key), std::move(v));
  }

  auto al = keys.find("general.alignment");
  if (al != keys.end()) {
    const GgufValue& v = out->metadata[al->second].second;
    int64_t a = 0;
    DLLM_CHECK(v.is_integer() && v.AsInt64(&a), origin,
               ": general.alignment must be an unsigned integer, got ",
               v.Describe());
    DLLM_CHECK(a > 0 && a <= (int64_t(1) << 30) && (a & (a - 1)) == 0, origin,
               ": general.alignment ", a,
               " is not a power of two in [1, 2^30]");
    out->alignment = uint32_t(a);
  }

  struct Info {
    uint64_t offset, nbytes;
    size_t index;
  };
  std::vector<Info> infos;
  std::set<std::string> names;
  out->tensors.reserve(size_t(std::min<uint64_t>(n_tensors, 1 << 16)));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorView t;
    t.name = c.String(StrCat("tensor ", i, " name"));
    DLLM_CHECK(!t.name.empty(), origin, ": tensor ", i, " has an empty name");
    DLLM_CHECK(t.name.size() < kGgufMaxTensorName, origin, ": tensor ", i,
               " name '", t.name.substr(0, 80), "' is ", t.name.size(),
               " bytes (ggml allows at most ", kGgufMaxTensorName - 1, ")");
    DLLM_CHECK(names.insert(t.name).second, origin, ": tensor '", t.name,
               "' appears twice");
    const std::string where = "tensor '" + t.name + "'";
    const uint32_t n_dims = c.U32(where + " (dimension count)");
    DLLM_CHECK(n_dims <= uint32_t(kMaxDims), origin, ": ", where, " has ",
               n_dims, " dimensions (at most ", kMaxDims, ")");
    std::vector<uint64_t> ne(n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = c.U64(where + " (dimensions)");
      DLLM_CHECK(ne[d] < (uint64_t(1) << 48) &&
                     !__builtin_mul_overflow(numel, ne[d], &numel) &&
                     numel < (uint64_t(1) << 48),
                 origin, ": ", where, " has an absurdly large shape");
    }
    const uint32_t type = c.U32(where + " (type)");
    DLLM_CHECK(DTypeFromGgml(type, &t.dtype), origin,
               ": unsupported ggml type ", type, " (", GgmlTypeName(type),
               ") for tensor '", t.name,
               "' (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, I8, I32, "
               "I64)");
    const uint64_t offset = c.U64(where + " (offset)");
    const int64_t block = DTypeBlock(t.dtype);
    const uint64_t ne0 = n_dims ? ne[0] : 1;
    DLLM_CHECK(ne0 % uint64_t(block) == 0, origin, ": ", where, " of type ",
               DTypeName(t.dtype), " has ", ne0,
               " values per row, not a multiple of its block of ", block);
    for (uint32_t d = n_dims; d-- > 0;) t.shape.push_back(int64_t(ne[d]));
    const uint64_t nbytes = DTypeBytes(t.dtype, int64_t(numel));
    DLLM_CHECK(offset % out->alignment == 0, origin, ": ", where, " offset ",
               offset, " is not a multiple of the alignment ", out->alignment);
    t.nbytes = size_t(nbytes);
    infos.push_back({offset, nbytes, out->tensors.size()});
    out->tensors.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment (a file
  // without tensors may end at its header).
  const uint64_t a = out->alignment;
  const uint64_t start = (uint64_t(c.pos()) + a - 1) / a * a;
  out->data_offset = start;
  if (n_tensors == 0) return;
  DLLM_CHECK(start <= size, origin, ": the data section would start at byte ",
             start, ", past the end of the file (", size,
             " bytes): truncated?");
  const uint64_t data_size = size - start;
  for (const Info& in : infos) {
    TensorView& t = out->tensors[in.index];
    DLLM_CHECK(in.offset <= data_size && in.nbytes <= data_size - in.offset,
               origin, ": tensor '", t.name, "' needs bytes [", in.offset, ", ",
               in.offset + in.nbytes, ") of the data section, which has only ",
               data_size, ": truncated file?");
    t.data = data + start + in.offset;
  }
  std::sort(infos.begin(), infos.end(), [](const Info& x, const Info& y) {
    return x.offset != y.offset ? x.offset < y.offset : x.nbytes < y.nbytes;
  });
  const Info* furthest = nullptr;
  for (const Info& in : infos) {
    if (in.nbytes == 0) continue;
    if (furthest && in.offset < furthest->offset + furthest->nbytes)
      Fail(origin, ": tensors '", out->tensors[furthest->index].name, "' and '",
           out->tensors[in.index].name, "' overlap in the data section");
    if (!furthest ||
        in.offset + in.nbytes > furthest->offset + furthest->nbytes)
      furthest = &in;
  }
}

GgufFile::GgufFile(const std::string& path)
    : file_(std::make_unique<MappedFile>(path)),
      origin_(path),
      size_(file_->size()) {
  ParseGguf(file_->data(), file_->size(), path, &c_);
  Index();
}

GgufFile::GgufFile(const uint8_t* data, size_t size, const std::string& origin)
    : origin_(origin), size_(size) {
  ParseGguf(data, size, origin, &c_);
  Index();
}

GgufFile::~GgufFile() = default;

void GgufFile::Index() {
  for (size_t i = 0; i < c_.metadata.size(); ++i)
    index_[c_.metadata[i].first] = i;
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &c_.metadata[it->second].second;
}

int64_t GgufFile::GetInt(const std::string& key, int64_t lo, int64_t hi) const {
  const GgufValue* v = Find(key);
  DLLM_CHECK(v != nullptr, path(), ": missing metadata '", key, "'");
  int64_t x = 0;
  DLLM_CHECK(v->AsInt64(&x), path(), ": metadata '", key,
             "' must be an integer, got ", v->Describe());
  DLLM_CHECK(x >= lo && x <= hi, path(), ": metadata '", key, "' = ", x,
             " is out of range [", lo, ", ", hi, "]");
  return x;
}

int64_t GgufFile::GetIntOr(const std::string& key, int64_t def, int64_t lo,
                           int64_t hi) const {
  return Find(key) ? GetInt(key, lo, hi) : def;
}

double GgufFile::GetNumberOr(const std::string& key, double def, double lo,
                             double hi) const {
  const GgufValue* v = Find(key);
  if (!v) return def;
  double x = 0;
  DLLM_CHECK(v->AsDouble(&x), path(), ": metadata '", key,
             "' must be a number, got ", v->Describe());
  DLLM_CHECK(x >= lo && x <= hi, path(), ": metadata '", key, "' = ", x,
             " is out of range [", lo, ", ", hi, "]");
  return x;
}

bool GgufFile::GetBoolOr(const std::string& key, bool def) const {
  const GgufValue* v = Find(key);
  if (!v) return def;
  DLLM_CHECK(v->type == GgufType::kBool, path(), ": metadata '", key,
             "' must be a bool, got ", v->Describe());
  return v->bits != 0;
}

std::string GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  DLLM_CHECK(v != nullptr, path(), ": missing metadata '", key, "'");
  DLLM_CHECK(v->type == GgufType::kString, path(), ": metadata '", key,
             "' must be a string, got ", v->Describe());
  return v->str;
}

std::string GgufFile::GetStringOr(const std::string& key,
                                  const std::string& def) const {
  return Find(key) ? GetString(key) : def;
}

const std::vector<std::string>& GgufFile::GetStrings(
    const std::string& key) const {
  const GgufValue* v = Find(key);
  DLLM_CHECK(v != nullptr, path(), ": missing metadata '", key, "'");
  DLLM_CHECK(v->is_array() && v->elem == GgufType::kString, path(),
             ": metadata '", key, "' must be an array of strings, got ",
             v->Describe());
  return v->strings;
}

bool LooksLikeGguf(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char magic[4] = {};
  const ssize_t n = read(fd, magic, 4);
  close(fd);
  return n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

// ---------------------------------------------------------------------------
// Writing

namespace {

void PutUint(std::string& out, uint64_t v, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) out.push_back(char((v >> (8 * i)) & 0xFF));
}

void PutString(std::string& out, const std::string& s) {
  PutUint(out, s.size(), 8);
  out += s;
}

void PutValue(std::string& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::kString:
      PutString(out, v.str);
      return;
    case GgufType::kArray:
      PutUint(out, uint32_t(v.elem), 4);
      PutUint(out, v.size(), 8);
      if (v.elem == GgufType::kString) {
        for (const std::string& s : v.strings) PutString(out, s);
      } else if (v.elem == GgufType::kArray) {
        for (const GgufValue& e : v.arrays) {
          DLLM_ASSERT(e.is_array());
          PutValue(out, e);
        }
      } else if (v.elem == GgufType::kF32 || v.elem == GgufType::kF64) {
        for (double f : v.floats)
          PutUint(out, FloatToBits(f, v.elem), FixedSize(v.elem));
      } else {
        for (uint64_t x : v.ints) PutUint(out, x, FixedSize(v.elem));
      }
      return;
    case GgufType::kF32:
    case GgufType::kF64:
      PutUint(out, FloatToBits(v.f, v.type), FixedSize(v.type));
      return;
    default:
      PutUint(out, v.bits, FixedSize(v.type));
      return;
  }
}

}  // namespace

void WriteGguf(const std::string& path, const GgufMetadata& metadata,
               const std::vector<TensorToWrite>& tensors) {
  uint64_t align = kGgufDefaultAlignment;
  std::set<std::string> keys;
  for (const auto& [k, v] : metadata) {
    DLLM_CHECK(!k.empty(), path, ": a metadata key is empty");
    DLLM_CHECK(keys.insert(k).second, path, ": metadata key '", k,
               "' written twice");
    if (k == "general.alignment") {
      int64_t a = 0;
      DLLM_CHECK(v.type == GgufType::kU32 && v.AsInt64(&a) && a > 0 &&
                     (a & (a - 1)) == 0,
                 path, ": general.alignment must be a u32 power of two, got ",
                 v.Describe());
      align = uint64_t(a);
    }
  }
  std::string head("GGUF", 4);
  PutUint(head, 3, 4);
  PutUint(head, tensors.size(), 8);
  PutUint(head, metadata.size(), 8);
  for (const auto& [k, v] : metadata) {
    PutString(head, k);
    PutUint(head, uint32_t(v.type), 4);
    PutValue(head, v);
  }
  std::set<std::string> names;
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    DLLM_CHECK(!t.name.empty() && t.name.size() < kGgufMaxTensorName, path,
               ": tensor name '", t.name, "' must be 1 to ",
               kGgufMaxTensorName - 1, " bytes for ggml");
    DLLM_CHECK(names.insert(t.name).second, path, ": tensor '", t.name,
               "' written twice");
    DLLM_CHECK(t.shape.size() <= size_t(kMaxDims), path, ": tensor '", t.name,
               "' has ", t.shape.size(), " dimensions (GGUF holds at most ",
               kMaxDims, ")");
    uint32_t type = 0;
    DLLM_CHECK(GgmlFromDType(t.dtype, &type), path, ": tensor '", t.name,
               "': dtype ", DTypeName(t.dtype), " has no GGUF type");
    const int64_t ne0 = t.shape.empty() ? 1 : t.shape.back();
    DLLM_CHECK(ne0 % DTypeBlock(t.dtype) == 0, path, ": tensor '", t.name,
               "' has rows of ", ne0, " values, not a multiple of the ",
               DTypeName(t.dtype), " block of ", DTypeBlock(t.dtype));
    PutString(head, t.name);
    PutUint(head, t.shape.size(), 4);
    for (size_t d = t.shape.size(); d-- > 0;)
      PutUint(head, uint64_t(t.shape[d]), 8);
    PutUint(head, type, 4);
    PutUint(head, offset, 8);
    const uint64_t n = TensorBytes(t.dtype, t.shape);
    sizes.push_back(n);
    offset += (n + align - 1) / align * align;
  }
  while (head.size() % align != 0) head.push_back('\0');

  AtomicFileWriter w(path);
  w.Write(head.data(), head.size());
  const std::vector<char> zeros(size_t(align), 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = sizes[i];
    if (n && tensors[i].data) {
      w.Write(tensors[i].data, size_t(n));
    } else if (n) {
      DLLM_ASSERT(tensors[i].fill != nullptr);
      std::vector<uint8_t> buf(static_cast<size_t>(n));
      tensors[i].fill(buf.data());
      w.Write(buf.data(), size_t(n));
    }
    const uint64_t pad = (align - n % align) % align;
    if (pad) w.Write(zeros.data(), size_t(pad));
  }
  w.Commit();
}

}  // namespace dllm
