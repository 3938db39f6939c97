// The files of a training run's output folder besides the model: leftovers of
// killed saves, and the log cut back to the checkpoint on resume.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dllm {

// Removes `NAME.tmp.PID` files (WriteFileAtomic's temporaries) in `dir`
// whose process is gone: a kill -9 during a save leaves one behind for good.
// Returns the names removed.
std::vector<std::string> RemoveStaleTempFiles(const std::string& dir);

// Rewrites the CSV log at `path` to its header and the rows of steps 1..step
// (a later row for a step replaces an earlier one, a torn last line is
// dropped), so that a resumed run appends without repeating steps. Writes
// `header` when the file is missing or empty.
void TruncateLog(const std::string& path, int64_t step,
                 const std::string& header);

}  // namespace dllm
