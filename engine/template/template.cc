// The template engine: lexer, parser (to an AST), evaluator and the
// context-aware renderer. See docs/templates.md for the language.
#include "keyonce/template.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

#include "template/internal.h"

namespace keyonce {
namespace tmpl {
namespace {

// ------------------------------------------------------------------ roots

enum class Root : uint8_t {
  kRecord,
  kParams,
  kSecrets,
  kCaptures,
  kRun,
  kState,
  kReply,
  kLookup,
  kKey
};

constexpr std::array<std::string_view, 9> kRootNames = {
    "record", "params", "secrets", "captures", "run", "state", "reply", "lookup", "key"};

const Value* RootValue(Root r, const Scope& s) {
  switch (r) {
    case Root::kRecord:
      return s.record;
    case Root::kParams:
      return s.params;
    case Root::kSecrets:
      return s.secrets;
    case Root::kCaptures:
      return s.captures;
    case Root::kRun:
      return s.run;
    case Root::kState:
      return s.state;
    case Root::kReply:
      return s.reply;
    case Root::kLookup:
      return s.lookup;
    case Root::kKey:
      return s.key;
  }
  return nullptr;
}

// ------------------------------------------------------------------ lexer

enum class Tok {
  kEnd,  // `}}`
  kIdent,
  kString,
  kInt,
  kDecimal,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kDot,
  kComma,
  kPipe,
  kTilde,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t offset = 0;  // in the template text
  size_t length = 0;
  std::string text;  // identifier name or decoded string literal
  int64_t i = 0;
  double d = 0;
};

struct CompileFailure {
  size_t offset;
  std::string message;
};

const char* TokName(Tok t) {
  switch (t) {
    case Tok::kEnd:
      return "'}}'";
    case Tok::kIdent:
      return "a name";
    case Tok::kString:
      return "a string";
    case Tok::kInt:
    case Tok::kDecimal:
      return "a number";
    case Tok::kLParen:
      return "'('";
    case Tok::kRParen:
      return "')'";
    case Tok::kLBracket:
      return "'['";
    case Tok::kRBracket:
      return "']'";
    case Tok::kDot:
      return "'.'";
    case Tok::kComma:
      return "','";
    case Tok::kPipe:
      return "'|'";
    case Tok::kTilde:
      return "'~'";
    case Tok::kEq:
      return "'=='";
    case Tok::kNe:
      return "'!='";
    case Tok::kLt:
      return "'<'";
    case Tok::kLe:
      return "'<='";
    case Tok::kGt:
      return "'>'";
    case Tok::kGe:
      return "'>='";
  }
  return "?";
}

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Tokenises one `{{ ... }}` expression starting after the `{{`.
class Lexer {
 public:
  Lexer(std::string_view text, size_t pos, size_t open_offset)
      : text_(text), pos_(pos), open_(open_offset) {}

  // Reads all tokens up to and including the closing `}}`.
  std::optional<CompileFailure> Run(std::vector<Token>* out) {
    for (;;) {
      while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
      if (pos_ >= text_.size()) {
        return CompileFailure{open_, "unterminated '{{': no matching '}}'"};
      }
      Token t;
      t.offset = pos_;
      char c = text_[pos_];
      char n = pos_ + 1 < text_.size() ? text_[pos_ + 1] : '\0';
      if (c == '}' && n == '}') {
        t.kind = Tok::kEnd;
        t.length = 2;
        pos_ += 2;
        out->push_back(std::move(t));
        return std::nullopt;
      }
      if (c == '{' && n == '{') {
        return CompileFailure{open_, "unterminated '{{': no matching '}}' before the next '{{'"};
      }
      if (IsIdentStart(c)) {
        size_t start = pos_;
        while (pos_ < text_.size() && IsIdentChar(text_[pos_])) ++pos_;
        t.kind = Tok::kIdent;
        t.text = std::string(text_.substr(start, pos_ - start));
      } else if (IsDigit(c) || (c == '-' && IsDigit(n))) {
        if (auto f = LexNumber(&t)) return f;
      } else if (c == '\'' || c == '"') {
        if (auto f = LexString(&t)) return f;
      } else {
        auto two = [&](Tok kind) {
          t.kind = kind;
          pos_ += 2;
        };
        auto one = [&](Tok kind) {
          t.kind = kind;
          pos_ += 1;
        };
        switch (c) {
          case '(':
            one(Tok::kLParen);
            break;
          case ')':
            one(Tok::kRParen);
            break;
          case '[':
            one(Tok::kLBracket);
            break;
          case ']':
            one(Tok::kRBracket);
            break;
          case '.':
            one(Tok::kDot);
            break;
          case ',':
            one(Tok::kComma);
            break;
          case '~':
            one(Tok::kTilde);
            break;
          case '|':
            if (n == '|') return CompileFailure{pos_, "use 'or' instead of '||'"};
            one(Tok::kPipe);
            break;
          case '=':
            if (n != '=')
              return CompileFailure{pos_, "use '==' to compare ('=' alone is not an operator)"};
            two(Tok::kEq);
            break;
          case '!':
            if (n != '=') return CompileFailure{pos_, "use 'not' instead of '!'"};
            two(Tok::kNe);
            break;
          case '<':
            if (n == '=')
              two(Tok::kLe);
            else
              one(Tok::kLt);
            break;
          case '>':
            if (n == '=')
              two(Tok::kGe);
            else
              one(Tok::kGt);
            break;
          case '&':
            return CompileFailure{pos_, "use 'and' instead of '&'"};
          case '+':
            return CompileFailure{pos_, "use '~' to join text ('+' is not an operator)"};
          default: {
            unsigned char u = static_cast<unsigned char>(c);
            if (u >= 0x80) {
              return CompileFailure{pos_,
                                    "unexpected non-ASCII character in expression; write "
                                    "such field names in brackets: record[\"navn\"]"};
            }
            std::string shown;
            if (u >= 0x20 && u < 0x7F) {
              shown = std::string("'") + c + "'";
            } else {
              shown = "byte 0x" + std::string(1, "0123456789abcdef"[u >> 4]) +
                      std::string(1, "0123456789abcdef"[u & 0xF]);
            }
            return CompileFailure{pos_, "unexpected character " + shown + " in expression"};
          }
        }
      }
      t.length = pos_ - t.offset;
      out->push_back(std::move(t));
    }
  }

