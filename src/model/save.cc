#include "model/save.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/half.h"
#include "base/mmap_file.h"
#include "dllm/error.h"
#include "formats/safetensors.h"

namespace dllm {

namespace {

std::string Gigabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", double(bytes) / 1e9);
  return buf;
}

}  // namespace

std::vector<TensorSpec> ListTensors(const ModelConfig& c, NameTable names) {
  std::vector<TensorSpec> out;
  Weights w;
  ForEachTensor(
      c, w,
      [&](const std::string& name, const std::vector<int64_t>& shape,
          TensorRole role, Tensor& t) {
        out.push_back({name, shape, role, RopeHeads(c, w, t)});
      },
      names);
  return out;
}

void CheckFreeSpace(const std::string& dir, uint64_t bytes,
                    const std::string& what) {
  struct statvfs fs;
  if (statvfs(dir.c_str(), &fs) != 0) return;  // unknown: let the write tell
  const uint64_t avail = uint64_t(fs.f_bavail) * uint64_t(fs.f_frsize);
  DLLM_CHECK(bytes <= avail, dir, ": ", what, " needs ", Gigabytes(bytes),
             " GB but the file system has only ", Gigabytes(avail),
             " GB free: free some space or choose another folder");
}

void WriteModelFolder(const ModelConfig& c, const std::string& dir, DType dtype,
                      const std::function<void(size_t, float*)>& fill) {
  DLLM_CHECK(
      dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16,
      "cannot store model weights as ", DTypeName(dtype),
      " (expected F32, BF16 or F16)");
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    Fail(dir, ": cannot create folder: ", std::strerror(errno));
  const std::vector<TensorSpec> specs = ListTensors(c);
  // The data plus a generous bound on alignment and header per tensor. The
  // old file is replaced only by the final rename, so it frees nothing.
  uint64_t bytes = 1 << 16;
  for (const TensorSpec& s : specs)
    bytes += uint64_t(s.numel()) * DTypeSize(dtype) + 512;
  CheckFreeSpace(dir, bytes, "model.safetensors");
  std::vector<TensorToWrite> out;
  for (size_t i = 0; i < specs.size(); ++i) {
    TensorToWrite t;
    t.name = specs[i].name;
    t.shape = specs[i].shape;
    t.dtype = dtype;
    t.fill = [i, dtype, n = specs[i].numel(), &fill](void* dst) {
      if (dtype == DType::kF32) return fill(i, static_cast<float*>(dst));
      std::vector<float> tmp(static_cast<size_t>(n));
      fill(i, tmp.data());
      uint16_t* h = static_cast<uint16_t*>(dst);
      for (int64_t j = 0; j < n; ++j)
        h[j] = dtype == DType::kBF16 ? F32ToBf16(tmp[size_t(j)])
                                     : F32ToF16(tmp[size_t(j)]);
    };
    out.push_back(std::move(t));
  }
  WriteSafetensors(dir + "/model.safetensors", out, {{"format", "pt"}});
  const std::string cfg = ModelConfigToJson(c);
  WriteFileAtomic(dir + "/config.json", cfg.data(), cfg.size());
}

}  // namespace dllm
