#include "connectors/http/url_template.h"

#include "connectors/common/net/transfer.h"

namespace keyonce::connectors::http {

Result<UrlTemplate> UrlTemplate::From(const Template& t) {
  UrlTemplate u;
  const std::string& s = t.source();
  size_t i = 0;
  std::string literal;
  while (i < s.size()) {
    size_t open = s.find("{{", i);
    if (open == std::string::npos) {
      literal.append(s, i, std::string::npos);
      break;
    }
    literal.append(s, i, open - i);
    // The matching "}}", skipping quoted strings inside the expression.
    size_t j = open + 2;
    char quote = 0;
    size_t close = std::string::npos;
    for (; j < s.size(); ++j) {
      char c = s[j];
      if (quote) {
        if (c == '\\') {
          ++j;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '}' && j + 1 < s.size() && s[j + 1] == '}') {
        close = j;
        break;
      }
    }
    if (close == std::string::npos) return Status::Invalid("unterminated {{ in URL template");
    if (!literal.empty()) {
      u.parts_.push_back(Part{std::move(literal), std::nullopt, false});
      literal.clear();
    }
    TemplateError err;
    auto expr = Template::Compile(s.substr(open, close + 2 - open), TemplateContext::kValue, &err);
    if (!expr) {
      return Status::Invalid("URL template: " + err.message + " at offset " +
                             std::to_string(open + err.offset));
    }
    // Only a base URL (raw) built from params, run or state is shown in
    // messages; anything from a record, a lookup or a secret is not.
    const bool shown = open == 0 && net::ShownInMessages(*expr);
    u.parts_.push_back(Part{"", std::move(*expr), open == 0, shown});
    i = close + 2;
  }
  if (!literal.empty()) u.parts_.push_back(Part{std::move(literal), std::nullopt, false});
  return u;
}

Result<std::string> UrlTemplate::Render(const Scope& scope, std::string* display) const {
  std::string out;
  if (display) display->clear();
  for (const auto& p : parts_) {
    if (!p.expr) {
      out += p.text;
      if (display) *display += p.text;
      continue;
    }
    auto v = p.expr->Evaluate(scope);
    if (!v.ok()) return v.status();
    std::string text = ToText(*v);
    const size_t start = out.size();
    out += p.raw ? text : net::UrlEncode(text);
    if (display) *display += p.shown ? out.substr(start) : p.expr->source();
  }
  if (out.empty()) return Status::Invalid("the URL renders empty");
  return out;
}

}  // namespace keyonce::connectors::http
