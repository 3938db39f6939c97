// Training checkpoints: parameters and AdamW moments in one safetensors file
// (written atomically: a kill during a save leaves the previous one intact),
// with the step and the run's settings in its metadata.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "dllm/train.h"

namespace dllm {

struct CheckpointMeta {
  int64_t step = 0;
  std::string objective;
  std::string config_json;  // ModelConfigToJson
  std::string run_json;     // the settings that must match on resume
};

void SaveCheckpoint(const std::string& path, const TrainableModel& model,
                    AdamW& opt, const CheckpointMeta& meta);

// Reads the metadata only (to build the model before loading).
CheckpointMeta ReadCheckpointMeta(const std::string& path);

// Loads parameters and moments into a model built from the same config;
// refuses files that are corrupt or do not match it, naming what differs.
CheckpointMeta LoadCheckpoint(const std::string& path, TrainableModel& model,
                              AdamW& opt);

}  // namespace dllm
