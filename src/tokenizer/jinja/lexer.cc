#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cstring>

#include "dllm/error.h"
#include "tokenizer/jinja/value.h"
#include "tokenizer/utf8.h"

namespace dllm::jinja {
namespace {

// The Hub renders chat templates with trim_blocks and lstrip_blocks on, and
// template authors lay out their tags counting on it; doing it as a text
// pass before lexing, as @huggingface/jinja does, keeps the corner cases
// (a tag at the very start, "\r" line ends) the same as theirs.
std::string Preprocess(std::string src) {
  if (!src.empty() && src.back() == '\n') src.pop_back();
  // lstrip_blocks: spaces/tabs from the start of a line up to {% {# {-.
  std::string a;
  a.reserve(src.size());
  size_t i = 0;
  while (i < src.size()) {
    bool line_start = i == 0 || src[i - 1] == '\n' || src[i - 1] == '\r';
    if (line_start) {
      size_t j = i;
      while (j < src.size() && (src[j] == ' ' || src[j] == '\t')) ++j;
      if (j + 1 < src.size() && src[j] == '{' &&
          (src[j + 1] == '#' || src[j + 1] == '%' || src[j + 1] == '-')) {
        i = j;
      }
    }
    // Copy up to and including the next newline.
    size_t nl = src.find_first_of("\n\r", i);
    if (nl == std::string::npos) nl = src.size() - 1;
    a.append(src, i, nl - i + 1);
    i = nl + 1;
  }
  // trim_blocks: the newline right after %} #} -}.
  std::string b;
  b.reserve(a.size());
  for (size_t k = 0; k < a.size(); ++k) {
    b.push_back(a[k]);
    if (a[k] == '}' && k > 0 &&
        (a[k - 1] == '%' || a[k - 1] == '#' || a[k - 1] == '-') &&
        k + 1 < a.size() && a[k + 1] == '\n' && b.size() >= 2) {
      ++k;  // drop the newline
    }
  }
  return b;
}

bool IsWordCh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) ||
         c == '_';
}

}  // namespace