  size_t pos() const { return pos_; }

 private:
  std::optional<CompileFailure> LexNumber(Token* t) {
    size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    bool decimal = false;
    if (pos_ + 1 < text_.size() && text_[pos_] == '.' && IsDigit(text_[pos_ + 1])) {
      decimal = true;
      ++pos_;
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && IsIdentChar(text_[pos_])) {
      return CompileFailure{start, "malformed number"};
    }
    std::string_view s = text_.substr(start, pos_ - start);
    if (decimal) {
      t->kind = Tok::kDecimal;
      auto r = std::from_chars(s.data(), s.data() + s.size(), t->d);
      if (r.ec != std::errc()) return CompileFailure{start, "number out of range"};
    } else {
      t->kind = Tok::kInt;
      auto r = std::from_chars(s.data(), s.data() + s.size(), t->i);
      if (r.ec != std::errc()) return CompileFailure{start, "integer out of range"};
    }
    return std::nullopt;
  }

  std::optional<CompileFailure> LexString(Token* t) {
    size_t start = pos_;
    char quote = text_[pos_++];
    t->kind = Tok::kString;
    std::string& out = t->text;
    for (;;) {
      if (pos_ >= text_.size()) return CompileFailure{start, "unterminated string"};
      char c = text_[pos_];
      if (c == quote) {
        ++pos_;
        return std::nullopt;
      }
      if (c != '\\') {
        out.push_back(c);
        ++pos_;
        continue;
      }
      size_t esc = pos_;
      if (pos_ + 1 >= text_.size()) return CompileFailure{start, "unterminated string"};
      char e = text_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case '0':
          out.push_back('\0');
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return CompileFailure{esc, "'\\u' needs four hex digits"};
          uint32_t cp = 0;
          for (int k = 0; k < 4; ++k) {
            char h = text_[pos_ + k];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= static_cast<uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f')
              cp |= static_cast<uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
              cp |= static_cast<uint32_t>(h - 'A' + 10);
            else
              return CompileFailure{esc, "'\\u' needs four hex digits"};
          }
          pos_ += 4;
          if (cp >= 0xD800 && cp <= 0xDFFF) {
            return CompileFailure{esc, "'\\u' escapes of surrogates are not supported"};
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return CompileFailure{
              esc,
              std::string("unknown escape '\\") +
                  (static_cast<unsigned char>(e) < 0x80 ? std::string(1, e) : std::string("?")) +
                  "' in string (known: \\\\ \\' \\\" \\n \\t \\r \\0 \\uXXXX)"};
      }
    }
  }

