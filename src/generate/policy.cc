// The one place that names orders and schedules: the command-line names and,
// for schedules, the rule behind each. Everything else looks them up here.
#include "generate/policy.h"

#include <iterator>
#include <string>

#include "dllm/error.h"
#include "generate/schedule.h"

namespace dllm {

namespace {

struct NamedOrder {
  Order order;
  const char* name;
};
constexpr NamedOrder kOrders[] = {{Order::kLowConfidence, "low-confidence"},
                                  {Order::kRandom, "random"},
                                  {Order::kOrigin, "origin"},
                                  {Order::kMaskgitPlus, "maskgit-plus"},
                                  {Order::kTopkMargin, "topk-margin"},
                                  {Order::kEntropy, "entropy"}};

constexpr gen::ScheduleRule kSchedules[] = {
    {Schedule::kDefault, "default", false, nullptr},
    {Schedule::kEvenBlocks, "blocks", true, gen::EvenBlocksRule},
    {Schedule::kTimesteps, "timesteps", true, gen::TimestepsRule},
    {Schedule::kThreshold, "threshold", false, gen::ThresholdRule},
    {Schedule::kFactor, "factor", false, gen::FactorRule},
    {Schedule::kEntropyBound, "eb", false, gen::EntropyBoundRule},
};

// "a, b, c or d" from a table's names, so error messages list every entry
// without a second list to keep in step.
template <typename Table>
std::string Choices(const Table& table, const char* skip) {
  std::string out;
  const size_t n = std::size(table);
  size_t listed = 0, total = 0;
  for (const auto& e : table) total += std::string(e.name) != skip;
  for (size_t i = 0; i < n; ++i) {
    if (std::string(table[i].name) == skip) continue;
    if (listed > 0) out += listed + 1 == total ? " or " : ", ";
    out += table[i].name;
    ++listed;
  }
  return out;
}

}  // namespace

Order ParseOrder(const std::string& name) {
  for (const auto& e : kOrders)
    if (name == e.name) return e.order;
  Fail("unknown sampler '", name, "' (expected ", Choices(kOrders, ""), ")");
}

Schedule ParseSchedule(const std::string& name) {
  for (const auto& e : kSchedules)
    if (name == e.name) return e.schedule;
  Fail("unknown schedule '", name, "' (expected ",
       Choices(kSchedules, "default"), ")");
}

const char* OrderName(Order o) {
  for (const auto& e : kOrders)
    if (e.order == o) return e.name;
  return "?";
}

const char* ScheduleName(Schedule s) {
  for (const auto& e : kSchedules)
    if (e.schedule == s) return e.name;
  return "?";
}

namespace {
constexpr struct {
  const char* name;
  Cache cache;
} kCaches[] = {{"auto", Cache::kAuto},
               {"none", Cache::kNone},
               {"prefix", Cache::kPrefix},
               {"dual", Cache::kDual}};
}  // namespace

Cache ParseCache(const std::string& name) {
  for (const auto& e : kCaches)
    if (name == e.name) return e.cache;
  Fail("unknown cache '", name, "' (expected auto, none, prefix or dual)");
}

const char* CacheName(Cache c) {
  for (const auto& e : kCaches)
    if (e.cache == c) return e.name;
  return "?";
}

bool IsLLaDAOrder(Order o) {
  return o == Order::kLowConfidence || o == Order::kRandom;
}

Schedule ResolveSchedule(const GenerateOptions& opt) {
  if (opt.schedule != Schedule::kDefault) return opt.schedule;
  return IsLLaDAOrder(opt.order) ? Schedule::kEvenBlocks : Schedule::kTimesteps;
}

namespace gen {

const ScheduleRule& RuleOf(Schedule s) {
  for (const auto& e : kSchedules)
    if (e.schedule == s && e.count) return e;
  Fail("internal error: schedule ", int(s), " has no rule");
}

Picker PickerFor(const GenerateOptions& opt) {
  if (opt.order == Order::kOrigin) return {PickOrigin, true};
  if (opt.alg_temp > 0) return {PickAlgTemp, false};
  return {PickBest, false};
}

std::vector<int> PickBest(const StepView& v, int n) {
  return std::vector<int>(v.ranked->begin(), v.ranked->begin() + n);
}

int CountMasked(const Canvas& c, int begin, int end) {
  int n = 0;
  for (int i = begin; i < end; ++i) n += c.masked[size_t(i)];
  return n;
}

}  // namespace gen
}  // namespace dllm
