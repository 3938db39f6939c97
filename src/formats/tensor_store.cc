#include "formats/tensor_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "base/thread_pool.h"
#include "dllm/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"

namespace dllm {

using json = nlohmann::json;

namespace {

bool IsRegularFile(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// NaN and Inf are the values whose exponent bits are all ones; clearing the
// sign bit makes them exactly the values >= kExp. A max over a block is
// branch-free, so the compiler vectorizes it; only a bad block is searched
// element by element.
template <typename U>
int64_t FirstNonFiniteBits(const U* p, int64_t n, U exp_mask, U sign_mask,
                           bool* is_nan) {
  constexpr int64_t kBlock = 4096;
  const U abs_mask = U(~sign_mask);
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    U hi = 0;
    for (int64_t i = b; i < e; ++i) hi = std::max<U>(hi, U(p[i] & abs_mask));
    if (hi < exp_mask) continue;
    for (int64_t i = b; i < e; ++i) {
      const U a = U(p[i] & abs_mask);
      if (a >= exp_mask) {
        *is_nan = a != exp_mask;
        return i;
      }
    }
  }
  return -1;
}

}  // namespace

int64_t FirstNonFinite(DType dtype, const uint8_t* data, int64_t n,
                       bool* is_nan) {
  *is_nan = false;
  switch (dtype) {
    case DType::kF32:
      return FirstNonFiniteBits<uint32_t>(
          reinterpret_cast<const uint32_t*>(data), n, 0x7F800000u, 0x80000000u,
          is_nan);
    case DType::kBF16:
      return FirstNonFiniteBits<uint16_t>(
          reinterpret_cast<const uint16_t*>(data), n, 0x7F80, 0x8000, is_nan);
    case DType::kF16:
      return FirstNonFiniteBits<uint16_t>(
          reinterpret_cast<const uint16_t*>(data), n, 0x7C00, 0x8000, is_nan);
    default:
      return -1;
  }
}

bool IsGgufPath(const std::string& path) {
  if (!IsRegularFile(path)) return false;
  return (path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) ||
         LooksLikeGguf(path);
}

TensorStore::TensorStore() = default;
TensorStore::~TensorStore() = default;

std::unique_ptr<TensorStore> TensorStore::Open(const std::string& path) {
  auto store = std::unique_ptr<TensorStore>(new TensorStore);
  if (IsGgufPath(path)) {
    store->format_ = TensorFormat::kGguf;
    store->origin_ = path;
    store->gguf_ = std::make_unique<GgufFile>(path);
    for (const TensorView& t : store->gguf_->tensors()) {
      store->by_name_.emplace(t.name, &t);  // names are unique (ParseGguf)
      store->all_.push_back(&t);
      store->file_of_.push_back(path);
    }
    return store;
  }
  std::vector<std::string> files;
  std::map<std::string, std::string> weight_map;  // tensor -> shard file
  std::string dir;
  if (IsDir(path)) {
    dir = path;
    std::string single = path + "/model.safetensors";
    std::string index = path + "/model.safetensors.index.json";
    if (IsRegularFile(single)) {
      files.push_back(single);
      store->origin_ = single;
    } else if (IsRegularFile(index)) {
      store->origin_ = index;
      json j = json::parse(ReadFileToString(index), nullptr, false);
      DLLM_CHECK(!j.is_discarded() && j.is_object(), index, ": not valid JSON");
      auto wm = j.find("weight_map");
      DLLM_CHECK(wm != j.end() && wm->is_object(), index,
                 ": missing object 'weight_map'");
      std::set<std::string> shard_set;
      for (auto it = wm->begin(); it != wm->end(); ++it) {
        DLLM_CHECK(it.value().is_string(), index, ": weight_map['", it.key(),
                   "'] must be a file name");
        std::string f = it.value().get<std::string>();
        DLLM_CHECK(!f.empty() && f.find('/') == std::string::npos && f != "." &&
                       f != "..",
                   index, ": weight_map['", it.key(), "'] = '", f,
                   "' must be a plain file name in the same folder");
        weight_map[it.key()] = f;
        if (shard_set.insert(f).second) files.push_back(dir + "/" + f);
      }
      DLLM_CHECK(!files.empty(), index, ": weight_map is empty");
    } else {
      Fail(path,
           ": no model.safetensors or model.safetensors.index.json in this "
           "folder");
    }
  } else {
    DLLM_CHECK(IsRegularFile(path), path, ": no such file or folder");
    files.push_back(path);
    store->origin_ = path;
  }
  for (const std::string& f : files) {
    store->files_.push_back(std::make_unique<SafetensorsFile>(f));
    for (const TensorView& t : store->files_.back()->tensors()) {
      DLLM_CHECK(store->by_name_.emplace(t.name, &t).second, f, ": tensor '",
                 t.name, "' is also in another shard");
      store->all_.push_back(&t);
      store->file_of_.push_back(f);
    }
  }
  for (const auto& [name, file] : weight_map) {
    auto it = store->by_name_.find(name);
    DLLM_CHECK(it != store->by_name_.end(), store->origin_, ": tensor '", name,
               "' is listed in weight_map but missing from ", file);
  }
  return store;
}

const TensorView* TensorStore::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

void TensorStore::CheckFinite() const {
  // Work items of at most kChunk elements across all tensors, so that one
  // huge embedding is shared among the threads like many small matrices.
  constexpr int64_t kChunk = int64_t(1) << 20;
  struct Item {
    size_t tensor;  // index into all_
    int64_t begin, end;
  };
  std::vector<Item> items;
  for (size_t i = 0; i < all_.size(); ++i) {
    const TensorView& t = *all_[i];
    if (t.dtype == DType::kF32 || t.dtype == DType::kBF16 ||
        t.dtype == DType::kF16)
      for (int64_t b = 0; b < t.numel(); b += kChunk)
        items.push_back({i, b, std::min(t.numel(), b + kChunk)});
  }
  // One slot per item, so that the error names the first bad element in file
  // order whatever the threads' timing.
  std::vector<int64_t> first(items.size(), -1);
  std::vector<uint8_t> nan(items.size(), 0);
  ParallelFor(items.size(), 1, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) {
      const Item& it = items[i];
      const TensorView& t = *all_[it.tensor];
      const size_t esize = DTypeSize(t.dtype);
      bool is_nan = false;
      int64_t k = FirstNonFinite(t.dtype, t.data + size_t(it.begin) * esize,
                                 it.end - it.begin, &is_nan);
      if (k >= 0) first[i] = it.begin + k, nan[i] = is_nan;
    }
  });
  for (size_t i = 0; i < items.size(); ++i)
    if (first[i] >= 0)
      Fail(file_of_[items[i].tensor], ": tensor '", all_[items[i].tensor]->name,
           "' holds ", nan[i] ? "NaN" : "Inf", " at element ", first[i],
           ": the weights are damaged (a diverged training run or a corrupt "
           "file) and cannot produce meaningful output");
}

size_t TensorStore::total_file_bytes() const {
  size_t n = 0;
  for (const auto& f : files_) n += f->file_size();
  if (gguf_) n += gguf_->file_size();
  return n;
}

}  // namespace dllm