  std::string_view text_;
  size_t pos_;
  size_t open_;
};

// ------------------------------------------------------------------ AST

enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Segment {
  enum class Kind : uint8_t { kKey, kIndex, kExpr } kind = Kind::kKey;
  std::string key;
  int64_t index = 0;
  NodePtr expr;
};

struct Node {
  enum class Kind : uint8_t { kLiteral, kRoot, kPath, kFilter, kNot, kAnd, kOr, kCompare, kConcat };
  Kind kind = Kind::kLiteral;
  size_t offset = 0;
  Value literal;                       // kLiteral
  Root root = Root::kRecord;           // kRoot
  NodePtr a, b;                        // kPath base; operands; kFilter input
  std::vector<Segment> segments;       // kPath
  const FilterSpec* filter = nullptr;  // kFilter
  std::vector<NodePtr> args;           // kFilter
  std::shared_ptr<const void> prepared;
  CmpOp op = CmpOp::kEq;  // kCompare
};

NodePtr MakeNode(Node::Kind kind, size_t offset) {
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->offset = offset;
  return n;
}

// ------------------------------------------------------------------ parser

std::span<const std::string_view> FilterNameViews() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const auto& f : AllFilters()) v.push_back(f.name);
    return v;
  }();
  return names;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::vector<Template::Reference>* refs)
      : toks_(std::move(tokens)), refs_(refs) {}

  std::optional<CompileFailure> ParseAll(NodePtr* out) {
    if (Peek().kind == Tok::kEnd) {
      return CompileFailure{Peek().offset,
                            "empty expression: expected a value between '{{' and '}}'"};
    }
    auto n = ParseOr();
    if (!n) return failure_;
    if (Peek().kind != Tok::kEnd) {
      const Token& t = Peek();
      if (t.kind == Tok::kLBracket || t.kind == Tok::kDot) {
        return CompileFailure{t.offset, std::string("unexpected ") + TokName(t.kind) +
                                            " after a filter; wrap the filtered expression in "
                                            "parentheses, e.g. (x | split(','))[0]"};
      }
      if (t.kind == Tok::kLt || t.kind == Tok::kLe || t.kind == Tok::kGt || t.kind == Tok::kGe ||
          t.kind == Tok::kEq || t.kind == Tok::kNe) {
        return CompileFailure{t.offset, "comparisons cannot be chained; combine them with 'and'"};
      }
      return CompileFailure{t.offset,
                            std::string("expected '}}' or an operator, found ") + Describe(t)};
    }
    *out = std::move(n);
    return std::nullopt;
  }

 private:
  const Token& Peek() const { return toks_[pos_]; }
  const Token& Next() { return toks_[pos_++]; }
  bool IsKeyword(const Token& t, std::string_view kw) const {
    return t.kind == Tok::kIdent && t.text == kw;
  }

  static std::string Describe(const Token& t) {
    if (t.kind == Tok::kIdent) return "'" + t.text + "'";
    return TokName(t.kind);
  }

  NodePtr Fail(size_t offset, std::string message) {
    if (!failure_) failure_ = CompileFailure{offset, std::move(message)};
    return nullptr;
  }

  // Guards the recursion (and the evaluator's) against absurd nesting.
  struct DepthGuard {
    explicit DepthGuard(int* d) : depth(d) { ++*depth; }
    ~DepthGuard() { --*depth; }
    int* depth;
  };
  static constexpr int kMaxDepth = 64;
  static constexpr int kMaxChain = 256;  // operands of one operator / filters in one chain

  NodePtr ParseOr() {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxDepth) return Fail(Peek().offset, "expression is nested too deeply");
    auto left = ParseAnd();
    if (!left) return nullptr;
    int chain = 0;
    while (IsKeyword(Peek(), "or")) {
      if (++chain > kMaxChain) return Fail(Peek().offset, "expression is too long");
      size_t off = Next().offset;
      auto right = ParseAnd();
      if (!right) return nullptr;
      auto n = MakeNode(Node::Kind::kOr, off);
      n->a = std::move(left);
      n->b = std::move(right);
      left = std::move(n);
    }
    return left;
  }

  NodePtr ParseAnd() {
    auto left = ParseNot();
    if (!left) return nullptr;
    int chain = 0;
    while (IsKeyword(Peek(), "and")) {
      if (++chain > kMaxChain) return Fail(Peek().offset, "expression is too long");
      size_t off = Next().offset;
      auto right = ParseNot();
      if (!right) return nullptr;
      auto n = MakeNode(Node::Kind::kAnd, off);
      n->a = std::move(left);
      n->b = std::move(right);
      left = std::move(n);
    }
    return left;
  }

  NodePtr ParseNot() {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxDepth) return Fail(Peek().offset, "expression is nested too deeply");
    if (IsKeyword(Peek(), "not")) {
      size_t off = Next().offset;
      auto operand = ParseNot();
      if (!operand) return nullptr;
      auto n = MakeNode(Node::Kind::kNot, off);
      n->a = std::move(operand);
      return n;
    }
    return ParseCompare();
  }

  NodePtr ParseCompare() {
    auto left = ParseConcat();
    if (!left) return nullptr;
    CmpOp op;
    switch (Peek().kind) {
      case Tok::kEq:
        op = CmpOp::kEq;
        break;
      case Tok::kNe:
        op = CmpOp::kNe;
        break;
      case Tok::kLt:
        op = CmpOp::kLt;
        break;
      case Tok::kLe:
        op = CmpOp::kLe;
        break;
      case Tok::kGt:
        op = CmpOp::kGt;
        break;
      case Tok::kGe:
        op = CmpOp::kGe;
        break;
      default:
        return left;
    }
    size_t off = Next().offset;
    auto right = ParseConcat();
    if (!right) return nullptr;
    auto n = MakeNode(Node::Kind::kCompare, off);
    n->op = op;
    n->a = std::move(left);
    n->b = std::move(right);
    return n;
  }

  NodePtr ParseConcat() {
    auto left = ParseFiltered();
    if (!left) return nullptr;
    int chain = 0;
    while (Peek().kind == Tok::kTilde) {
      if (++chain > kMaxChain) return Fail(Peek().offset, "expression is too long");
      size_t off = Next().offset;
      auto right = ParseFiltered();
      if (!right) return nullptr;
      auto n = MakeNode(Node::Kind::kConcat, off);
      n->a = std::move(left);
      n->b = std::move(right);
      left = std::move(n);
    }
    return left;
  }

  NodePtr ParseFiltered() {
    auto input = ParsePostfix();
    if (!input) return nullptr;
    int chain = 0;
    while (Peek().kind == Tok::kPipe) {
      if (++chain > kMaxChain) return Fail(Peek().offset, "expression is too long");
      Next();
      const Token& name = Peek();
      if (name.kind != Tok::kIdent) {
        return Fail(name.offset, "expected a filter name after '|', found " + Describe(name));
      }
      Next();
      const FilterSpec* spec = FindFilter(name.text);
      if (!spec) {
        std::string msg = "unknown filter '" + name.text + "'";
        auto hint = ClosestName(name.text, FilterNameViews());
        if (!hint.empty()) msg += "; did you mean '" + std::string(hint) + "'?";
        return Fail(name.offset, msg);
      }
      auto n = MakeNode(Node::Kind::kFilter, name.offset);
      n->filter = spec;
      n->a = std::move(input);
      std::vector<size_t> arg_offsets;
      if (Peek().kind == Tok::kLParen) {
        Next();
        if (Peek().kind != Tok::kRParen) {
          for (;;) {
            arg_offsets.push_back(Peek().offset);
            auto arg = ParseOr();
            if (!arg) return nullptr;
            n->args.push_back(std::move(arg));
            if (Peek().kind == Tok::kComma) {
              Next();
              continue;
            }
            if (Peek().kind == Tok::kRParen) break;
            return Fail(Peek().offset, "expected ',' or ')' in the arguments of filter '" +
                                           name.text + "', found " + Describe(Peek()));
          }
        }
        Next();  // ')'
      }
      int count = static_cast<int>(n->args.size());
      if (count < spec->min_args || count > spec->max_args) {
        std::string want;
        if (spec->min_args == spec->max_args) {
          want = std::to_string(spec->min_args);
        } else {
          want = std::to_string(spec->min_args) + " to " + std::to_string(spec->max_args);
        }
        return Fail(name.offset, "filter '" + name.text + "' takes " + want +
                                     (want == "1" ? " argument" : " arguments") + ", got " +
                                     std::to_string(count));
      }
      if (spec->prepare) {
        std::vector<const Value*> literal;
        for (const auto& a : n->args) {
          literal.push_back(a->kind == Node::Kind::kLiteral ? &a->literal : nullptr);
        }
        if (auto err = spec->prepare(literal, &n->prepared)) {
          size_t off = err->arg < arg_offsets.size() ? arg_offsets[err->arg] : name.offset;
          return Fail(off, "filter '" + name.text + "': " + err->message);
        }
      }
      input = std::move(n);
    }
    return input;
  }

  NodePtr ParsePostfix() {
    auto base = ParsePrimary();
    if (!base) return nullptr;
    size_t ref_index = static_cast<size_t>(-1);
    if (base->kind == Node::Kind::kRoot) ref_index = refs_->size() - 1;
    NodePtr path;
    auto add = [&](Segment seg) {
      if (!path) {
        path = MakeNode(Node::Kind::kPath, base->offset);
        path->a = std::move(base);
      }
      path->segments.push_back(std::move(seg));
    };
    bool first = true;
    for (;;) {
      if (Peek().kind == Tok::kDot) {
        Next();
        const Token& t = Peek();
        if (t.kind != Tok::kIdent) {
          if (t.kind == Tok::kInt) {
            return Fail(t.offset, "use [" + std::to_string(t.i) + "] to index a list");
          }
          return Fail(t.offset, "expected a field name after '.', found " + Describe(t) +
                                    "; use [\"...\"] for names with spaces or symbols");
        }
        Next();
        if (first && ref_index != static_cast<size_t>(-1)) (*refs_)[ref_index].name = t.text;
        Segment seg;
        seg.kind = Segment::Kind::kKey;
        seg.key = t.text;
        add(std::move(seg));
      } else if (Peek().kind == Tok::kLBracket) {
        size_t open = Next().offset;
        auto index = ParseOr();
        if (!index) return nullptr;
        if (Peek().kind != Tok::kRBracket) {
          return Fail(Peek().offset, "expected ']' to close the '[' at offset " +
                                         std::to_string(open) + ", found " + Describe(Peek()));
        }
        Next();
        Segment seg;
        if (index->kind == Node::Kind::kLiteral && index->literal.is_string()) {
          seg.kind = Segment::Kind::kKey;
          seg.key = std::string(index->literal.get_string());
          if (first && ref_index != static_cast<size_t>(-1)) (*refs_)[ref_index].name = seg.key;
        } else if (index->kind == Node::Kind::kLiteral && index->literal.is_int64()) {
          seg.kind = Segment::Kind::kIndex;
          seg.index = index->literal.get_int64();
        } else if (index->kind == Node::Kind::kLiteral) {
          return Fail(index->offset, "an index must be a string or an integer");
        } else {
          seg.kind = Segment::Kind::kExpr;
          seg.expr = std::move(index);
        }
        add(std::move(seg));
      } else {
        break;
      }
      first = false;
    }
    return path ? std::move(path) : std::move(base);
  }

  NodePtr ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kString: {
        auto n = MakeNode(Node::Kind::kLiteral, t.offset);
        n->literal = boost::json::string(t.text);
        Next();
        return n;
      }
      case Tok::kInt: {
        auto n = MakeNode(Node::Kind::kLiteral, t.offset);
        n->literal = t.i;
        Next();
        return n;
      }
      case Tok::kDecimal: {
        auto n = MakeNode(Node::Kind::kLiteral, t.offset);
        n->literal = t.d;
        Next();
        return n;
      }
      case Tok::kLParen: {
        size_t open = Next().offset;
        auto inner = ParseOr();
        if (!inner) return nullptr;
        if (Peek().kind != Tok::kRParen) {
          return Fail(Peek().offset, "expected ')' to close the '(' at offset " +
                                         std::to_string(open) + ", found " + Describe(Peek()));
        }
        Next();
        return inner;
      }
      case Tok::kIdent: {
        if (t.text == "true" || t.text == "false") {
          auto n = MakeNode(Node::Kind::kLiteral, t.offset);
          n->literal = (t.text == "true");
          Next();
          return n;
        }
        if (t.text == "null") {
          auto n = MakeNode(Node::Kind::kLiteral, t.offset);
          Next();
          return n;
        }
        if (t.text == "and" || t.text == "or" || t.text == "not") {
          return Fail(t.offset, "expected a value, found '" + t.text + "'");
        }
        for (size_t i = 0; i < kRootNames.size(); ++i) {
          if (t.text == kRootNames[i]) {
            auto n = MakeNode(Node::Kind::kRoot, t.offset);
            n->root = static_cast<Root>(i);
            refs_->push_back(Template::Reference{t.text, "", t.offset});
            Next();
            return n;
          }
        }
        std::string msg = "unknown name '" + t.text + "'";
        auto hint = ClosestName(t.text, kRootNames);
        if (!hint.empty()) {
          msg += "; did you mean '" + std::string(hint) + "'?";
        } else {
          msg +=
              "; a value starts with record, params, secrets, captures, run, state, reply, "
              "lookup or key, or is a literal ('text', 12, true, null)";
        }
        return Fail(t.offset, msg);
      }
      case Tok::kEnd:
        return Fail(t.offset, "expected a value before '}}'");
      default:
        return Fail(t.offset, std::string("expected a value, found ") + TokName(t.kind));
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  std::vector<Template::Reference>* refs_;
  std::optional<CompileFailure> failure_;
  int depth_ = 0;
};

