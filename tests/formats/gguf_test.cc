// The GGUF reader and writer: round trips of every value and tensor type,
// the tensor store over GGUF, and one test for each kind of malformed file
// (every prefix of a valid file included).
#include "formats/gguf.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "base/mmap_file.h"
#include "formats/tensor_store.h"
#include "test_util.h"

namespace dllm {
namespace {

// ---------------------------------------------------------------------------
// Hand-made images, for the malformed cases.

void U32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xFF));
}
void U64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(char((v >> (8 * i)) & 0xFF));
}
void Str(std::string& s, const std::string& v) {
  U64(s, v.size());
  s += v;
}
std::string Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  std::string s = "GGUF";
  U32(s, version);
  U64(s, n_tensors);
  U64(s, n_kv);
  return s;
}
// A tensor info: name, dims (ne order), ggml type, offset.
void Info(std::string& s, const std::string& name,
          const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
  Str(s, name);
  U32(s, uint32_t(ne.size()));
  for (uint64_t d : ne) U64(s, d);
  U32(s, type);
  U64(s, offset);
}
// Pads to 32 and appends `data_bytes` bytes of data.
std::string WithData(std::string s, size_t data_bytes) {
  while (s.size() % 32) s.push_back('\0');
  return s + std::string(data_bytes, '\x01');
}

void Parse(const std::string& img) {
  GgufContents c;
  ParseGguf(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "x.gguf",
            &c);
}

// ---------------------------------------------------------------------------

GgufMetadata EveryValueType() {
  GgufMetadata m;
  m.emplace_back("general.architecture", GgufValue::String("llada"));
  m.emplace_back("u8", GgufValue::Uint(GgufType::kU8, 200));
  m.emplace_back("i8", GgufValue::Int(GgufType::kI8, -100));
  m.emplace_back("u16", GgufValue::Uint(GgufType::kU16, 60000));
  m.emplace_back("i16", GgufValue::Int(GgufType::kI16, -30000));
  m.emplace_back("u32", GgufValue::U32(4000000000u));
  m.emplace_back("i32", GgufValue::I32(-2000000000));
  m.emplace_back("f32", GgufValue::F32(0.1f));
  m.emplace_back("bool_t", GgufValue::Bool(true));
  m.emplace_back("bool_f", GgufValue::Bool(false));
  m.emplace_back("string", GgufValue::String(std::string("a\0b\xC3\xA9", 5)));
  m.emplace_back("empty_string", GgufValue::String(""));
  m.emplace_back("u64", GgufValue::U64(UINT64_MAX));
  m.emplace_back("i64", GgufValue::Int(GgufType::kI64, INT64_MIN));
  m.emplace_back("f64", GgufValue::Float(GgufType::kF64, 1.0 / 3.0));
  for (GgufType t : {GgufType::kU8, GgufType::kI8, GgufType::kU16,
                     GgufType::kI16, GgufType::kU32, GgufType::kI32,
                     GgufType::kU64, GgufType::kI64, GgufType::kBool})
    m.emplace_back(std::string("array.") + GgufTypeName(t),
                   GgufValue::IntArray(t, {0, 1, 1, 0, 1}));
  m.emplace_back("array.i32_neg",
                 GgufValue::IntArray(GgufType::kI32, {uint64_t(-5)}));
  m.emplace_back("array.f32",
                 GgufValue::FloatArray(GgufType::kF32, {0.5, -1.25, 3e38}));
  m.emplace_back("array.f64",
                 GgufValue::FloatArray(GgufType::kF64, {1e300, -0.0}));
  m.emplace_back("array.string",
                 GgufValue::StringArray({"a", "", "Ġthe", "<|mask|>"}));
  m.emplace_back("array.empty", GgufValue::StringArray({}));
  m.emplace_back(
      "array.nested",
      GgufValue::ArrayOfArrays({GgufValue::StringArray({"x", "y"}),
                                GgufValue::IntArray(GgufType::kU32, {7}),
                                GgufValue::ArrayOfArrays({GgufValue::FloatArray(
                                    GgufType::kF32, {2.0})}),
                                GgufValue::IntArray(GgufType::kU8, {})}));
  return m;
}

