// The safetensors reader and writer: round trips, shards, and one test for
// each kind of malformed file.
#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "base/half.h"
#include "base/mmap_file.h"
#include "test_util.h"

namespace dllm {
namespace {

std::string Image(const std::string& header, size_t data_bytes,
                  uint64_t claimed_len = UINT64_MAX) {
  uint64_t n = claimed_len == UINT64_MAX ? header.size() : claimed_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\x01');
}

void Parse(const std::string& img) {
  std::vector<TensorView> t;
  std::map<std::string, std::string> meta;
  ParseSafetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(),
                   "x.safetensors", &t, &meta);
}

TEST(Safetensors, ParsesValidHeader) {
  std::string img = Image(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"e":{"dtype":"F16","shape":[0],"data_offsets":[32,32]}})",
      32);
  std::vector<TensorView> t;
  std::map<std::string, std::string> meta;
  ParseSafetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(),
                   "x", &t, &meta);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(meta["format"], "pt");
  EXPECT_EQ(t[0].name, "a");
  EXPECT_EQ(t[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t[0].nbytes, 24u);
  EXPECT_EQ(t[1].dtype, DType::kBF16);
  EXPECT_EQ(t[1].data - t[0].data, 24);
}

TEST(Safetensors, RejectsMalformed) {
  const std::string ok =
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  EXPECT_DLLM_ERROR(Parse(std::string(5, '\0')), "too short");
  EXPECT_DLLM_ERROR(Parse(Image("{}", 0, 200ull << 20)),
                    "exceeds the 100 MB limit");
  EXPECT_DLLM_ERROR(Parse(Image("{}", 0, 1000)),
                    "runs past the end of the file");
  EXPECT_DLLM_ERROR(Parse(Image("{\"a\":", 0)), "not valid JSON");
  EXPECT_DLLM_ERROR(Parse(Image("[1,2]", 0)), "must be a JSON object");
  EXPECT_DLLM_ERROR(
      Parse(
          Image(R"({"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8)),
      "unsupported dtype 'Q9'");
  EXPECT_DLLM_ERROR(
      Parse(Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                  4)),
      "past the end of the data");
  EXPECT_DLLM_ERROR(
      Parse(Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})",
                  8)),
      "begin after end");
  EXPECT_DLLM_ERROR(
      Parse(Image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                  8)),
      "shape needs 12 bytes");
  EXPECT_DLLM_ERROR(
      Parse(Image(
          "{" + ok +
              R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
          12)),
      "overlap");
  EXPECT_DLLM_ERROR(Parse(Image("{" + ok + "," + ok + "}", 8)),
                    "appears twice");
  // An empty tensor between two overlapping ones must not hide the overlap.
  EXPECT_DLLM_ERROR(
      Parse(Image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                  R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                  16)),
      "overlap");
  EXPECT_DLLM_ERROR(
      Parse(Image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                  8)),
      "non-negative integers");
  EXPECT_DLLM_ERROR(Parse(Image(R"({"a":{"dtype":"F32","shape":[2]}})", 8)),
                    "data_offsets");
  EXPECT_DLLM_ERROR(
      Parse(Image(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8)),
      "'dtype'");
  EXPECT_DLLM_ERROR(
      Parse(Image(
          R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
          8)),
      "absurdly large");
  EXPECT_DLLM_ERROR(Parse(Image(R"({"__metadata__":{"k":1}})", 0)),
                    "must be a string");
}

TEST(Safetensors, WriteReadRoundTripAndTruncation) {
  test::TempDir dir;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {7, 8, 9};
  WriteSafetensors(dir / "m.safetensors",
                   {{"a", DType::kF32, {2, 3}, a.data(), nullptr},
                    {"b", DType::kBF16, {3}, b.data(), nullptr},
                    {"c",
                     DType::kF32,
                     {2},
                     nullptr,
                     [](void* p) {
                       static_cast<float*>(p)[0] = 9;
                       static_cast<float*>(p)[1] = 10;
                     }}},
                   {{"format", "pt"}});
  {
    SafetensorsFile f(dir / "m.safetensors");
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.metadata().at("format"), "pt");
    EXPECT_EQ(std::memcmp(f.tensors()[0].data, a.data(), 24), 0);
    EXPECT_EQ(std::memcmp(f.tensors()[1].data, b.data(), 6), 0);
    EXPECT_EQ(reinterpret_cast<const float*>(f.tensors()[2].data)[1], 10.0f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.tensors()[0].data) % 64, 0u);
  }
  // Truncate: the reader must name the file and say it is cut short.
  std::string bytes = ReadFileToString(dir / "m.safetensors");
  std::ofstream(dir / "cut.safetensors", std::ios::binary)
      << bytes.substr(0, bytes.size() - 5);
  EXPECT_DLLM_ERROR(SafetensorsFile(dir / "cut.safetensors"),
                    "cut.safetensors");
  EXPECT_DLLM_ERROR(SafetensorsFile(dir / "missing.safetensors"),
                    "cannot open");
}