// ------------------------------------------------------------------ evaluation

Status Eval(const Node& n, const Scope& scope, Slot& out);

bool Truthy(const Node& n, const Scope& scope, Status* st) {
  Slot s;
  *st = Eval(n, scope, s);
  return st->ok() && IsTruthy(s.get());
}

bool IsJsonNumber(const Value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

int Sign(int c) { return c < 0 ? -1 : (c > 0 ? 1 : 0); }

// Numbers and numeric text compare by value (exactly, whatever their
// length: long account numbers must not collapse into one double); anything
// else compares by text form.
int CompareValues(const Value& a, const Value& b) {
  bool a_num = IsJsonNumber(a), b_num = IsJsonNumber(b);
  bool a_numeric = a_num || (a.is_string() && IsPlainNumber(a.get_string()));
  bool b_numeric = b_num || (b.is_string() && IsPlainNumber(b.get_string()));
  if (a_numeric && b_numeric) {
    if (a_num && b_num) {
      auto x = NumericValue(a), y = NumericValue(b);
      if (x->is_int && y->is_int) return x->i < y->i ? -1 : (x->i > y->i ? 1 : 0);
      if (!a.is_uint64() && !b.is_uint64()) {
        double p = x->AsDouble(), q = y->AsDouble();
        if (std::isfinite(p) && std::isfinite(q)) return p < q ? -1 : (p > q ? 1 : 0);
      }
    }
    std::optional<std::string> at, bt;
    if (a_num) at = DecimalText(a);
    if (b_num) bt = DecimalText(b);
    if ((!a_num || at) && (!b_num || bt)) {
      return CompareDecimalText(at ? std::string_view(*at) : std::string_view(a.get_string()),
                                bt ? std::string_view(*bt) : std::string_view(b.get_string()));
    }
  }
  if (a.is_string() && b.is_string()) {
    return Sign(std::string_view(a.get_string()).compare(std::string_view(b.get_string())));
  }
  return Sign(ToText(a).compare(ToText(b)));
}

const Value* Step(const Value& v, std::string_view key) {
  if (!v.is_object()) return &NullValue();
  const auto& obj = v.get_object();
  auto it = obj.find(key);
  return it == obj.end() ? &NullValue() : &it->value();
}

const Value* Step(const Value& v, int64_t index) {
  if (!v.is_array()) return &NullValue();
  const auto& arr = v.get_array();
  int64_t size = static_cast<int64_t>(arr.size());
  if (index < 0) index += size;
  if (index < 0 || index >= size) return &NullValue();
  return &arr[static_cast<size_t>(index)];
}

void MoveTo(Slot& slot, const Value* next, bool by_ref) {
  if (by_ref) {
    slot.Ref(next);
  } else {
    Value copy = *next;  // next points into the slot's own value
    slot.Set(std::move(copy));
  }
}

Status Eval(const Node& n, const Scope& scope, Slot& out) {
  switch (n.kind) {
    case Node::Kind::kLiteral:
      out.Ref(&n.literal);
      return Status::OK();
    case Node::Kind::kRoot: {
      const Value* v = RootValue(n.root, scope);
      out.Ref(v ? v : &NullValue());
      return Status::OK();
    }
    case Node::Kind::kPath: {
      KEYONCE_RETURN_IF_ERROR(Eval(*n.a, scope, out));
      for (const auto& seg : n.segments) {
        const Value& cur = out.get();
        const Value* next = &NullValue();
        switch (seg.kind) {
          case Segment::Kind::kKey:
            next = Step(cur, seg.key);
            break;
          case Segment::Kind::kIndex:
            next = Step(cur, seg.index);
            break;
          case Segment::Kind::kExpr: {
            Slot idx;
            KEYONCE_RETURN_IF_ERROR(Eval(*seg.expr, scope, idx));
            const Value& iv = idx.get();
            if (iv.is_string()) {
              next = Step(cur, std::string_view(iv.get_string()));
            } else if (iv.is_int64()) {
              next = Step(cur, iv.get_int64());
            } else if (iv.is_uint64()) {
              next = Step(cur, static_cast<int64_t>(iv.get_uint64()));
            } else if (iv.is_double() && cur.is_array()) {
              double d = iv.get_double();
              next = d == static_cast<double>(static_cast<int64_t>(d))
                         ? Step(cur, static_cast<int64_t>(d))
                         : &NullValue();
            } else if (!iv.is_null() && cur.is_object()) {
              next = Step(cur, ToText(iv));
            }
            break;
          }
        }
        MoveTo(out, next, next == &NullValue() || out.is_ref());
      }
      return Status::OK();
    }
    case Node::Kind::kFilter: {
      KEYONCE_RETURN_IF_ERROR(Eval(*n.a, scope, out));
      std::array<Slot, kMaxFilterArgs> slots;  // the parser enforces the limit
      std::array<const Value*, kMaxFilterArgs> ptrs{};
      for (size_t i = 0; i < n.args.size(); ++i) {
        KEYONCE_RETURN_IF_ERROR(Eval(*n.args[i], scope, slots[i]));
        ptrs[i] = &slots[i].get();
      }
      FilterContext ctx{scope, n.prepared.get(), n.filter->name};
      KEYONCE_RETURN_IF_ERROR(
          n.filter->fn(out, std::span<const Value* const>(ptrs.data(), n.args.size()), ctx));
      if (const Value& v = out.get();
          v.is_string() && v.get_string().size() > scope.max_text_bytes) {
        return TextTooLong("the filter '" + std::string(n.filter->name) + "'",
                           v.get_string().size(), scope.max_text_bytes);
      }
      return Status::OK();
    }
    case Node::Kind::kNot: {
      Status st;
      bool v = Truthy(*n.a, scope, &st);
      if (!st.ok()) return st;
      out.Set(Value(!v));
      return Status::OK();
    }
    case Node::Kind::kAnd:
    case Node::Kind::kOr: {
      Status st;
      bool left = Truthy(*n.a, scope, &st);
      if (!st.ok()) return st;
      bool is_and = n.kind == Node::Kind::kAnd;
      if (is_and ? !left : left) {
        out.Set(Value(left));
        return Status::OK();
      }
      bool right = Truthy(*n.b, scope, &st);
      if (!st.ok()) return st;
      out.Set(Value(right));
      return Status::OK();
    }
    case Node::Kind::kCompare: {
      Slot l, r;
      KEYONCE_RETURN_IF_ERROR(Eval(*n.a, scope, l));
      KEYONCE_RETURN_IF_ERROR(Eval(*n.b, scope, r));
      int c = CompareValues(l.get(), r.get());
      bool result = false;
      switch (n.op) {
        case CmpOp::kEq:
          result = c == 0;
          break;
        case CmpOp::kNe:
          result = c != 0;
          break;
        case CmpOp::kLt:
          result = c < 0;
          break;
        case CmpOp::kLe:
          result = c <= 0;
          break;
        case CmpOp::kGt:
          result = c > 0;
          break;
        case CmpOp::kGe:
          result = c >= 0;
          break;
      }
      out.Set(Value(result));
      return Status::OK();
    }
    case Node::Kind::kConcat: {
      Slot l, r;
      KEYONCE_RETURN_IF_ERROR(Eval(*n.a, scope, l));
      KEYONCE_RETURN_IF_ERROR(Eval(*n.b, scope, r));
      const size_t size = TextSize(l.get()) + TextSize(r.get());
      if (size > scope.max_text_bytes) {
        return TextWouldBeTooLong("the operator '~'", size, scope.max_text_bytes);
      }
      boost::json::string s;  // built in place: no second copy of a large text
      s.reserve(size);
      for (const Value* v : {&l.get(), &r.get()}) {
        if (v->is_string()) {
          s.append(v->get_string());
        } else if (!v->is_null()) {
          s.append(ToText(*v));
        }
      }
      out.Set(Value(std::move(s)));
      return Status::OK();
    }
  }
  return Status::Internal("template: unknown expression node");
}

}  // namespace

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// ------------------------------------------------------------------ shared helpers

