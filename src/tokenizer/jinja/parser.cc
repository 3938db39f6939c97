#include "tokenizer/jinja/parser.h"

#include <cstdlib>
#include <initializer_list>

#include "dllm/error.h"
#include "tokenizer/jinja/limits.h"

namespace dllm::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Tok> toks) : t_(std::move(toks)) {}

  std::vector<NodeP> ParseProgram() {
    std::vector<NodeP> out;
    while (cur_ < t_.size()) {
      NodeP n = ParseAny();
      if (n) out.push_back(std::move(n));
    }
    return out;
  }

 private:
  std::vector<Tok> t_;
  size_t cur_ = 0;
  // Nesting of the tree being built. The parser, the interpreter and the
  // tree's destructor all recurse once per level, so one counter bounds all
  // three: recursive productions raise it for their lifetime (Nest), and
  // each link of a left-deep chain such as `a|f|f` or `a.b.c` raises it
  // until the production that built the chain returns (KeepDepth).
  int depth_ = 0;

  void Deeper() {
    if (++depth_ > kMaxParseDepth)
      Error(StrCat("nesting deeper than ", kMaxParseDepth,
                   " (blocks, brackets and operator chains)"));
  }
  struct KeepDepth {
    explicit KeepDepth(Parser* p) : p(p), saved(p->depth_) {}
    ~KeepDepth() { p->depth_ = saved; }
    Parser* p;
    int saved;
  };
  struct Nest : KeepDepth {
    explicit Nest(Parser* p) : KeepDepth(p) { p->Deeper(); }
  };

  int Line() const {
    return cur_ < t_.size() ? t_[cur_].line : (t_.empty() ? 1 : t_.back().line);
  }
  [[noreturn]] void Error(const std::string& what) const {
    Fail("chat template line ", Line(), ": ", what);
  }
  bool Is(T type, size_t off = 0) const {
    return cur_ + off < t_.size() && t_[cur_ + off].type == type;
  }
  bool IsIdent(const char* name, size_t off = 0) const {
    return Is(T::kIdent, off) && t_[cur_ + off].value == name;
  }
  bool IsStatement(std::initializer_list<const char*> names) const {
    if (!Is(T::kOpenStmt) || !Is(T::kIdent, 1)) return false;
    for (const char* nm : names)
      if (t_[cur_ + 1].value == nm) return true;
    return false;
  }
  const Tok& Expect(T type, const char* what) {
    if (!Is(type))
      Error(StrCat("expected ", what,
                   cur_ < t_.size() ? ", got '" + t_[cur_].value + "'"
                                    : ", got end of template"));
    return t_[cur_++];
  }
  void ExpectIdent(const char* name) {
    if (!IsIdent(name)) Error(StrCat("expected '", name, "'"));
    ++cur_;
  }
  void ExpectEnd(const char* name) {
    Expect(T::kOpenStmt, "{%");
    ExpectIdent(name);
    Expect(T::kCloseStmt, "%}");
  }

  NodeP ParseAny() {
    Nest nest(this);
    if (cur_ >= t_.size()) Error("unexpected end of template");
    switch (t_[cur_].type) {
      case T::kComment:
        ++cur_;
        return nullptr;
      case T::kText: {
        NodeP n = MakeNode(N::kText, Line());
        n->str = t_[cur_++].value;
        return n;
      }
      case T::kOpenStmt:
        return ParseStatement();
      case T::kOpenExpr: {
        ++cur_;
        NodeP n = MakeNode(N::kOutput, Line());
        n->kids.push_back(ParseExpression());
        Expect(T::kCloseExpr, "}}");
        return n;
      }
      default:
        Error(StrCat("unexpected '", t_[cur_].value, "'"));
    }
  }

  std::vector<NodeP> ParseBodyUntil(std::initializer_list<const char*> names) {
    std::vector<NodeP> body;
    while (!IsStatement(names)) {
      if (cur_ >= t_.size())
        Error(StrCat("missing {% ", *names.begin(), " %}"));
      NodeP n = ParseAny();
      if (n) body.push_back(std::move(n));
    }
    return body;
  }

  NodeP ParseStatement() {
    Expect(T::kOpenStmt, "{%");
    if (!Is(T::kIdent)) Error("expected a statement name after {%");
    std::string name = t_[cur_].value;
    int line = Line();
    ++cur_;
    if (name == "set") return ParseSet(line);
    if (name == "if") {
      NodeP n = ParseIf(line);
      ExpectEnd("endif");
      return n;
    }
    if (name == "for") return ParseFor(line);
    if (name == "macro") return ParseMacro(line);
    if (name == "break" || name == "continue") {
      Expect(T::kCloseStmt, "%}");
      return MakeNode(name == "break" ? N::kBreak : N::kContinue, line);
    }
    if (name == "generation" || name == "endgeneration") {
      Expect(T::kCloseStmt, "%}");
      return MakeNode(N::kNoop, line);
    }
    Error(StrCat("unsupported statement {% ", name,
                 " %} (supported: set, if, for, macro, break, continue)"));
  }

  NodeP ParseSet(int line) {
    NodeP target = ParseExpressionSequence(false);
    if (Is(T::kEquals)) {
      ++cur_;
      NodeP n = MakeNode(N::kSet, line);
      n->kids.push_back(std::move(target));
      n->kids.push_back(ParseExpressionSequence(false));
      Expect(T::kCloseStmt, "%}");
      return n;
    }
    Expect(T::kCloseStmt, "%}");
    NodeP n = MakeNode(N::kSetBlock, line);
    n->kids.push_back(std::move(target));
    n->body = ParseBodyUntil({"endset"});
    ExpectEnd("endset");
    return n;
  }

  NodeP ParseIf(int line) {
    Nest nest(this);  // an elif chain nests one If in the next
    NodeP n = MakeNode(N::kIf, line);
    n->kids.push_back(ParseExpression());
    Expect(T::kCloseStmt, "%}");
    n->body = ParseBodyUntil({"elif", "else", "endif"});
    if (IsStatement({"elif"})) {
      cur_ += 2;
      n->alt.push_back(ParseIf(Line()));
    } else if (IsStatement({"else"})) {
      cur_ += 2;
      Expect(T::kCloseStmt, "%}");
      n->alt = ParseBodyUntil({"endif"});
    }
    return n;
  }

  NodeP ParseFor(int line) {
    NodeP n = MakeNode(N::kFor, line);
    NodeP var = ParseExpressionSequence(true);
    if (var->kind != N::kIdent && var->kind != N::kTuple)
      Error("expected a name or names for the loop variable");
    if (!IsIdent("in")) Error("expected 'in' after the loop variable");
    ++cur_;
    n->kids.push_back(std::move(var));
    n->kids.push_back(ParseExpression());
    Expect(T::kCloseStmt, "%}");
    n->body = ParseBodyUntil({"endfor", "else"});
    if (IsStatement({"else"})) {
      cur_ += 2;
      Expect(T::kCloseStmt, "%}");
      n->alt = ParseBodyUntil({"endfor"});
    }
    ExpectEnd("endfor");
    return n;
  }

  NodeP ParseMacro(int line) {
    NodeP n = MakeNode(N::kMacro, line);
    n->str = Expect(T::kIdent, "a macro name").value;
    // Parameters: names with optional defaults, as kKwarg / kIdent nodes.
    Expect(T::kOpenParen, "(");
    while (!Is(T::kCloseParen)) {
      NodeP p = MakeNode(N::kIdent, Line());
      p->str = Expect(T::kIdent, "a parameter name").value;
      if (Is(T::kEquals)) {
        ++cur_;
        NodeP kw = MakeNode(N::kKwarg, p->line);
        kw->str = p->str;
        kw->kids.push_back(ParseExpression());
        n->kids.push_back(std::move(kw));
      } else {
        n->kids.push_back(std::move(p));
      }
      if (Is(T::kComma))
        ++cur_;
      else if (!Is(T::kCloseParen))
        Error("expected ',' or ')' in macro parameters");
    }
    ++cur_;
    Expect(T::kCloseStmt, "%}");
    n->body = ParseBodyUntil({"endmacro"});
    ExpectEnd("endmacro");
    return n;
  }

  NodeP ParseExpressionSequence(bool primary) {
    int line = Line();
    NodeP first = primary ? ParsePrimary() : ParseExpression();
    if (!Is(T::kComma)) return first;
    NodeP tup = MakeNode(N::kTuple, line);
    tup->kids.push_back(std::move(first));
    while (Is(T::kComma)) {
      ++cur_;
      tup->kids.push_back(primary ? ParsePrimary() : ParseExpression());
      if (!Is(T::kComma)) break;
    }
    return tup;
  }

  NodeP ParseExpression() {
    Nest nest(this);
    int line = Line();
    NodeP a = ParseOr();
    if (IsIdent("if")) {
      ++cur_;
      NodeP test = ParseOr();
      if (IsIdent("else")) {
        ++cur_;
        NodeP n = MakeNode(N::kTernary, line);
        n->kids.push_back(std::move(test));
        n->kids.push_back(std::move(a));
        n->kids.push_back(ParseExpression());
        return n;
      }
      NodeP n = MakeNode(N::kSelect, line);
      n->kids.push_back(std::move(a));
      n->kids.push_back(std::move(test));
      return n;
    }
    return a;
  }

  NodeP Binary(std::string op, NodeP l, NodeP r, int line) {
    NodeP n = MakeNode(N::kBinary, line);
    n->str = std::move(op);
    n->kids.push_back(std::move(l));
    n->kids.push_back(std::move(r));
    return n;
  }

  NodeP ParseOr() {
    KeepDepth keep(this);
    NodeP l = ParseAnd();
    while (IsIdent("or")) {
      Deeper();
      int line = Line();
      ++cur_;
      l = Binary("or", std::move(l), ParseAnd(), line);
    }
    return l;
  }
  NodeP ParseAnd() {
    KeepDepth keep(this);
    NodeP l = ParseNot();
    while (IsIdent("and")) {
      Deeper();
      int line = Line();
      ++cur_;
      l = Binary("and", std::move(l), ParseNot(), line);
    }
    return l;
  }
  NodeP ParseNot() {
    Nest nest(this);
    if (IsIdent("not")) {
      NodeP n = MakeNode(N::kUnary, Line());
      n->str = "not";
      ++cur_;
      n->kids.push_back(ParseNot());
      return n;
    }
    return ParseComparison();
  }
  NodeP ParseComparison() {
    KeepDepth keep(this);
    NodeP l = ParseAdditive();
    while (true) {
      int line = Line();
      std::string op;
      if (IsIdent("not") && IsIdent("in", 1)) {
        op = "not in";
        cur_ += 2;
      } else if (IsIdent("in")) {
        op = "in";
        ++cur_;
      } else if (Is(T::kCompare)) {
        op = t_[cur_++].value;
      } else {
        break;
      }
      Deeper();
      l = Binary(op, std::move(l), ParseAdditive(), line);
    }
    return l;
  }
  NodeP ParseAdditive() {
    KeepDepth keep(this);
    NodeP l = ParseMultiplicative();
    while (Is(T::kAdd)) {
      Deeper();
      int line = Line();
      std::string op = t_[cur_++].value;
      l = Binary(op, std::move(l), ParseMultiplicative(), line);
    }
    return l;
  }
  NodeP ParseMultiplicative() {
    KeepDepth keep(this);
    NodeP l = ParsePower();
    while (Is(T::kMul)) {
      Deeper();
      int line = Line();
      std::string op = t_[cur_++].value;
      l = Binary(op, std::move(l), ParsePower(), line);
    }
    return l;
  }
  NodeP ParsePower() {
    KeepDepth keep(this);
    NodeP l = ParseTest();
    while (Is(T::kPow)) {
      Deeper();
      int line = Line();
      ++cur_;
      l = Binary("**", std::move(l), ParseTest(), line);
    }
    return l;
  }
  NodeP ParseTest() {
    KeepDepth keep(this);
    NodeP operand = ParseFilter();
    while (IsIdent("is")) {
      Deeper();
      int line = Line();
      ++cur_;
      bool negate = IsIdent("not");
      if (negate) ++cur_;
      if (!Is(T::kIdent)) Error("expected a test name after 'is'");
      NodeP n = MakeNode(N::kTest, line);
      n->str = t_[cur_++].value;
      n->flag = negate;
      n->kids.push_back(std::move(operand));
      if (Is(T::kOpenParen)) ParseArgs(n.get());
      operand = std::move(n);
    }
    return operand;
  }
  NodeP ParseFilter() {
    KeepDepth keep(this);
    NodeP operand = ParseUnarySign();
    while (Is(T::kPipe)) {
      Deeper();
      int line = Line();
      ++cur_;
      if (!Is(T::kIdent)) Error("expected a filter name after '|'");
      NodeP n = MakeNode(N::kFilter, line);
      n->str = t_[cur_++].value;
      n->kids.push_back(std::move(operand));
      if (Is(T::kOpenParen)) ParseArgs(n.get());
      operand = std::move(n);
    }
    return operand;
  }
  NodeP ParseUnarySign() {
    Nest nest(this);
    if ((Is(T::kUnary) || Is(T::kAdd)) &&
        (t_[cur_].value == "-" || t_[cur_].value == "+")) {
      NodeP n = MakeNode(N::kUnary, Line());
      n->str = t_[cur_++].value;
      n->kids.push_back(ParseUnarySign());
      return n;
    }
    return ParseCallMember();
  }
  NodeP ParseCallMember() {
    KeepDepth keep(this);
    NodeP m = ParseMember(ParsePrimary());
    while (Is(T::kOpenParen)) {
      Deeper();
      NodeP call = MakeNode(N::kCall, Line());
      call->kids.push_back(std::move(m));
      ParseArgs(call.get());
      m = ParseMember(std::move(call));
    }
    return m;
  }
  // Appends call arguments (kKwarg nodes for name=value) to n->kids.
  void ParseArgs(Node* n) {
    Expect(T::kOpenParen, "(");
    while (!Is(T::kCloseParen)) {
      if (cur_ >= t_.size()) Error("unterminated argument list");
      if (Is(T::kIdent) && Is(T::kEquals, 1)) {
        NodeP kw = MakeNode(N::kKwarg, Line());
        kw->str = t_[cur_].value;
        cur_ += 2;
        kw->kids.push_back(ParseExpression());
        n->kids.push_back(std::move(kw));
      } else {
        n->kids.push_back(ParseExpression());
      }
      if (Is(T::kComma))
        ++cur_;
      else if (!Is(T::kCloseParen))
        Error("expected ',' or ')' in an argument list");
    }
    ++cur_;
  }
  NodeP ParseMember(NodeP obj) {
    KeepDepth keep(this);
    while (Is(T::kDot) || Is(T::kOpenSquare)) {
      Deeper();
      int line = Line();
      bool computed = Is(T::kOpenSquare);
      ++cur_;
      if (computed) {
        // index or slice
        NodeP idx[3];
        int part = 0;
        bool slice = false;
        while (!Is(T::kCloseSquare)) {
          if (cur_ >= t_.size()) Error("unterminated [");
          if (Is(T::kColon)) {
            slice = true;
            if (++part > 2) Error("too many ':' in a slice");
            ++cur_;
          } else {
            if (idx[part]) Error("expected ':' or ']'");
            idx[part] = ParseExpression();
          }
        }
        ++cur_;
        if (slice) {
          NodeP n = MakeNode(N::kSlice, line);
          n->kids.push_back(std::move(obj));
          for (auto& p : idx) n->kids.push_back(std::move(p));  // may be null
          obj = std::move(n);
        } else {
          if (!idx[0]) Error("empty []");
          NodeP n = MakeNode(N::kMember, line);
          n->flag = true;
          n->kids.push_back(std::move(obj));
          n->kids.push_back(std::move(idx[0]));
          obj = std::move(n);
        }
      } else {
        if (!Is(T::kIdent) && !Is(T::kNumber))
          Error("expected a name after '.'");
        NodeP n = MakeNode(N::kMember, line);
        n->str = t_[cur_++].value;
        n->kids.push_back(std::move(obj));
        obj = std::move(n);
      }
    }
    return obj;
  }
  NodeP ParsePrimary() {
    Nest nest(this);
    if (cur_ >= t_.size()) Error("unexpected end of template in an expression");
    const Tok& tk = t_[cur_++];
    int line = tk.line;
    switch (tk.type) {
      case T::kNumber: {
        NodeP n = MakeNode(N::kLiteral, line);
        if (tk.value.find('.') != std::string::npos)
          n->value = Value::Float(std::strtod(tk.value.c_str(), nullptr));
        else
          n->value = Value::Int(std::strtoll(tk.value.c_str(), nullptr, 10));
        return n;
      }
      case T::kString: {
        std::string v = tk.value;
        // Adjacent literals concatenate, as in Python ('a' 'b' == 'ab').
        while (Is(T::kString)) v += t_[cur_++].value;
        NodeP n = MakeNode(N::kLiteral, line);
        n->value = Value::Str(v);
        return n;
      }
      case T::kIdent: {
        NodeP n = MakeNode(N::kIdent, line);
        n->str = tk.value;
        return n;
      }
      case T::kOpenParen: {
        NodeP e = ParseExpressionSequence(false);
        Expect(T::kCloseParen, ")");
        return e;
      }
      case T::kOpenSquare: {
        NodeP n = MakeNode(N::kList, line);
        while (!Is(T::kCloseSquare)) {
          if (cur_ >= t_.size()) Error("unterminated list literal");
          n->kids.push_back(ParseExpression());
          if (Is(T::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      case T::kOpenCurly: {
        NodeP n = MakeNode(N::kDict, line);
        while (!Is(T::kCloseCurly)) {
          if (cur_ >= t_.size()) Error("unterminated dict literal");
          n->kids.push_back(ParseExpression());
          Expect(T::kColon, "':' in a dict literal");
          n->kids.push_back(ParseExpression());
          if (Is(T::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      default:
        --cur_;
        Error(StrCat("unexpected '", tk.value, "' in an expression"));
    }
  }
};

}  // namespace

std::vector<NodeP> Parse(std::vector<Tok> toks) {
  return Parser(std::move(toks)).ParseProgram();
}

}  // namespace dllm::jinja
