#include "args.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "dllm/error.h"
#include "dllm/runtime.h"

namespace dllm::cli {

namespace {
std::vector<std::string> SplitNames(const std::string& names) {
  std::vector<std::string> out;
  std::stringstream ss(names);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

// An option name without its dashes, lower case, '_' read as '-': the form
// in which "--top_p", "top_p" and "--Top-P" all meet "--top-p".
std::string Bare(const std::string& name) {
  size_t i = name.find_first_not_of('-');
  std::string out = i == std::string::npos ? "" : name.substr(i);
  for (char& ch : out) {
    ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (ch == '_') ch = '-';
  }
  return out;
}

// Spellings from llama.cpp, Hugging Face generate() and config.json keys,
// bare, with the dllm options they mean (the first one a command declares
// is suggested).
struct Alias {
  const char* from;
  std::vector<const char*> to;
};
const std::vector<Alias>& Aliases() {
  static const std::vector<Alias> aliases = {
      {"n", {"gen-length"}},
      {"n-predict", {"gen-length"}},
      {"max-new-tokens", {"gen-length"}},
      {"max-tokens", {"gen-length"}},
      {"new-tokens", {"gen-length"}},
      {"temp", {"temperature"}},
      {"n-threads", {"threads"}},
      {"num-threads", {"threads"}},
      {"nthreads", {"threads"}},
      {"model-path", {"model"}},
      {"model-dir", {"model"}},
      {"model-name-or-path", {"model"}},
      {"diffusion-steps", {"steps"}},
      {"num-steps", {"steps"}},
      {"block-size", {"block-length"}},
      {"c", {"context", "ctx"}},
      {"ctx-size", {"context", "ctx"}},
      {"seq-len", {"context", "ctx"}},
      {"max-seq-len", {"context", "ctx"}},
      {"n-layers", {"layers"}},
      {"num-layers", {"layers"}},
      {"num-hidden-layers", {"layers"}},
      {"hidden-size", {"d-model"}},
      {"n-embd", {"d-model"}},
      {"dim", {"d-model"}},
      {"n-heads", {"heads"}},
      {"num-attention-heads", {"heads"}},
      {"n-kv-heads", {"kv-heads"}},
      {"num-key-value-heads", {"kv-heads"}},
      {"intermediate-size", {"ffn"}},
      {"d-ff", {"ffn"}},
      {"ffn-dim", {"ffn"}},
      {"vocab-size", {"vocab"}},
      {"vocab", {"vocab-size"}},
      {"learning-rate", {"lr"}},
      {"batch-size", {"batch"}},
      {"output", {"out"}},
      {"out", {"output"}},
  };
  return aliases;
}

// Edit distance with adjacent transpositions counted as one edit
// ("--temeprature"), over two short strings.
size_t EditDistance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

}  // namespace

Args::Args(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {
  Flag("-h,--help", "show this help and exit");
}

void Args::Option(const std::string& names, const std::string& metavar,
                  const std::string& help, const std::string& default_value) {
  specs_.push_back({SplitNames(names), metavar, help, default_value, false});
}

void Args::Flag(const std::string& names, const std::string& help) {
  specs_.push_back({SplitNames(names), "", help, "", true});
}

void Args::AllowPositional(const std::string& metavar,
                           const std::string& help) {
  allow_positional_ = true;
  positional_metavar_ = metavar;
  positional_help_ = help;
}

const Args::Spec* Args::Find(const std::string& name) const {
  for (const Spec& s : specs_)
    for (const std::string& n : s.names)
      if (n == name) return &s;
  return nullptr;
}

bool Args::Parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 1 && a[0] == '-' &&
        !(a.size() > 1 && (isdigit(a[1]) || a[1] == '.'))) {
      std::string value;
      bool has_inline = false;
      size_t eq = a.find('=');
      if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_inline = true;
      }
      const Spec* s = Find(a);
      if (!s) {
        const std::string hint = Suggest(a);
        if (hint.empty())
          std::fprintf(stderr, "error: unknown option '%s'\n\n%s", a.c_str(),
                       Help().c_str());
        else
          std::fprintf(stderr,
                       "error: unknown option '%s' (did you mean %s?)\n"
                       "(dllm %s --help lists every option)\n",
                       a.c_str(), hint.c_str(), command().c_str());
        exit_code_ = 2;
        return false;
      }
      if (Key(*s) == "--help") {
        std::fputs(Help().c_str(), stdout);
        exit_code_ = 0;
        return false;
      }
      if (s->is_flag) {
        values_.insert_or_assign(Key(*s), std::string("1"));
        continue;
      }
      if (!has_inline) {
        if (i + 1 >= argc) {
          std::fprintf(stderr, "error: option '%s' needs a value (%s)\n",
                       a.c_str(), s->metavar.c_str());
          exit_code_ = 2;
          return false;
        }
        value = argv[++i];
      }
      values_[Key(*s)] = value;
    } else {
      if (!allow_positional_) {
        // "max_new_tokens=64" is how Hugging Face spells an option.
        const size_t eq = a.find('=');
        const std::string hint =
            eq == std::string::npos ? "" : Suggest(a.substr(0, eq));
        if (hint.empty())
          std::fprintf(stderr, "error: unexpected argument '%s'\n\n%s",
                       a.c_str(), Help().c_str());
        else
          std::fprintf(stderr,
                       "error: unexpected argument '%s' (did you mean %s "
                       "%s?)\n(dllm %s --help lists every option)\n",
                       a.c_str(), hint.c_str(), a.substr(eq + 1).c_str(),
                       command().c_str());
        exit_code_ = 2;
        return false;
      }
      positional_.push_back(a);
    }
  }
  return true;
}