const Value& NullValue() {
  static const Value kNull;
  return kNull;
}

void AppendText(std::string& out, const Value& v) {
  if (v.is_string()) {
    std::string_view s = v.get_string();
    out.append(s.data(), s.size());
  } else if (!v.is_null()) {
    out += ToText(v);
  }
}

void AppendJsonEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  // The bytes JSON text must escape: controls, DEL, '"' and '\\'.
  static constexpr std::array<bool, 256> kEscape = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[c] = true;
    t['"'] = t['\\'] = t[0x7F] = true;
    return t;
  }();
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    const char* q = p;
    while (q < end && !kEscape[static_cast<unsigned char>(*q)]) ++q;
    out.append(p, static_cast<size_t>(q - p));
    if (q == end) break;
    const auto c = static_cast<unsigned char>(*q);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(u, sizeof u);
      }
    }
    p = q + 1;
  }
}

void AppendJson(std::string& out, const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      out += "null";
      break;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case boost::json::kind::int64:
      out += std::to_string(v.get_int64());
      break;
    case boost::json::kind::uint64:
      out += std::to_string(v.get_uint64());
      break;
    case boost::json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) {  // JSON has no NaN or infinity
        out += "null";
        break;
      }
      // Shortest round-trip form; plain decimals in the range JavaScript
      // prints them so (0.0001, not 1e-04), exponents beyond it.
      char buf[64];
      double mag = std::fabs(d);
      bool fixed = mag == 0 || (mag >= 1e-7 && mag < 1e21);
      auto r = fixed ? std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed)
                     : std::to_chars(buf, buf + sizeof buf, d);
      std::string_view text(buf, r.ec == std::errc() ? static_cast<size_t>(r.ptr - buf) : 0);
      out.append(text);
      // Keep it a decimal on re-reading: 8.0, not 8.
      if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
      break;
    }
    case boost::json::kind::string:
      out.push_back('"');
      AppendJsonEscaped(out, v.get_string());
      out.push_back('"');
      break;
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJson(out, item);
      }
      out.push_back(']');
      break;
    }
    case boost::json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        out.push_back('"');
        AppendJsonEscaped(out, kv.key());
        out += "\":";
        AppendJson(out, kv.value());
      }
      out.push_back('}');
      break;
    }
  }
}