std::vector<Tok> Lex(const std::string& source) {
  std::string src = Preprocess(source);
  std::vector<Tok> toks;
  size_t pos = 0, n = src.size();
  int line = 1;
  // Open `{` of dict literals inside {{ }}: while one is open, "}}" is two
  // closing braces, not the end of the expression ({{ {'a': {'b': 1}} }}).
  int curly = 0;
  auto at = [&](size_t k) -> char { return k < n ? src[k] : '\0'; };
  auto starts = [&](const char* s) {
    return src.compare(pos, std::strlen(s), s) == 0;
  };
  auto push = [&](T t, std::string v) {
    toks.push_back({t, std::move(v), line});
  };
  auto advance = [&](size_t k) {
    for (size_t e = std::min(n, pos + k); pos < e; ++pos)
      if (src[pos] == '\n') ++line;
  };
  auto is_ws_at = [&](size_t k, size_t* len) {
    uint32_t cp;
    int bad;
    int l = utf8::Decode(src, k, &cp, &bad);
    if (!l || !IsJsSpace(cp)) return false;
    *len = l;
    return true;
  };
  auto skip_ws = [&]() {
    size_t len;
    while (pos < n && is_ws_at(pos, &len)) advance(len);
  };
  auto strip_trailing = [&]() {
    if (!toks.empty() && toks.back().type == T::kText) {
      std::string& v = toks.back().value;
      v.resize(v.size() - TrailingSpace(v));
      if (v.empty()) toks.pop_back();
    }
  };
  auto fail = [&](const std::string& what) {
    Fail("chat template line ", line, ": ", what);
  };
  while (pos < n) {
    T last = toks.empty() ? T::kCloseStmt : toks.back().type;
    if (toks.empty() || last == T::kCloseStmt || last == T::kCloseExpr ||
        last == T::kComment) {
      size_t start = pos;
      while (pos < n &&
             !(src[pos] == '{' && (at(pos + 1) == '%' || at(pos + 1) == '{' ||
                                   at(pos + 1) == '#')))
        ++pos;
      if (pos > start) {
        toks.push_back({T::kText, src.substr(start, pos - start), line});
        for (size_t k = start; k < pos; ++k)
          if (src[k] == '\n') ++line;
        continue;
      }
    }
    if (starts("{#")) {
      advance(2);
      bool strip_before = at(pos) == '-';
      if (strip_before) advance(1);
      size_t end = src.find("#}", pos);
      if (end == std::string::npos) fail("missing end of comment tag #}");
      std::string comment = src.substr(pos, end - pos);
      bool strip_after = !comment.empty() && comment.back() == '-';
      if (strip_before) strip_trailing();
      advance(end - pos + 2);
      push(T::kComment, "");
      if (strip_after) skip_ws();
      continue;
    }
    if (starts("{%-")) {
      strip_trailing();
      push(T::kOpenStmt, "{%");
      advance(3);
      continue;
    }
    if (starts("{{-")) {
      strip_trailing();
      push(T::kOpenExpr, "{{");
      curly = 0;
      advance(3);
      continue;
    }
    skip_ws();
    if (pos >= n) fail("unexpected end of template inside a tag");
    if (starts("-%}")) {
      push(T::kCloseStmt, "%}");
      advance(3);
      skip_ws();
      continue;
    }
    if (starts("-}}")) {
      push(T::kCloseExpr, "}}");
      advance(3);
      skip_ws();
      continue;
    }
    char c = src[pos];
    // A sign right after an operand is a binary operator; anywhere else it
    // belongs to the number that follows (or is a unary minus).
    if (c == '-' || c == '+') {
      if (toks.empty() || toks.back().type == T::kText)
        fail(StrCat("unexpected character ", c));
      T lt = toks.back().type;
      if (!(lt == T::kIdent || lt == T::kNumber || lt == T::kString ||
            lt == T::kCloseParen || lt == T::kCloseSquare)) {
        advance(1);
        std::string num;
        while (pos < n && IsDigit(src[pos])) num.push_back(src[pos++]);
        if (!num.empty() && at(pos) == '.' && IsDigit(at(pos + 1))) {
          ++pos;
          num.push_back('.');
          while (pos < n && IsDigit(src[pos])) num.push_back(src[pos++]);
        }
        push(num.empty() ? T::kUnary : T::kNumber, std::string(1, c) + num);
        continue;
      }
    }
    static const std::pair<const char*, T> kTable[] = {
        {"{%", T::kOpenStmt},   {"%}", T::kCloseStmt}, {"{{", T::kOpenExpr},
        {"}}", T::kCloseExpr},  {"(", T::kOpenParen},  {")", T::kCloseParen},
        {"{", T::kOpenCurly},   {"}", T::kCloseCurly}, {"[", T::kOpenSquare},
        {"]", T::kCloseSquare}, {",", T::kComma},      {".", T::kDot},
        {":", T::kColon},       {"|", T::kPipe},       {"<=", T::kCompare},
        {">=", T::kCompare},    {"==", T::kCompare},   {"!=", T::kCompare},
        {"<", T::kCompare},     {">", T::kCompare},    {"+", T::kAdd},
        {"-", T::kAdd},         {"~", T::kAdd},        {"**", T::kPow},
        {"*", T::kMul},         {"//", T::kMul},       {"/", T::kMul},
        {"%", T::kMul},         {"=", T::kEquals}};
    bool matched = false;
    for (const auto& [seq, type] : kTable) {
      if (type == T::kCloseExpr && curly > 0) continue;
      if (starts(seq)) {
        push(type, seq);
        if (type == T::kOpenExpr)
          curly = 0;
        else if (type == T::kOpenCurly)
          ++curly;
        else if (type == T::kCloseCurly)
          --curly;
        advance(std::strlen(seq));
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (c == '\'' || c == '"') {
      ++pos;
      std::string str;
      while (true) {
        if (pos >= n) fail("unterminated string literal");
        char d = src[pos];
        if (d == c) break;
        if (d == '\\') {
          ++pos;
          if (pos >= n) fail("unexpected end of input in a string escape");
          char e = src[pos++];
          if (e == 'x' || e == 'u') {
            size_t len = e == 'x' ? 2 : 4;
            if (pos + len > n) fail("invalid hexadecimal escape");
            uint32_t cp = 0;
            for (size_t k = 0; k < len; ++k) {
              char h = src[pos + k];
              int v = IsDigit(h)               ? h - '0'
                      : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                      : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                               : -1;
              if (v < 0) fail("invalid hexadecimal escape");
              cp = cp * 16 + v;
            }
            utf8::Append(&str, cp);
            pos += len;
            continue;
          }
          switch (e) {
            case 'n':
              str += '\n';
              break;
            case 't':
              str += '\t';
              break;
            case 'r':
              str += '\r';
              break;
            case 'b':
              str += '\b';
              break;
            case 'f':
              str += '\f';
              break;
            case 'v':
              str += '\v';
              break;
            case '\'':
              str += '\'';
              break;
            case '"':
              str += '"';
              break;
            case '\\':
              str += '\\';
              break;
            default:
              fail(StrCat("unexpected escaped character: ", e));
          }
          continue;
        }
        if (d == '\n') ++line;
        str.push_back(d);
        ++pos;
      }
      ++pos;
      push(T::kString, str);
      continue;
    }
    if (IsDigit(c)) {
      std::string num;
      while (pos < n && IsDigit(src[pos])) num.push_back(src[pos++]);
      if ((toks.empty() || toks.back().type != T::kDot) && at(pos) == '.' &&
          IsDigit(at(pos + 1))) {
        ++pos;
        num.push_back('.');
        while (pos < n && IsDigit(src[pos])) num.push_back(src[pos++]);
      }
      push(T::kNumber, num);
      continue;
    }
    if (IsWordCh(c)) {
      std::string w;
      while (pos < n && IsWordCh(src[pos])) w.push_back(src[pos++]);
      push(T::kIdent, w);
      continue;
    }
    fail(StrCat("unexpected character '", c, "'"));
  }
  return toks;
}

}  // namespace dllm::jinja
