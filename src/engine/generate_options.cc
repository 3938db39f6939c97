// The generation-option table (dllm/generate_options.h). Each line binds a
// name to a GenerateOptions field through a small typed accessor, so parsing,
// range checks and printing are written once per type, not once per option.
#include "dllm/generate_options.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <type_traits>

#include "dllm/error.h"

namespace dllm {

namespace {

using Spec = GenerateOptionSpec;
using Kind = GenerateOptionSpec::Kind;

std::string JsonName(const char* name) {
  std::string s = name;
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
}

int64_t ParseInteger(const Spec& s, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0')
    Fail("option --", s.name, ": expected an integer, got '", v, "'");
  if (errno == ERANGE || double(x) < s.min || double(x) > s.max)
    Fail("option --", s.name, ": ", v, " is out of range [", int64_t(s.min),
         ", ", int64_t(s.max), "]");
  return x;
}

double ParseNumber(const Spec& s, const std::string& v) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0')
    Fail("option --", s.name, ": expected a number, got '", v, "'");
  DLLM_CHECK(std::isfinite(x), "option --", s.name,
             ": expected a finite number, got '", v, "'");
  if (x < s.min || x > s.max)
    Fail("option --", s.name, ": ", v, " is out of range [", s.min, ", ", s.max,
         "]");
  return x;
}

bool ParseBool(const Spec& s, const std::string& v) {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  Fail("option --", s.name, ": expected true or false, got '", v, "'");
}

std::string Num(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

// Typed accessors: one template per field type, instantiated per field.
template <auto M>
std::string GetInt(const GenerateOptions& o) {
  return std::to_string(o.*M);
}
template <auto M>
void SetInt(const Spec& s, GenerateOptions& o, const std::string& v) {
  o.*M =
      static_cast<std::remove_reference_t<decltype(o.*M)>>(ParseInteger(s, v));
}
template <auto M>
std::string GetDouble(const GenerateOptions& o) {
  return Num(o.*M);
}
template <auto M>
void SetDouble(const Spec& s, GenerateOptions& o, const std::string& v) {
  o.*M = ParseNumber(s, v);
}
template <auto M>
std::string GetFlag(const GenerateOptions& o) {
  return o.*M ? "true" : "false";
}
template <auto M>
void SetFlag(const Spec& s, GenerateOptions& o, const std::string& v) {
  o.*M = ParseBool(s, v);
}
// --no-early-stop is the negation of stop_at_eos.
std::string GetNoEarlyStop(const GenerateOptions& o) {
  return o.stop_at_eos ? "false" : "true";
}
void SetNoEarlyStop(const Spec& s, GenerateOptions& o, const std::string& v) {
  o.stop_at_eos = !ParseBool(s, v);
}
std::string GetOrder(const GenerateOptions& o) { return OrderName(o.order); }
void SetOrder(const Spec&, GenerateOptions& o, const std::string& v) {
  o.order = ParseOrder(v);
}
std::string GetCache(const GenerateOptions& o) { return CacheName(o.cache); }
void SetCache(const Spec&, GenerateOptions& o, const std::string& v) {
  o.cache = ParseCache(v);
}
std::string GetSchedule(const GenerateOptions& o) {
  return ScheduleName(o.schedule);
}
void SetSchedule(const Spec&, GenerateOptions& o, const std::string& v) {
  o.schedule = ParseSchedule(v);
}

constexpr double kMaxInt = 2147483647.0;
constexpr double kInf = INFINITY;

#define DLLM_INT(field) \
  Kind::kInt, &GetInt<&GenerateOptions::field>, &SetInt<&GenerateOptions::field>
#define DLLM_DOUBLE(field)                            \
  Kind::kDouble, &GetDouble<&GenerateOptions::field>, \
      &SetDouble<&GenerateOptions::field>
#define DLLM_FLAG(field)                          \
  Kind::kFlag, &GetFlag<&GenerateOptions::field>, \
      &SetFlag<&GenerateOptions::field>

// Reorders the macro results into the struct's field order.
Spec Make(const char* name, const char* metavar, const char* help, Kind kind,
          std::string (*get)(const GenerateOptions&),
          void (*set)(const Spec&, GenerateOptions&, const std::string&),
          double min, double max, bool model_default = false) {
  return Spec{name, metavar, help, kind, min, max, get, set, model_default};
}

std::vector<Spec> BuildTable() {
  return {
      Make("gen-length", "N", "tokens to generate", DLLM_INT(gen_length), 1,
           kMaxInt),
      Make("steps", "N",
           "denoising steps (forward passes) for fixed schedules (default: "
           "gen length)",
           DLLM_INT(steps), 1, 1e6, true),
      Make("block-length", "N",
           "semi-autoregressive block size (default: gen length, one block)",
           DLLM_INT(block_length), 0, kMaxInt, true),
      Make("sampler", "NAME",
           "low-confidence | random (LLaDA) | origin | maskgit-plus | "
           "topk-margin | entropy (Dream) (default: low-confidence for LLaDA "
           "models, entropy for Dream)",
           Kind::kChoice, &GetOrder, &SetOrder, 0, 0, true),
      Make("schedule", "NAME",
           "blocks | timesteps | threshold | factor | eb (default: blocks for "
           "LLaDA samplers, timesteps for Dream's)",
           Kind::kChoice, &GetSchedule, &SetSchedule, 0, 0, true),
      Make("temperature", "T", "sampling temperature; 0 = greedy",
           DLLM_DOUBLE(temperature), 0, kInf),
      Make("top-p", "P", "nucleus filter (Dream samplers)", DLLM_DOUBLE(top_p),
           0, 1),
      Make("top-k", "K", "top-k filter (Dream samplers; 0 = off)",
           DLLM_INT(top_k), 0, kMaxInt),
      Make("alg-temp", "T",
           "Dream: sample positions from softmax(confidence/T) instead of "
           "top-k",
           DLLM_DOUBLE(alg_temp), 0, kInf),
      Make("eps", "E", "Dream timesteps end at eps", DLLM_DOUBLE(eps), 0, 1),
      Make("cfg", "W", "classifier-free guidance scale (0 = off)",
           DLLM_DOUBLE(cfg_scale), 0, kInf),
      Make("threshold", "TAU",
           "Fast-dLLM: commit every position with confidence >= TAU (sets "
           "--schedule threshold)",
           DLLM_DOUBLE(threshold), 0, 1),
      Make("factor", "F", "Fast-dLLM factor rule (sets --schedule factor)",
           DLLM_DOUBLE(factor), 0, kInf),
      Make("gamma", "G",
           "entropy-bounded sampler budget in nats (sets --schedule eb)",
           DLLM_DOUBLE(gamma), 0, kInf),
      Make("ban-eos", "", "never generate EOS/EoT tokens", DLLM_FLAG(ban_eos),
           0, 1),
      Make("eos-last", "",
           "commit positions that chose EOS/EoT after all "
           "others",
           DLLM_FLAG(eos_last), 0, 1),
      Make("no-early-stop", "",
           "keep denoising after an EOS is committed (the reference's "
           "behaviour)",
           Kind::kFlag, &GetNoEarlyStop, &SetNoEarlyStop, 0, 1),
      Make("seed", "N", "random seed", DLLM_INT(seed), 0, 9e18),
      Make("cache", "NAME",
           "auto | none | prefix | dual: keys and values kept between steps "
           "(auto: the KV cache for causal models, none for diffusion ones; "
           "prefix and dual are Fast-dLLM's approximate caches)",
           Kind::kChoice, &GetCache, &SetCache, 0, 0),
      Make("refresh", "N",
           "prefix/dual cache: also recompute every position every N steps "
           "within a block (0 = at block starts only; 1 = every step, exact)",
           DLLM_INT(refresh_every), 0, kMaxInt),
  };
}

#undef DLLM_INT
#undef DLLM_DOUBLE
#undef DLLM_FLAG

}  // namespace

const std::vector<GenerateOptionSpec>& GenerateOptionSpecs() {
  static const std::vector<Spec> table = BuildTable();
  return table;
}

const GenerateOptionSpec* FindGenerateOption(std::string_view name) {
  std::string n(name);
  for (char& ch : n)
    if (ch == '_') ch = '-';
  for (const Spec& s : GenerateOptionSpecs())
    if (n == s.name) return &s;
  return nullptr;
}

void ApplyGenerateOptions(
    GenerateOptions& o,
    const std::vector<std::pair<std::string, std::string>>& values) {
  std::set<std::string> given;
  for (const auto& [name, value] : values) {
    const Spec* s = FindGenerateOption(name);
    DLLM_CHECK(s != nullptr, "unknown generation option '", name, "'");
    s->set(*s, o, value);
    given.insert(s->name);
  }
  if (given.count("gen-length") && !given.count("steps"))
    o.steps = o.gen_length;
  if (!given.count("schedule")) {
    if (given.count("threshold")) o.schedule = Schedule::kThreshold;
    if (given.count("factor")) o.schedule = Schedule::kFactor;
    if (given.count("gamma")) o.schedule = Schedule::kEntropyBound;
  }
}

void ApplyGenerateOptionsJson(GenerateOptions& o, std::string_view json_object,
                              bool ignore_unknown) {
  nlohmann::json j = nlohmann::json::parse(json_object, nullptr, false);
  DLLM_CHECK(!j.is_discarded() && j.is_object(),
             "generation options: expected a JSON object");
  std::vector<std::pair<std::string, std::string>> values;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const Spec* s = FindGenerateOption(it.key());
    if (!s) {
      DLLM_CHECK(ignore_unknown, "unknown generation option '", it.key(), "'");
      continue;
    }
    const nlohmann::json& v = it.value();
    std::string text;
    switch (s->kind) {
      case Kind::kInt:
        DLLM_CHECK(v.is_number_integer(), "field ", it.key(),
                   ": expected an integer, got ", v.dump());
        text = v.dump();
        break;
      case Kind::kDouble:
        DLLM_CHECK(v.is_number(), "field ", it.key(),
                   ": expected a number, got ", v.dump());
        text = v.dump();
        break;
      case Kind::kFlag:
        DLLM_CHECK(v.is_boolean(), "field ", it.key(),
                   ": expected true or false, got ", v.dump());
        text = v.get<bool>() ? "true" : "false";
        break;
      case Kind::kChoice:
        DLLM_CHECK(v.is_string(), "field ", it.key(),
                   ": expected a string, got ", v.dump());
        text = v.get<std::string>();
        break;
    }
    values.emplace_back(s->name, text);
  }
  ApplyGenerateOptions(o, values);
}

std::string GenerateOptionsToJson(const GenerateOptions& o) {
  nlohmann::json j = nlohmann::json::object();
  for (const Spec& s : GenerateOptionSpecs()) {
    const std::string v = s.get(o);
    switch (s.kind) {
      case Kind::kInt:
        j[JsonName(s.name)] = std::strtoll(v.c_str(), nullptr, 10);
        break;
      case Kind::kDouble:
        j[JsonName(s.name)] = std::strtod(v.c_str(), nullptr);
        break;
      case Kind::kFlag:
        j[JsonName(s.name)] = v == "true";
        break;
      case Kind::kChoice:
        j[JsonName(s.name)] = v;
        break;
    }
  }
  return j.dump();
}

}  // namespace dllm