void AppendXmlEscaped(std::string& out, std::string_view s) {
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* rep = nullptr;
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '&':
        rep = "&amp;";
        break;
      case '<':
        rep = "&lt;";
        break;
      case '>':
        rep = "&gt;";
        break;
      case '"':
        rep = "&quot;";
        break;
      case '\'':
        rep = "&apos;";
        break;
      default:
        // XML 1.0 cannot hold these control characters, not even as
        // character references: they become U+FFFD.
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') rep = "\xEF\xBF\xBD";
        break;
    }
    if (rep) {
      out.append(s.data() + run, i - run);
      out.append(rep);
      run = i + 1;
    }
  }
  out.append(s.data() + run, s.size() - run);
}

size_t JsonEscapedSize(std::string_view s) {
  size_t n = s.size();
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
      n += 1;
    } else if (c < 0x20 || c == 0x7F) {
      n += 5;
    }
  }
  return n;
}

size_t XmlEscapedSize(std::string_view s) {
  size_t n = s.size();
  for (char ch : s) {
    switch (ch) {
      case '&':
        n += 4;
        break;
      case '<':
      case '>':
        n += 3;
        break;
      case '"':
      case '\'':
        n += 5;
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') n += 2;
    }
  }
  return n;
}

size_t JsonSize(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::string:
      return 2 + JsonEscapedSize(v.get_string());
    case boost::json::kind::array: {
      size_t n = 2;
      for (const auto& item : v.get_array()) n += 1 + JsonSize(item);
      return n;
    }
    case boost::json::kind::object: {
      size_t n = 2;
      for (const auto& kv : v.get_object())
        n += 4 + JsonEscapedSize(kv.key()) + JsonSize(kv.value());
      return n;
    }
    default: {
      std::string scalar;
      AppendJson(scalar, v);
      return scalar.size();
    }
  }
}