bool Args::Has(const std::string& name) const {
  const Spec* s = Find(name);
  DLLM_ASSERT(s != nullptr);
  return values_.count(Key(*s)) > 0;
}

std::string Args::Get(const std::string& name) const {
  const Spec* s = Find(name);
  DLLM_ASSERT(s != nullptr);
  auto it = values_.find(Key(*s));
  return it == values_.end() ? s->default_value : it->second;
}

int64_t Args::GetInt(const std::string& name, int64_t lo, int64_t hi) const {
  std::string v = Get(name);
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0')
    UsageFail("option ", name, ": expected an integer, got '", v, "'");
  if (errno == ERANGE || x < lo || x > hi)
    UsageFail("option ", name, ": ", v, " is out of range [", lo, ", ", hi,
              "]");
  return x;
}

double Args::GetDouble(const std::string& name, double lo, double hi) const {
  std::string v = Get(name);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0')
    UsageFail("option ", name, ": expected a number, got '", v, "'");
  // strtod reads "nan" and "inf"; no option means either, and a NaN would
  // pass every range check below and poison what it sets.
  if (!std::isfinite(x))
    UsageFail("option ", name, ": expected a finite number, got '", v, "'");
  if (x < lo || x > hi)
    UsageFail("option ", name, ": ", v, " is out of range [", lo, ", ", hi,
              "]");
  return x;
}

std::string Args::Display(const Spec& s, bool with_metavar) const {
  std::string out;
  for (size_t i = 0; i < s.names.size(); ++i)
    out += (i ? "/" : "") + s.names[i];
  if (with_metavar && !s.is_flag) out += " " + s.metavar;
  return out;
}

void Args::Require(const std::string& name) const {
  const Spec* s = Find(name);
  DLLM_ASSERT(s != nullptr);
  DLLM_USAGE_CHECK(Has(name), command(), ": ", Display(*s), " is required");
}

void Args::Conflicts(const std::string& a, const std::string& b) const {
  DLLM_USAGE_CHECK(!(Has(a) && Has(b)), command(), ": ", a, " and ", b,
                   " cannot be used together");
}

std::string Args::command() const {
  std::stringstream ss(usage_);
  std::string word, out;
  ss >> word;  // "dllm"
  while (ss >> word) {
    bool lower = !word.empty();
    for (char ch : word) lower = lower && (std::islower(ch) || ch == '-');
    if (!lower || word[0] == '-') break;
    out += (out.empty() ? "" : " ") + word;
  }
  return out;
}

