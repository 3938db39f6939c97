#include "args.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "base/error.h"

namespace dllm::cli {

namespace {
std::vector<std::string> SplitNames(const std::string& names) {
  std::vector<std::string> out;
  std::stringstream ss(names);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
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
        std::fprintf(stderr, "error: unknown option '%s'\n\n%s", a.c_str(),
                     Help().c_str());
        exit_code_ = 2;
        return false;
      }
      if (Key(*s) == "--help") {
        std::fputs(Help().c_str(), stdout);
        exit_code_ = 0;
        return false;
      }
      if (s->is_flag) {
        values_[Key(*s)] = "1";
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
        std::fprintf(stderr, "error: unexpected argument '%s'\n\n%s", a.c_str(),
                     Help().c_str());
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
    Fail("option ", name, ": expected an integer, got '", v, "'");
  if (errno == ERANGE || x < lo || x > hi)
    Fail("option ", name, ": ", v, " is out of range [", lo, ", ", hi, "]");
  return x;
}

double Args::GetDouble(const std::string& name) const {
  std::string v = Get(name);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0')
    Fail("option ", name, ": expected a number, got '", v, "'");
  return x;
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

}  // namespace dllm::cli
