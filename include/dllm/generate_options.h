// Public API: the generation options declared once, as data. Each entry
// names an option, its kind, its accepted range and its help; one table feeds
// the CLI's parser and --help, JSON requests (the server), validation and
// per-model defaults, so the front ends cannot drift apart. Adding an option
// is one field in GenerateOptions and one line in the table.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dllm/generate.h"

namespace dllm {

struct GenerateOptionSpec {
  enum class Kind { kInt, kDouble, kFlag, kChoice };
  const char* name;     // CLI spelling without "--" ("gen-length"); in JSON
                        // the same with '_' ("gen_length")
  const char* metavar;  // "N", "T", "NAME"; "" for flags
  const char* help;     // one line; says where the default comes from when
                        // the model decides it
  Kind kind;
  double min, max;  // inclusive range of numbers
  // The value in `o` as text (for --help and for echoing settings).
  std::string (*get)(const GenerateOptions& o);
  // Parses `value` (type and range checked; errors name the option) into o.
  void (*set)(const GenerateOptionSpec& spec, GenerateOptions& o,
              const std::string& value);
  bool model_default;  // the default depends on the model (not shown as a
                       // fixed value in --help)
};

// Every option, in the order --help lists them.
const std::vector<GenerateOptionSpec>& GenerateOptionSpecs();
// The entry for `name` ('-' or '_' spelling), or nullptr.
const GenerateOptionSpec* FindGenerateOption(std::string_view name);

// Sets options from (name, value) pairs as written on a command line (flags
// take "1"/"true" or "0"/"false"). Unknown names and bad values throw
// dllm::Error naming the option. Implications hold unless the user said
// otherwise: --steps follows --gen-length, and --threshold / --factor /
// --gamma choose their schedule.
void ApplyGenerateOptions(
    GenerateOptions& o,
    const std::vector<std::pair<std::string, std::string>>& values);

// The same from the fields of a JSON object (e.g. a request body). Fields
// that are not generation options are skipped when `ignore_unknown`, an
// error otherwise; a field of the wrong JSON type is an error.
void ApplyGenerateOptionsJson(GenerateOptions& o, std::string_view json_object,
                              bool ignore_unknown);

// The options of the table as one JSON object (for --json and logs).
std::string GenerateOptionsToJson(const GenerateOptions& o);

}  // namespace dllm