size_t TextSize(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return 0;
    case boost::json::kind::string:
      return v.get_string().size();
    case boost::json::kind::array:
    case boost::json::kind::object:
      return JsonSize(v);  // about ToText's JSON
    default:
      return 32;  // a number or boolean: at most this long, counted without writing it
  }
}

size_t Levenshtein(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string_view ClosestName(std::string_view word, std::span<const std::string_view> candidates) {
  std::string lower(word);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  size_t limit = std::max<size_t>(1, std::min<size_t>(3, (word.size() + 1) / 2));
  std::string_view best;
  size_t best_d = limit + 1;
  for (auto c : candidates) {
    size_t d = Levenshtein(lower, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

}  // namespace tmpl

// ------------------------------------------------------------------ Template

using tmpl::Node;
using tmpl::NodePtr;

namespace tmpl {
struct Compiled {
  struct Part {
    std::string text;  // literal text (when expr is null)
    NodePtr expr;
    size_t offset = 0;
    bool in_json_string = false;  // kJson: the {{ }} sits inside a JSON string literal
  };
  std::string source;
  TemplateContext context = TemplateContext::kText;
  std::vector<Part> parts;
  std::vector<Template::Reference> refs;
  const Node* single = nullptr;  // kValue: the lone expression, if the template is one
  bool constant = true;
  size_t text_size = 0;  // total literal text, to reserve
};
}  // namespace tmpl

struct Template::Impl : tmpl::Compiled {};

namespace {

bool AllSpace(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return tmpl::IsSpace(c); });
}

// Tracks whether a position in JSON text is inside a string literal.
struct JsonScan {
  bool in_string = false;
  bool escape = false;
  void Feed(std::string_view s) {
    for (char c : s) {
      if (in_string) {
        if (escape)
          escape = false;
        else if (c == '\\')
          escape = true;
        else if (c == '"')
          in_string = false;
      } else if (c == '"') {
        in_string = true;
      }
    }
  }
};

// Tracks whether a position in SQL text is inside quotes or a comment.
struct SqlScan {
  enum State { kCode, kSingle, kDouble, kLineComment, kBlockComment } state = kCode;
  char prev = '\0';
  void Feed(std::string_view s) {
    for (char c : s) {
      switch (state) {
        case kCode:
          if (c == '\'') {
            state = kSingle;
          } else if (c == '"') {
            state = kDouble;
          } else if (c == '-' && prev == '-') {
            state = kLineComment;
            c = '\0';
          } else if (c == '*' && prev == '/') {
            state = kBlockComment;
            c = '\0';
          }
          break;
        case kSingle:
          if (c == '\'') state = kCode;
          break;
        case kDouble:
          if (c == '"') state = kCode;
          break;
        case kLineComment:
          if (c == '\n') state = kCode;
          break;
        case kBlockComment:
          if (c == '/' && prev == '*') {
            state = kCode;
            c = '\0';
          }
          break;
      }
      prev = c;
    }
  }
  void Break() { prev = '\0'; }
};

}  // namespace

Template::Template() {
  static const std::shared_ptr<const Impl> empty = std::make_shared<Impl>();
  impl_ = empty;
}
Template::~Template() = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;
Template::Template(Template&& other) noexcept : impl_(std::move(other.impl_)) {
  other.impl_ = Template().impl_;
}
Template& Template::operator=(Template&& other) noexcept {
  if (this != &other) {
    impl_ = std::move(other.impl_);
    other.impl_ = Template().impl_;
  }
  return *this;
}

std::optional<Template> Template::Compile(std::string_view text, TemplateContext context,
                                          TemplateError* error) {
  auto impl = std::make_shared<Impl>();
  impl->source = std::string(text);
  impl->context = context;
  auto fail = [&](size_t offset, std::string message) -> std::optional<Template> {
    if (error) {
      error->offset = offset;
      error->message = std::move(message);
    }
    return std::nullopt;
  };

  JsonScan json;
  SqlScan sql;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    std::string_view literal =
        text.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos);
    if (!literal.empty()) {
      tmpl::Compiled::Part part;
      part.text = std::string(literal);
      part.offset = pos;
      impl->text_size += literal.size();
      if (context == TemplateContext::kJson) json.Feed(literal);
      if (context == TemplateContext::kSql) sql.Feed(literal);
      impl->parts.push_back(std::move(part));
    }
    if (open == std::string_view::npos) break;

    std::vector<tmpl::Token> tokens;
    tmpl::Lexer lexer(text, open + 2, open);
    if (auto f = lexer.Run(&tokens)) return fail(f->offset, std::move(f->message));
    tmpl::Parser parser(std::move(tokens), &impl->refs);
    NodePtr expr;
    if (auto f = parser.ParseAll(&expr)) return fail(f->offset, std::move(f->message));
    if (context == TemplateContext::kSql && sql.state != SqlScan::kCode) {
      return fail(open, sql.state == SqlScan::kSingle || sql.state == SqlScan::kDouble
                            ? "in SQL a '{{ }}' must not be inside quotes: it becomes a '?' "
                              "parameter, so write {{ x }} without quotes"
                            : "in SQL a '{{ }}' must not be inside a comment");
    }
    tmpl::Compiled::Part part;
    part.expr = std::move(expr);
    part.offset = open;
    part.in_json_string = context == TemplateContext::kJson && json.in_string;
    impl->parts.push_back(std::move(part));
    impl->constant = false;
    json.escape = false;
    sql.Break();
    pos = lexer.pos();
  }

  if (context == TemplateContext::kValue) {
    const Node* single = nullptr;
    bool ok = true;
    for (const auto& p : impl->parts) {
      if (p.expr) {
        if (single) ok = false;
        single = p.expr.get();
      } else if (!AllSpace(p.text)) {
        ok = false;
      }
    }
    if (ok) impl->single = single;
  }
  Template t;
  t.impl_ = std::move(impl);
  return t;
}