// Every ggml type we read, 1 to 4 dimensions, one empty tensor, random
// bytes (the reader does not decode them).
struct TestTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

std::vector<TestTensor> EveryTensorType() {
  std::vector<TestTensor> out;
  auto add = [&](const std::string& name, DType t, std::vector<int64_t> shape) {
    TestTensor x{name, t, shape, {}};
    x.bytes.resize(TensorBytes(t, shape));
    for (size_t i = 0; i < x.bytes.size(); ++i)
      x.bytes[i] = uint8_t((i * 131 + out.size() * 7 + 3) & 0xFF);
    out.push_back(std::move(x));
  };
  add("f32", DType::kF32, {3, 5});
  add("f16", DType::kF16, {7});
  add("bf16", DType::kBF16, {2, 3, 4});
  add("q8_0", DType::kQ8_0, {3, 64});
  add("q4_0", DType::kQ4_0, {2, 2, 2, 32});
  add("q4_k", DType::kQ4_K, {2, 256});
  add("q6_k", DType::kQ6_K, {1, 512});
  add("i8", DType::kI8, {9});
  add("i32", DType::kI32, {4, 1});
  add("i64", DType::kI64, {2});
  add("empty", DType::kF32, {0, 4});
  return out;
}

void WriteTestFile(const std::string& path, const GgufMetadata& m,
                   const std::vector<TestTensor>& ts, bool use_fill) {
  std::vector<TensorToWrite> w;
  for (const TestTensor& t : ts) {
    TensorToWrite x;
    x.name = t.name;
    x.dtype = t.dtype;
    x.shape = t.shape;
    if (use_fill)
      x.fill = [&t](void* dst) {
        if (!t.bytes.empty()) std::memcpy(dst, t.bytes.data(), t.bytes.size());
      };
    else
      x.data = t.bytes.data();
    w.push_back(std::move(x));
  }
  WriteGguf(path, m, w);
}

TEST(Gguf, RoundTripsEveryValueAndTensorType) {
  test::TempDir dir;
  const GgufMetadata m = EveryValueType();
  const std::vector<TestTensor> ts = EveryTensorType();
  for (bool use_fill : {false, true}) {
    WriteTestFile(dir / "m.gguf", m, ts, use_fill);
    GgufFile f(dir / "m.gguf");
    EXPECT_EQ(f.version(), 3u);
    ASSERT_EQ(f.metadata().size(), m.size());
    for (size_t i = 0; i < m.size(); ++i) {
      EXPECT_EQ(f.metadata()[i].first, m[i].first);
      EXPECT_TRUE(f.metadata()[i].second == m[i].second)
          << m[i].first << ": " << f.metadata()[i].second.Describe() << " vs "
          << m[i].second.Describe();
    }
    ASSERT_EQ(f.tensors().size(), ts.size());
    for (size_t i = 0; i < ts.size(); ++i) {
      const TensorView& v = f.tensors()[i];
      EXPECT_EQ(v.name, ts[i].name);
      EXPECT_EQ(v.dtype, ts[i].dtype) << v.name;
      EXPECT_EQ(v.shape, ts[i].shape) << v.name;
      ASSERT_EQ(v.nbytes, ts[i].bytes.size()) << v.name;
      if (v.nbytes) {
        EXPECT_EQ(std::memcmp(v.data, ts[i].bytes.data(), v.nbytes), 0)
            << v.name;
      }
    }
  }
  // Typed reads.
  GgufFile f(dir / "m.gguf");
  EXPECT_EQ(f.GetString("general.architecture"), "llada");
  EXPECT_EQ(f.GetInt("u32", 0, INT64_MAX), 4000000000);
  EXPECT_EQ(f.GetInt("i8", -128, 127), -100);
  EXPECT_EQ(f.GetInt("i64", INT64_MIN, 0), INT64_MIN);
  EXPECT_TRUE(f.GetBoolOr("bool_t", false));
  EXPECT_FALSE(f.GetBoolOr("bool_f", true));
  EXPECT_TRUE(f.GetBoolOr("absent", true));
  EXPECT_FLOAT_EQ(float(f.GetNumberOr("f32", 0, -1, 1)), 0.1f);
  EXPECT_EQ(f.GetNumberOr("absent", 7, 0, 10), 7);
  EXPECT_EQ(f.GetStrings("array.string")[2], "Ġthe");
  EXPECT_DLLM_ERROR(f.GetInt("u64", 0, INT64_MAX), "must be an integer");
  EXPECT_DLLM_ERROR(f.GetInt("u32", 0, 10), "out of range [0, 10]");
  EXPECT_DLLM_ERROR(f.GetString("u8"),
                    "m.gguf: metadata 'u8' must be a string");
  EXPECT_DLLM_ERROR(f.GetBoolOr("u8", false), "must be a bool");
  EXPECT_DLLM_ERROR(f.GetStrings("array.f32"), "must be an array of strings");
  EXPECT_DLLM_ERROR(f.GetString("nope"), "missing metadata 'nope'");
}