TEST(Safetensors, ShardedFolder) {
  test::TempDir dir;
  std::vector<float> a = {1, 2}, b = {3, 4, 5};
  WriteSafetensors(dir / "model-00001-of-00002.safetensors",
                   {{"a", DType::kF32, {2}, a.data(), nullptr}});
  WriteSafetensors(dir / "model-00002-of-00002.safetensors",
                   {{"b", DType::kF32, {3}, b.data(), nullptr}});
  std::string index =
      R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
      R"("b":"model-00002-of-00002.safetensors"}})";
  WriteFileAtomic(dir / "model.safetensors.index.json", index.data(),
                  index.size());
  auto store = TensorStore::Open(dir.path());
  ASSERT_NE(store->Find("b"), nullptr);
  EXPECT_EQ(reinterpret_cast<const float*>(store->Find("b")->data)[2], 5.0f);
  EXPECT_EQ(store->all().size(), 2u);
  EXPECT_EQ(store->Find("zz"), nullptr);

  std::string bad = R"({"weight_map":{"a":"../etc/passwd"}})";
  WriteFileAtomic(dir / "model.safetensors.index.json", bad.data(), bad.size());
  EXPECT_DLLM_ERROR(TensorStore::Open(dir.path()), "plain file name");
  bad =
      R"({"weight_map":{"a":"model-00001-of-00002.safetensors","q":"model-00001-of-00002.safetensors"}})";
  WriteFileAtomic(dir / "model.safetensors.index.json", bad.data(), bad.size());
  EXPECT_DLLM_ERROR(TensorStore::Open(dir.path()),
                    "'q' is listed in weight_map but missing");
  test::TempDir empty;
  EXPECT_DLLM_ERROR(TensorStore::Open(empty.path()), "no model.safetensors");
}

// NaN and Inf found in every float dtype, at every position of a long
// buffer (inside and across the scanner's blocks), told apart, and the
// largest finite values and other dtypes left alone.
TEST(Safetensors, FirstNonFiniteFindsNanAndInf) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t n = 10000;
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    const size_t es = DTypeSize(dt);
    auto store = [&](std::vector<uint8_t>& buf, int64_t i, float v) {
      if (dt == DType::kF32) {
        std::memcpy(buf.data() + size_t(i) * 4, &v, 4);
      } else {
        uint16_t h = dt == DType::kBF16 ? F32ToBf16(v) : F32ToF16(v);
        std::memcpy(buf.data() + size_t(i) * 2, &h, 2);
      }
    };
    std::vector<uint8_t> buf(size_t(n) * es);
    const float big = dt == DType::kF16 ? 65504.0f : 3.0e38f;
    for (int64_t i = 0; i < n; ++i) store(buf, i, i % 2 ? -big : 0.5f);
    bool is_nan = true;
    EXPECT_EQ(FirstNonFinite(dt, buf.data(), n, &is_nan), -1) << DTypeName(dt);
    for (int64_t at :
         {int64_t(0), int64_t(17), int64_t(4095), int64_t(4096), n - 1}) {
      std::vector<uint8_t> b = buf;
      store(b, at, nan);
      if (at + 3 < n) store(b, at + 3, inf);  // a later Inf is not reported
      EXPECT_EQ(FirstNonFinite(dt, b.data(), n, &is_nan), at) << DTypeName(dt);
      EXPECT_TRUE(is_nan);
      b = buf;
      store(b, at, -inf);
      EXPECT_EQ(FirstNonFinite(dt, b.data(), n, &is_nan), at) << DTypeName(dt);
      EXPECT_FALSE(is_nan);
    }
  }
  std::vector<uint8_t> ints(64, 0xFF);  // all bits set: NaN if read as F32
  bool is_nan;
  EXPECT_EQ(FirstNonFinite(DType::kI32, ints.data(), 16, &is_nan), -1);
}

// The store names the shard, the tensor and the element.
TEST(Safetensors, StoreCheckFiniteNamesTheTensor) {
  test::TempDir dir;
  std::vector<float> a(100, 1.0f), b(3000, 2.0f);
  b[1234] = std::numeric_limits<float>::infinity();
  WriteSafetensors(dir / "m.safetensors",
                   {{"a", DType::kF32, {100}, a.data(), nullptr},
                    {"b", DType::kF32, {3, 1000}, b.data(), nullptr}});
  auto store = TensorStore::Open(dir / "m.safetensors");
  EXPECT_DLLM_ERROR(store->CheckFinite(),
                    "m.safetensors: tensor 'b' holds Inf at element 1234");
  b[1234] = 0;
  WriteSafetensors(dir / "m.safetensors",
                   {{"a", DType::kF32, {100}, a.data(), nullptr},
                    {"b", DType::kF32, {3, 1000}, b.data(), nullptr}});
  EXPECT_NO_THROW(TensorStore::Open(dir / "m.safetensors")->CheckFinite());
}

}  // namespace
}  // namespace dllm
