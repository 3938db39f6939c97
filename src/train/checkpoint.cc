#include "train/checkpoint.h"

#include <cstring>

#include "base/rng.h"
#include "dllm/error.h"
#include "formats/safetensors.h"

namespace dllm {

namespace {
// A 64-bit checksum of float data, so that a corrupted file is refused
// rather than silently trained on.
uint64_t Checksum(uint64_t h, const float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, p + i, 4);
    h = Mix64(h ^ u);
  }
  return h;
}
}  // namespace

void SaveCheckpoint(const std::string& path, const TrainableModel& model,
                    AdamW& opt, const CheckpointMeta& meta) {
  std::vector<TensorToWrite> t;
  const float* p = model.param_vector().data();
  uint64_t h = 0;
  for (const auto& s : model.slots()) {
    t.push_back(
        {"param." + s.name, DType::kF32, s.shape, p + s.offset, nullptr});
    t.push_back({"adam_m." + s.name, DType::kF32, s.shape,
                 opt.m().data() + s.offset, nullptr});
    t.push_back({"adam_v." + s.name, DType::kF32, s.shape,
                 opt.v().data() + s.offset, nullptr});
    h = Checksum(h, p + s.offset, s.numel);
    h = Checksum(h, opt.m().data() + s.offset, s.numel);
    h = Checksum(h, opt.v().data() + s.offset, s.numel);
  }
  WriteSafetensors(path, t,
                   {{"format", "dllm-checkpoint"},
                    {"step", std::to_string(meta.step)},
                    {"objective", meta.objective},
                    {"config", meta.config_json},
                    {"run", meta.run_json},
                    {"checksum", std::to_string(h)}});
}

namespace {
CheckpointMeta MetaOf(const SafetensorsFile& f) {
  const auto& m = f.metadata();
  auto get = [&](const char* k) {
    auto it = m.find(k);
    DLLM_CHECK(it != m.end(), f.path(), ": not a dllm checkpoint (no '", k,
               "' in its metadata)");
    return it->second;
  };
  DLLM_CHECK(get("format") == "dllm-checkpoint", f.path(),
             ": not a dllm checkpoint");
  CheckpointMeta meta;
  const std::string step = get("step");
  char* end = nullptr;
  meta.step = std::strtoll(step.c_str(), &end, 10);
  DLLM_CHECK(!step.empty() && *end == '\0' && meta.step >= 0, f.path(),
             ": bad step '", step, "'");
  meta.objective = get("objective");
  meta.config_json = get("config");
  meta.run_json = get("run");
  return meta;
}
}  // namespace

CheckpointMeta ReadCheckpointMeta(const std::string& path) {
  return MetaOf(SafetensorsFile(path));
}

CheckpointMeta LoadCheckpoint(const std::string& path, TrainableModel& model,
                              AdamW& opt) {
  SafetensorsFile f(path);
  CheckpointMeta meta = MetaOf(f);
  DLLM_CHECK(meta.config_json == ModelConfigToJson(model.config()), path,
             ": the checkpoint's model config differs from this run's");
  std::map<std::string, const TensorView*> by_name;
  for (const auto& t : f.tensors()) by_name[t.name] = &t;
  uint64_t h = 0;
  for (const auto& s : model.slots()) {
    for (auto [prefix, dst] :
         {std::pair<const char*, float*>{"param.", model.params() + s.offset},
          {"adam_m.", opt.m().data() + s.offset},
          {"adam_v.", opt.v().data() + s.offset}}) {
      auto it = by_name.find(prefix + s.name);
      DLLM_CHECK(it != by_name.end(), path, ": tensor '", prefix, s.name,
                 "' is missing");
      const TensorView* v = it->second;
      DLLM_CHECK(v->dtype == DType::kF32 && v->shape == s.shape, path,
                 ": tensor '", prefix, s.name,
                 "' has the wrong dtype or shape");
      std::memcpy(dst, v->data, size_t(s.numel) * 4);
      h = Checksum(h, dst, s.numel);
    }
  }
  auto it = f.metadata().find("checksum");
  DLLM_CHECK(it != f.metadata().end() && it->second == std::to_string(h), path,
             ": checksum mismatch: the file is corrupt (use an earlier "
             "checkpoint or start over)");
  return meta;
}

}  // namespace dllm
