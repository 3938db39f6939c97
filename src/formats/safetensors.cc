#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "dllm/error.h"

namespace dllm {

using json = nlohmann::json;

namespace {

// Multiplies with an overflow check; false on overflow.
bool MulOk(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

}  // namespace

void ParseSafetensors(const uint8_t* data, size_t size,
                      const std::string& origin,
                      std::vector<TensorView>* tensors,
                      std::map<std::string, std::string>* metadata) {
  tensors->clear();
  if (metadata) metadata->clear();
  DLLM_CHECK(size >= 8, origin, ": file is ", size,
             " bytes, too short for a safetensors header (need at least 8): "
             "truncated?");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(data[i]) << (8 * i);
  DLLM_CHECK(n <= kMaxSafetensorsHeader, origin, ": header length ", n,
             " bytes exceeds the 100 MB limit: not a safetensors file?");
  DLLM_CHECK(n <= size - 8, origin, ": header length ", n,
             " runs past the end of the file (", size, " bytes): truncated?");
  const char* hbeg = reinterpret_cast<const char*>(data + 8);
  const uint8_t* payload = data + 8 + n;
  const uint64_t payload_size = size - 8 - n;

  // Duplicate keys are legal JSON but ambiguous here: catch them while parsing.
  std::string duplicate;
  std::set<std::string> seen;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev,
                                   json& parsed) {
    if (depth == 1 && ev == json::parse_event_t::key) {
      std::string k = parsed.get<std::string>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json header = json::parse(hbeg, hbeg + n, cb, /*allow_exceptions=*/false);
  DLLM_CHECK(!header.is_discarded(), origin, ": header is not valid JSON");
  DLLM_CHECK(header.is_object(), origin,
             ": header must be a JSON object of tensors");
  DLLM_CHECK(duplicate.empty(), origin, ": tensor '", duplicate,
             "' appears twice in the header");

  struct Range {
    uint64_t b, e;
    size_t index;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      DLLM_CHECK(v.is_object(), origin,
                 ": __metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        DLLM_CHECK(m.value().is_string(), origin, ": __metadata__.", m.key(),
                   " must be a string");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    std::string where = origin + ": tensor '" + name + "'";
    DLLM_CHECK(v.is_object(), where, ": entry must be an object");
    auto dt = v.find("dtype");
    DLLM_CHECK(dt != v.end() && dt->is_string(), where,
               ": missing string field 'dtype'");
    TensorView t;
    t.name = name;
    DLLM_CHECK(
        ParseDType(dt->get<std::string>(), &t.dtype) && !IsQuantized(t.dtype),
        where, ": unsupported dtype '", dt->get<std::string>(),
        "' (expected F32, F16, BF16, I32, I64, U8 or I8)");
    auto sh = v.find("shape");
    DLLM_CHECK(sh != v.end() && sh->is_array(), where,
               ": missing array field 'shape'");
    DLLM_CHECK(sh->size() <= 8, where, ": shape has ", sh->size(),
               " dimensions (at most 8)");
    uint64_t numel = 1;
    for (const json& d : *sh) {
      DLLM_CHECK(d.is_number_unsigned() ||
                     (d.is_number_integer() && d.get<int64_t>() >= 0),
                 where, ": shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      DLLM_CHECK(MulOk(numel, dim, &numel) && numel < (1ull << 48), where,
                 ": shape is absurdly large");
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    auto off = v.find("data_offsets");
    DLLM_CHECK(
        off != v.end() && off->is_array() && off->size() == 2 &&
            (*off)[0].is_number_unsigned() && (*off)[1].is_number_unsigned(),
        where,
        ": 'data_offsets' must be two non-negative integers [begin, end]");
    uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
    DLLM_CHECK(b <= e, where, ": data_offsets [", b, ", ", e,
               "] has begin after end");
    DLLM_CHECK(e <= payload_size, where, ": data_offsets end ", e,
               " lies past the end of the data (", payload_size,
               " bytes): truncated file?");
    uint64_t want = 0;
    DLLM_CHECK(MulOk(numel, DTypeSize(t.dtype), &want) && want == e - b, where,
               ": shape needs ", want, " bytes of ", DTypeName(t.dtype),
               " but data_offsets span ", e - b);
    t.data = payload + b;
    t.nbytes = static_cast<size_t>(e - b);
    ranges.push_back({b, e, tensors->size()});
    tensors->push_back(std::move(t));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& x, const Range& y) {
    return x.b != y.b ? x.b < y.b : x.e < y.e;
  });
  // Each non-empty range must start at or after the furthest end seen so far
  // (empty tensors may sit anywhere).
  const Range* furthest = nullptr;
  for (const Range& c : ranges) {
    if (c.e == c.b) continue;
    if (furthest && c.b < furthest->e)
      Fail(origin, ": tensors '", (*tensors)[furthest->index].name, "' and '",
           (*tensors)[c.index].name, "' overlap in the data section");
    if (!furthest || c.e > furthest->e) furthest = &c;
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  ParseSafetensors(file_.data(), file_.size(), path, &tensors_, &metadata_);
}

void WriteSafetensors(const std::string& path,
                      const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  constexpr uint64_t kAlign = 64;
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const TensorToWrite& t : tensors) {
    DLLM_CHECK(!IsQuantized(t.dtype), path, ": tensor '", t.name,
               "': safetensors cannot hold the block type ", DTypeName(t.dtype),
               " (write GGUF instead)");
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
    uint64_t nbytes = numel * DTypeSize(t.dtype);
    offset = (offset + kAlign - 1) / kAlign * kAlign;
    offsets.push_back(offset);
    DLLM_CHECK(!header.contains(t.name), path, ": tensor '", t.name,
               "' written twice");
    header[t.name] = {{"dtype", DTypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string h = header.dump();
  // Pad so that the data section starts 64-byte aligned in the file.
  while ((8 + h.size()) % kAlign != 0) h.push_back(' ');
  AtomicFileWriter w(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  w.Write(len, 8);
  w.Write(h.data(), h.size());
  static const char zeros[kAlign] = {};
  uint64_t pos = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (offsets[i] > pos) w.Write(zeros, offsets[i] - pos);
    uint64_t numel = 1;
    for (int64_t d : tensors[i].shape) numel *= static_cast<uint64_t>(d);
    uint64_t nbytes = numel * DTypeSize(tensors[i].dtype);
    if (nbytes && tensors[i].data) {
      w.Write(tensors[i].data, nbytes);
    } else if (nbytes) {
      DLLM_ASSERT(tensors[i].fill != nullptr);
      std::vector<uint8_t> buf(nbytes);
      tensors[i].fill(buf.data());
      w.Write(buf.data(), nbytes);
    }
    pos = offsets[i] + nbytes;
  }
  w.Commit();
}

}  // namespace dllm