std::string Args::Suggest(const std::string& unknown) const {
  const std::string bare = Bare(unknown);
  if (bare.empty()) return "";
  auto declared = [&](const std::string& b) -> std::string {
    for (const Spec& s : specs_)
      for (const std::string& n : s.names)
        if (Bare(n) == b) return Display(s, false);
    return "";
  };
  for (const Alias& al : Aliases())
    if (bare == al.from)
      for (const char* to : al.to)
        if (std::string d = declared(to); !d.empty()) return d;
  if (std::string d = declared(bare); !d.empty()) return d;
  // Long names only: one-letter ones are all within one edit of each other.
  if (bare.size() < 3) return "";
  const Spec* prefix_of = nullptr;
  int n_prefix = 0;
  const Spec* best = nullptr;
  size_t best_d = std::max<size_t>(1, bare.size() / 4) + 1;
  for (const Spec& s : specs_)
    for (const std::string& n : s.names) {
      const std::string b = Bare(n);
      if (b.size() < 3) continue;
      if (b.rfind(bare, 0) == 0 && prefix_of != &s) prefix_of = &s, ++n_prefix;
      const size_t d = EditDistance(bare, b);
      if (d < best_d) best = &s, best_d = d;
    }
  if (n_prefix == 1) return Display(*prefix_of, false);
  return best ? Display(*best, false) : "";
}

bool Args::GetFlag(const std::string& name) const { return Has(name); }

std::string Args::Help() const {
  std::ostringstream os;
  os << "usage: " << usage_ << "\n\n" << description_ << "\n\noptions:\n";
  for (const Spec& s : specs_) {
    std::string left = "  ";
    for (size_t i = 0; i < s.names.size(); ++i)
      left += (i ? ", " : "") + s.names[i];
    if (!s.is_flag) left += " " + s.metavar;
    os << left;
    if (left.size() < 28)
      os << std::string(28 - left.size(), ' ');
    else
      os << "\n" << std::string(28, ' ');
    os << s.help;
    if (!s.default_value.empty()) os << " (default: " << s.default_value << ")";
    os << "\n";
  }
  if (allow_positional_)
    os << "  " << positional_metavar_
       << std::string(26 - std::min<size_t>(26, positional_metavar_.size()),
                      ' ')
       << positional_help_ << "\n";
  return os.str();
}

void AddThreadsOption(Args& a) {
  a.Option("-t,--threads", "N", "threads (0 = one per core)", "0");
}

void ApplyThreadsOption(const Args& a) {
  const int n = int(a.GetInt("--threads", 0, 1024));
  SetNumThreads(n);
  // Threads beyond the cores take turns on them, and every kernel waits for
  // its slowest share: -t 1024 on 2 cores ran 34x slower, silently.
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores > 0 && unsigned(n) > cores)
    std::fprintf(stderr,
                 "warning: --threads %d is more than the %u cores of this "
                 "machine: the extra threads only wait on each other and slow "
                 "every step down (0 = one per core)\n",
                 n, cores);
}

void AddDeviceOption(Args& a) {
  a.Option("--device", "DEV",
           "where the model runs: cpu, or cuda / cuda:N (an NVIDIA GPU; a "
           "build configured with -DDLLM_CUDA=ON)",
           "cpu");
}

std::string DeviceOption(const Args& a) {
  const std::string d = a.Get("--device");
  bool ok = d == "cpu" || d == "cuda";
  if (!ok && d.rfind("cuda:", 0) == 0 && d.size() > 5 && d.size() <= 8) {
    ok = true;
    for (size_t i = 5; i < d.size(); ++i) ok = ok && d[i] >= '0' && d[i] <= '9';
  }
  if (!ok)
    throw UsageError("--device '" + d +
                     "': expected cpu, cuda or cuda:N (N a device number)");
  return d;
}

}  // namespace dllm::cli