namespace {

Status RenderInto(const tmpl::Compiled& impl, const Scope& scope, TemplateContext context,
                  std::string& out, std::vector<Value>* binds) {
  out.reserve(impl.text_size + 16 * impl.parts.size());
  for (const auto& part : impl.parts) {
    if (!part.expr) {
      out += part.text;
      continue;
    }
    tmpl::Slot slot;
    KEYONCE_RETURN_IF_ERROR(tmpl::Eval(*part.expr, scope, slot));
    const Value& v = slot.get();
    // The text never grows past the limit: escaping at most sextuples a
    // value, so the exact size is counted only when that could pass it.
    if (const size_t plain = tmpl::TextSize(v); out.size() + 6 * plain > scope.max_text_bytes) {
      size_t add = plain;
      if (context == TemplateContext::kJson) {
        add = part.in_json_string
                  ? tmpl::JsonEscapedSize(v.is_string() ? std::string_view(v.get_string())
                                                        : std::string_view(ToText(v)))
                  : tmpl::JsonSize(v);
      } else if (context == TemplateContext::kXml) {
        add = tmpl::XmlEscapedSize(v.is_string() ? std::string_view(v.get_string())
                                                 : std::string_view(ToText(v)));
      } else if (context == TemplateContext::kSql) {
        add = 1;  // a `?`; the value is bound
      }
      if (out.size() + add > scope.max_text_bytes) {
        return TextWouldBeTooLong("the template", out.size() + add, scope.max_text_bytes);
      }
    }
    switch (context) {
      case TemplateContext::kValue:
      case TemplateContext::kText:
        tmpl::AppendText(out, v);
        break;
      case TemplateContext::kJson:
        if (part.in_json_string) {
          if (v.is_string()) {
            tmpl::AppendJsonEscaped(out, v.get_string());
          } else {
            tmpl::AppendJsonEscaped(out, ToText(v));
          }
        } else {
          tmpl::AppendJson(out, v);
        }
        break;
      case TemplateContext::kXml:
        if (v.is_string()) {
          tmpl::AppendXmlEscaped(out, v.get_string());
        } else {
          tmpl::AppendXmlEscaped(out, ToText(v));
        }
        break;
      case TemplateContext::kSql:
        out.push_back('?');
        binds->push_back(slot.Take());
        break;
    }
    if (out.size() > scope.max_text_bytes) {
      return TextTooLong("the template", out.size(), scope.max_text_bytes);
    }
  }
  return Status::OK();
}

}  // namespace

Result<Value> Template::Evaluate(const Scope& scope) const {
  const Impl& impl = *impl_;
  if (impl.single) {
    tmpl::Slot slot;
    KEYONCE_RETURN_IF_ERROR(tmpl::Eval(*impl.single, scope, slot));
    return slot.Take();
  }
  if (impl.constant) {
    std::string s;
    for (const auto& p : impl.parts) s += p.text;
    return Value(boost::json::string(s));
  }
  TemplateContext ctx = impl.context;
  if (ctx == TemplateContext::kSql) {
    return Status::Invalid(
        "a SQL template cannot be evaluated to a string; it is rendered with bound parameters");
  }
  std::string out;
  KEYONCE_RETURN_IF_ERROR(RenderInto(impl, scope, ctx, out, nullptr));
  return Value(boost::json::string(out));
}

Status Template::EvaluateInto(const Scope& scope, Value* storage, const Value** out) const {
  const Impl& impl = *impl_;
  if (impl.single) {
    tmpl::Slot slot;
    KEYONCE_RETURN_IF_ERROR(tmpl::Eval(*impl.single, scope, slot));
    if (slot.is_ref()) {
      *out = &slot.get();
    } else {
      *storage = slot.Take();
      *out = storage;
    }
    return Status::OK();
  }
  auto v = Evaluate(scope);
  if (!v.ok()) return v.status();
  *storage = std::move(v).value();
  *out = storage;
  return Status::OK();
}

Result<std::string> Template::Render(const Scope& scope, std::vector<Value>* binds) const {
  const Impl& impl = *impl_;
  if (impl.context == TemplateContext::kSql && !binds) {
    return Status::Internal("rendering a SQL template needs a binds vector");
  }
  std::string out;
  size_t bind_count = binds ? binds->size() : 0;
  Status st = RenderInto(impl, scope, impl.context, out, binds);
  if (!st.ok()) {
    if (binds) binds->resize(bind_count);
    return st;
  }
  return out;
}

Status TextTooLong(const std::string& what, size_t bytes, size_t limit) {
  return Status::Invalid(what + " made a text of " + std::to_string(bytes) +
                         " bytes, more than limits.template_bytes (" + ByteSize(limit) + ")");
}

Status TextWouldBeTooLong(const std::string& what, size_t bytes, size_t limit) {
  return Status::Invalid(what + " would make a text of " + std::to_string(bytes) +
                         " bytes, more than limits.template_bytes (" + ByteSize(limit) + ")");
}

const std::string& Template::source() const { return impl_->source; }
TemplateContext Template::context() const { return impl_->context; }
bool Template::IsConstant() const { return impl_->constant; }
std::vector<Template::Reference> Template::References() const { return impl_->refs; }

std::vector<std::string> FilterNames() {
  std::vector<std::string> names;
  for (const auto& f : tmpl::AllFilters()) names.emplace_back(f.name);
  return names;
}

}  // namespace keyonce