// Offsets are multiples of general.alignment (from the file's start too,
// as the data section is aligned); a custom alignment round trips.
TEST(Gguf, AlignsTensorData) {
  test::TempDir dir;
  for (uint32_t align : {32u, 64u, 256u}) {
    GgufMetadata m;
    if (align != 32) m.emplace_back("general.alignment", GgufValue::U32(align));
    m.emplace_back("k", GgufValue::String("odd length"));
    std::vector<TestTensor> ts = EveryTensorType();
    WriteTestFile(dir / "a.gguf", m, ts, false);
    GgufFile f(dir / "a.gguf");
    EXPECT_EQ(f.contents().alignment, align);
    EXPECT_EQ(f.contents().data_offset % align, 0u);
    const uint8_t* base = f.tensors()[0].data;
    for (const TensorView& v : f.tensors()) {
      if (v.nbytes) {
        EXPECT_EQ(size_t(v.data - base) % align, 0u) << v.name;
      }
    }
    // The file ends with the last tensor's padding, as ggml expects.
    EXPECT_EQ(f.file_size() % align, 0u);
  }
}

TEST(Gguf, ReadsVersion2) {
  test::TempDir dir;
  WriteTestFile(dir / "v3.gguf", EveryValueType(), EveryTensorType(), false);
  std::string b = ReadFileToString(dir / "v3.gguf");
  b[4] = 2;
  std::ofstream(dir / "v2.gguf", std::ios::binary) << b;
  GgufFile f(dir / "v2.gguf");
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.tensors().size(), EveryTensorType().size());
}

