// GGUF (llama.cpp's weight format), versions 2 and 3, little-endian:
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
//   n_kv x (string key, u32 type, value),
//   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
//                u64 offset),
//   padding to general.alignment (default 32), then the data section, each
//   tensor at its offset from the data start (a multiple of the alignment).
// A string is a u64 byte length and the bytes; an array is u32 element type,
// u64 count and the elements (arrays may nest). ne[0] is the contiguous
// dimension, so a TensorView's shape is ne reversed: {ne[n-1], ..., ne[0]}.
// Files are mmapped; tensors are views into the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "base/mmap_file.h"
#include "formats/tensor.h"

namespace dllm {

// Value types of GGUF metadata, with their ids in the file.
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// "u32", "string", "array", ...
const char* GgufTypeName(GgufType t);

// One metadata value. Integers and bools keep their bits in `bits`
// (two's complement for signed types), floats their value in `f` (an f32 is
// exact in a double); arrays keep their elements in the member of their
// element kind, so a 150k-token vocabulary is one vector of strings.
struct GgufValue {
  GgufType type = GgufType::kU8;
  uint64_t bits = 0;
  double f = 0;
  std::string str;
  // Arrays: the element type and exactly one of the vectors below in use.
  GgufType elem = GgufType::kU8;
  std::vector<uint64_t> ints;        // integer or bool elements
  std::vector<double> floats;        // f32 / f64 elements
  std::vector<std::string> strings;  // string elements
  std::vector<GgufValue> arrays;     // nested arrays (each with type kArray)

  // Scalars.
  static GgufValue Uint(GgufType t, uint64_t v);  // t: an unsigned type
  static GgufValue Int(GgufType t, int64_t v);    // t: a signed type
  static GgufValue U32(uint32_t v) { return Uint(GgufType::kU32, v); }
  static GgufValue I32(int32_t v) { return Int(GgufType::kI32, v); }
  static GgufValue U64(uint64_t v) { return Uint(GgufType::kU64, v); }
  static GgufValue Float(GgufType t, double v);  // kF32 or kF64
  static GgufValue F32(float v) { return Float(GgufType::kF32, v); }
  static GgufValue Bool(bool v);
  static GgufValue String(std::string v);
  // Arrays.
  static GgufValue IntArray(GgufType elem, std::vector<uint64_t> v);
  static GgufValue FloatArray(GgufType elem, std::vector<double> v);
  static GgufValue StringArray(std::vector<std::string> v);
  static GgufValue ArrayOfArrays(std::vector<GgufValue> v);

  bool is_integer() const;  // u8 ... i64 (not bool)
  bool is_float() const {
    return type == GgufType::kF32 || type == GgufType::kF64;
  }
  bool is_array() const { return type == GgufType::kArray; }
  // Number of array elements (0 for scalars).
  size_t size() const;
  // An integer scalar's value as a signed number; false when the value does
  // not fit in an int64 (a u64 above 2^63) or this is not an integer.
  bool AsInt64(int64_t* out) const;
  // A numeric scalar (integer or float) as a double.
  bool AsDouble(double* out) const;
  // A short description for messages: "u32 7", "string \"gpt2\"",
  // "array of 3 string".
  std::string Describe() const;

  bool operator==(const GgufValue& o) const;
  bool operator!=(const GgufValue& o) const { return !(*this == o); }
};

// Metadata in file order.
using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;

// ggml tensor type ids (ggml.h); the ones a TensorView can hold map to a
// DType.
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ8_0 = 8,
                   kGgmlQ4_K = 12, kGgmlQ6_K = 14, kGgmlI8 = 24, kGgmlI32 = 26,
                   kGgmlI64 = 27, kGgmlBF16 = 30;
// ggml's name of a type id ("Q5_K", "IQ2_XXS", ...; "unknown" if none).
const char* GgmlTypeName(uint32_t id);
// DType of a ggml type id; false for the ones we do not read.
bool DTypeFromGgml(uint32_t id, DType* out);
// ggml type id of a DType; false for none (kU8 has no ggml twin).
bool GgmlFromDType(DType t, uint32_t* out);

constexpr uint32_t kGgufDefaultAlignment = 32;
// ggml's bound on tensor names (GGML_MAX_NAME, terminator included).
constexpr size_t kGgufMaxTensorName = 64;

// A parsed GGUF image. Tensors are views into the bytes given to ParseGguf.
struct GgufContents {
  uint32_t version = 3;
  uint32_t alignment = kGgufDefaultAlignment;
  GgufMetadata metadata;
  std::vector<TensorView> tensors;  // in file order
  uint64_t data_offset = 0;         // where the data section starts
};

// Parses and validates a whole GGUF image held in memory: magic, version (2
// or 3), counts bounded by the bytes left, every string and array length
// bounded by the bytes left, known value types only (arrays nest at most 8
// deep), no empty or duplicate keys, general.alignment an unsigned power of
// two, tensor names unique and shorter than 64 bytes, at most 4 dimensions,
// element counts without overflow, ggml types we read (others fail with
// "unsupported ggml type N (NAME) for tensor X"), ne[0] a multiple of the
// type's block, data offsets aligned, inside the file and not overlapping.
// `origin` names the file in every error.
void ParseGguf(const uint8_t* data, size_t size, const std::string& origin,
               GgufContents* out);

// One mmapped GGUF file (or an image in memory the caller keeps alive).
class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  // Parses `size` bytes at `data`; `origin` names them in errors.
  GgufFile(const uint8_t* data, size_t size, const std::string& origin);
  ~GgufFile();
  const std::string& path() const { return origin_; }
  size_t file_size() const { return size_; }
  const GgufContents& contents() const { return c_; }
  const std::vector<TensorView>& tensors() const { return c_.tensors; }
  const GgufMetadata& metadata() const { return c_.metadata; }
  uint32_t version() const { return c_.version; }

  // nullptr when absent.
  const GgufValue* Find(const std::string& key) const;
  // Typed reads that name the file and key in errors. The *Or forms return
  // `def` when the key is absent; a key of the wrong type is always an error.
  int64_t GetInt(const std::string& key, int64_t lo, int64_t hi) const;
  int64_t GetIntOr(const std::string& key, int64_t def, int64_t lo,
                   int64_t hi) const;
  double GetNumberOr(const std::string& key, double def, double lo,
                     double hi) const;
  bool GetBoolOr(const std::string& key, bool def) const;
  std::string GetString(const std::string& key) const;
  std::string GetStringOr(const std::string& key, const std::string& def) const;
  // A string array (e.g. tokenizer.ggml.tokens); throws when absent.
  const std::vector<std::string>& GetStrings(const std::string& key) const;

 private:
  void Index();
  std::unique_ptr<MappedFile> file_;  // null for an image in memory
  std::string origin_;
  size_t size_ = 0;
  GgufContents c_;
  std::map<std::string, size_t> index_;  // key -> metadata position
};

// True when the file at `path` starts with the GGUF magic.
bool LooksLikeGguf(const std::string& path);

// Writes a GGUF v3 file atomically (temp file, fsync, rename): the metadata
// in the given order, then the tensors in the given order, each at an offset
// aligned to general.alignment (taken from `metadata` when present, else 32)
// and padded after. Tensors are produced one at a time (TensorToWrite::fill),
// so a model is written with one tensor in memory. Shapes are row-major
// (written as ne reversed); block types need whole blocks per row. Throws on
// names ggml cannot read (empty, duplicate, 64 bytes or more) and dtypes
// GGUF has no id for.
void WriteGguf(const std::string& path, const GgufMetadata& metadata,
               const std::vector<TensorToWrite>& tensors);

}  // namespace dllm
