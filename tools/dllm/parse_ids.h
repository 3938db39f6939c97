// Parses "1 2 3" or "1,2,3" into integers, naming the option on error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dllm::cli {

std::vector<int32_t> ParseIdList(const std::string& text,
                                 const std::string& option);

}  // namespace dllm::cli