// Every prefix of a small valid file is refused with an error naming the
// file, until the last tensor's data is complete (the trailing padding is
// optional).
TEST(Gguf, EveryTruncationIsAnError) {
  test::TempDir dir;
  GgufMetadata m;
  m.emplace_back("general.architecture", GgufValue::String("llada"));
  m.emplace_back("n", GgufValue::U32(3));
  m.emplace_back("list", GgufValue::StringArray({"ab", "c"}));
  m.emplace_back("nested", GgufValue::ArrayOfArrays(
                               {GgufValue::IntArray(GgufType::kI16, {1, 2})}));
  std::vector<TestTensor> ts = {{"a", DType::kF32, {3}, {}},
                                {"b", DType::kQ8_0, {1, 32}, {}}};
  for (TestTensor& t : ts) t.bytes.assign(TensorBytes(t.dtype, t.shape), 7);
  WriteTestFile(dir / "t.gguf", m, ts, false);
  const std::string full = ReadFileToString(dir / "t.gguf");
  GgufContents c;
  ParseGguf(reinterpret_cast<const uint8_t*>(full.data()), full.size(), "t",
            &c);
  const size_t needed = size_t(c.data_offset) + 32 + 34;  // b at offset 32
  for (size_t n = 0; n < full.size(); ++n) {
    GgufContents out;
    if (n >= needed) {
      EXPECT_NO_THROW(ParseGguf(reinterpret_cast<const uint8_t*>(full.data()),
                                n, "cut.gguf", &out))
          << n;
      continue;
    }
    try {
      ParseGguf(reinterpret_cast<const uint8_t*>(full.data()), n, "cut.gguf",
                &out);
      ADD_FAILURE() << "prefix of " << n << " bytes accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Gguf, RejectsMalformedHeaders) {
  EXPECT_DLLM_ERROR(Parse("GG"), "too short");
  EXPECT_DLLM_ERROR(Parse("GGML" + std::string(20, '\0')), "not a GGUF file");
  EXPECT_DLLM_ERROR(Parse(Header(0, 0, 1)), "version 1 is not supported");
  EXPECT_DLLM_ERROR(Parse(Header(0, 0, 4)), "version 4 is not supported");
  EXPECT_DLLM_ERROR(Parse(Header(0, 0, 0x03000000)), "big-endian");
  EXPECT_DLLM_ERROR(Parse(Header(0, 1ull << 60)),
                    "claims 1152921504606846976 metadata entries");
  EXPECT_DLLM_ERROR(Parse(Header(1ull << 60, 0)), "tensors but the file");
  EXPECT_NO_THROW(Parse(Header(0, 0)));  // empty but valid

  auto kv = [](const std::string& key, uint32_t type, const std::string& v) {
    std::string s = Header(0, 1);
    Str(s, key);
    U32(s, type);
    return s + v;
  };
  std::string v;
  U32(v, 7);
  EXPECT_NO_THROW(Parse(kv("k", 4, v)));
  EXPECT_DLLM_ERROR(Parse(kv("k", 13, v)),
                    "metadata 'k' has unknown value type 13");
  EXPECT_DLLM_ERROR(Parse(kv("", 4, v)), "empty key");
  v.clear();
  v.push_back(2);
  EXPECT_DLLM_ERROR(Parse(kv("b", 7, v)), "bool holds 2");
  v.clear();
  U64(v, 1ull << 40);
  EXPECT_DLLM_ERROR(Parse(kv("s", 8, v)), "claims 1099511627776 bytes");
  v.clear();
  U32(v, 8);
  U64(v, 1ull << 50);
  EXPECT_DLLM_ERROR(Parse(kv("a", 9, v)), "array of 1125899906842624 string");
  v.clear();
  U32(v, 4);
  U64(v, 1000);
  U32(v, 1);
  EXPECT_DLLM_ERROR(Parse(kv("a", 9, v)), "truncated");
  v.clear();
  U32(v, 42);
  U64(v, 0);
  EXPECT_DLLM_ERROR(Parse(kv("a", 9, v)), "unknown array element type 42");
  v.clear();
  for (int d = 0; d < 10; ++d) {  // arrays of arrays of ... 10 deep
    U32(v, 9);
    U64(v, 1);
  }
  U32(v, 4);
  U64(v, 0);
  EXPECT_DLLM_ERROR(Parse(kv("deep", 9, v)), "nested more than 8 deep");
  {
    std::string s = Header(0, 2);
    for (int i = 0; i < 2; ++i) {
      Str(s, "same");
      U32(s, 4);
      U32(s, 1);
    }
    EXPECT_DLLM_ERROR(Parse(s), "metadata key 'same' appears twice");
  }
  // general.alignment: an unsigned power of two.
  std::string a;
  U32(a, 48);
  EXPECT_DLLM_ERROR(Parse(kv("general.alignment", 4, a)),
                    "general.alignment 48 is not a power of two");
  EXPECT_DLLM_ERROR(
      Parse(kv("general.alignment", 8, std::string("\1\0\0\0\0\0\0\0x", 9))),
      "general.alignment must be an unsigned integer, got string");
}

TEST(Gguf, RejectsMalformedTensors) {
  auto one = [](const std::string& name, const std::vector<uint64_t>& ne,
                uint32_t type, uint64_t offset, size_t data) {
    std::string s = Header(1, 0);
    Info(s, name, ne, type, offset);
    return WithData(s, data);
  };
  EXPECT_NO_THROW(Parse(one("w", {4, 2}, kGgmlF32, 0, 32)));
  EXPECT_DLLM_ERROR(Parse(one("w", {4, 2}, 13, 0, 32)),
                    "unsupported ggml type 13 (Q5_K) for tensor 'w'");
  EXPECT_DLLM_ERROR(Parse(one("w", {4, 2}, 99, 0, 32)),
                    "unsupported ggml type 99 (unknown) for tensor 'w'");
  EXPECT_DLLM_ERROR(Parse(one("w", {30, 2}, kGgmlQ8_0, 0, 128)),
                    "has 30 values per row, not a multiple of its block of 32");
  EXPECT_DLLM_ERROR(Parse(one("w", {128}, kGgmlQ4_K, 0, 256)),
                    "not a multiple of its block of 256");
  EXPECT_DLLM_ERROR(Parse(one("w", {1, 1, 1, 1, 1}, kGgmlF32, 0, 32)),
                    "has 5 dimensions (at most 4)");
  EXPECT_DLLM_ERROR(Parse(one("w", {1ull << 40, 1ull << 40}, kGgmlF32, 0, 32)),
                    "absurdly large shape");
  EXPECT_DLLM_ERROR(Parse(one("w", {4}, kGgmlF32, 16, 64)),
                    "offset 16 is not a multiple of the alignment 32");
  EXPECT_DLLM_ERROR(
      Parse(one("w", {4, 2}, kGgmlF32, 0, 31)),
      "needs bytes [0, 32) of the data section, which has only 31");
  EXPECT_DLLM_ERROR(Parse(one("w", {4}, kGgmlF32, 1ull << 62, 32)),
                    "of the data section");
  EXPECT_DLLM_ERROR(Parse(one("", {4}, kGgmlF32, 0, 32)), "empty name");
  EXPECT_DLLM_ERROR(Parse(one(std::string(64, 'n'), {4}, kGgmlF32, 0, 32)),
                    "is 64 bytes (ggml allows at most 63)");
  {
    std::string s = Header(2, 0);
    Info(s, "a", {8}, kGgmlF32, 0);
    Info(s, "b", {8}, kGgmlF32, 0);
    EXPECT_DLLM_ERROR(Parse(WithData(s, 64)),
                      "tensors 'a' and 'b' overlap in the data section");
    s = Header(2, 0);
    Info(s, "a", {16}, kGgmlF32, 0);  // 64 bytes: [0, 64)
    Info(s, "b", {8}, kGgmlF32, 32);  // [32, 64)
    EXPECT_DLLM_ERROR(Parse(WithData(s, 64)), "overlap");
    s = Header(2, 0);
    Info(s, "a", {8}, kGgmlF32, 0);
    Info(s, "a", {8}, kGgmlF32, 32);
    EXPECT_DLLM_ERROR(Parse(WithData(s, 64)), "tensor 'a' appears twice");
    // Empty tensors may sit anywhere (at an aligned offset).
    s = Header(2, 0);
    Info(s, "a", {8}, kGgmlF32, 0);
    Info(s, "e", {0, 8}, kGgmlF32, 0);
    EXPECT_NO_THROW(Parse(WithData(s, 32)));
  }
}

TEST(Gguf, WriterRefusesWhatGgmlCannotRead) {
  test::TempDir dir;
  std::vector<float> x(64, 1.0f);
  auto write = [&](const std::string& name, DType t,
                   std::vector<int64_t> shape) {
    WriteGguf(dir / "w.gguf", {},
              {{name, t, std::move(shape), x.data(), nullptr}});
  };
  EXPECT_DLLM_ERROR(write(std::string(64, 'n'), DType::kF32, {4}),
                    "must be 1 to 63 bytes");
  EXPECT_DLLM_ERROR(write("q", DType::kQ8_0, {2, 16}),
                    "rows of 16 values, not a multiple of the Q8_0 block");
  EXPECT_DLLM_ERROR(write("u", DType::kU8, {4}), "dtype U8 has no GGUF type");
  EXPECT_DLLM_ERROR(write("d", DType::kF32, {1, 1, 1, 1, 1}), "5 dimensions");
  EXPECT_DLLM_ERROR(WriteGguf(dir / "w.gguf", {},
                              {{"a", DType::kF32, {4}, x.data(), nullptr},
                               {"a", DType::kF32, {4}, x.data(), nullptr}}),
                    "tensor 'a' written twice");
  EXPECT_DLLM_ERROR(
      WriteGguf(dir / "w.gguf",
                {{"k", GgufValue::U32(1)}, {"k", GgufValue::U32(2)}}, {}),
      "metadata key 'k' written twice");
  EXPECT_DLLM_ERROR(WriteGguf(dir / "w.gguf",
                              {{"general.alignment", GgufValue::U32(24)}}, {}),
                    "power of two");
  // Nothing was left behind by the failed writes.
  EXPECT_FALSE(FileExists(dir / "w.gguf"));
}

// TensorStore opens GGUF by extension or by magic; safetensors as before.
TEST(Gguf, TensorStoreOpensGguf) {
  test::TempDir dir;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  WriteGguf(dir / "m.gguf", {{"general.architecture", GgufValue::String("x")}},
            {{"a", DType::kF32, {2, 3}, a.data(), nullptr}});
  for (const std::string name : {"m.gguf", "m.bin"}) {
    if (name == "m.bin")
      std::rename((dir / "m.gguf").c_str(), (dir / "m.bin").c_str());
    auto store = TensorStore::Open(dir / name);
    EXPECT_EQ(store->format(), TensorFormat::kGguf);
    ASSERT_NE(store->gguf(), nullptr);
    const TensorView* t = store->Find("a");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(reinterpret_cast<const float*>(t->data)[5], 6.0f);
    EXPECT_EQ(store->origin(), dir / name);
    EXPECT_GT(store->total_file_bytes(), 24u);
    EXPECT_TRUE(IsGgufPath(dir / name));
  }
  a[4] = std::numeric_limits<float>::quiet_NaN();
  WriteGguf(dir / "n.gguf", {},
            {{"a", DType::kF32, {2, 3}, a.data(), nullptr}});
  EXPECT_DLLM_ERROR(TensorStore::Open(dir / "n.gguf")->CheckFinite(),
                    "n.gguf: tensor 'a' holds NaN at element 4");
  EXPECT_FALSE(IsGgufPath(dir.path()));
}

TEST(Gguf, ValueHelpers) {
  int64_t x = 0;
  EXPECT_TRUE(GgufValue::Int(GgufType::kI16, -2).AsInt64(&x));
  EXPECT_EQ(x, -2);
  EXPECT_FALSE(GgufValue::U64(uint64_t(1) << 63).AsInt64(&x));
  EXPECT_FALSE(GgufValue::String("1").AsInt64(&x));
  double d = 0;
  EXPECT_TRUE(GgufValue::Uint(GgufType::kU8, 255).AsDouble(&d));
  EXPECT_EQ(d, 255);
  EXPECT_EQ(GgufValue::Uint(GgufType::kU8, 256 + 7).bits, 7u);  // truncated
  EXPECT_EQ(GgufValue::StringArray({"a", "b"}).size(), 2u);
  EXPECT_EQ(GgufValue::U32(3).size(), 0u);
  EXPECT_EQ(GgufValue::StringArray({"a"}).Describe(), "array of 1 string");
  EXPECT_NE(GgufValue::F32(1.0f), GgufValue::Float(GgufType::kF64, 1.0));
  EXPECT_STREQ(GgmlTypeName(30), "BF16");
  EXPECT_STREQ(GgmlTypeName(1000), "unknown");
  DType t;
  EXPECT_FALSE(DTypeFromGgml(3, &t));  // Q4_1
  EXPECT_TRUE(DTypeFromGgml(14, &t));
  EXPECT_EQ(t, DType::kQ6_K);
}

}  // namespace
}  // namespace dllm
