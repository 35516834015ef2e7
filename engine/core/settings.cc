#include "keyonce/settings.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "keyonce/spec.h"
#include "template/internal.h"

namespace keyonce {

namespace {
const Settings::Entry* Get(const Settings& s, const std::string& name) {
  auto it = s.entries.find(name);
  return it == s.entries.end() ? nullptr : &it->second;
}
}  // namespace

bool Settings::Has(const std::string& name) const { return Get(*this, name) != nullptr; }

std::optional<std::string> Settings::String(const std::string& name) const {
  const Entry* e = Get(*this, name);
  if (!e || !e->literal.is_string()) return std::nullopt;
  return std::string(e->literal.get_string());
}

std::optional<int64_t> Settings::Int(const std::string& name) const {
  const Entry* e = Get(*this, name);
  if (!e) return std::nullopt;
  if (e->literal.is_int64()) return e->literal.get_int64();
  if (e->literal.is_uint64()) return static_cast<int64_t>(e->literal.get_uint64());
  if (e->literal.is_double()) return static_cast<int64_t>(e->literal.get_double());
  return std::nullopt;
}

std::optional<double> Settings::Number(const std::string& name) const {
  const Entry* e = Get(*this, name);
  if (!e) return std::nullopt;
  if (e->literal.is_double()) return e->literal.get_double();
  if (e->literal.is_int64()) return static_cast<double>(e->literal.get_int64());
  if (e->literal.is_uint64()) return static_cast<double>(e->literal.get_uint64());
  return std::nullopt;
}

std::optional<bool> Settings::Bool(const std::string& name) const {
  const Entry* e = Get(*this, name);
  if (!e || !e->literal.is_bool()) return std::nullopt;
  return e->literal.get_bool();
}

std::vector<std::string> Settings::StringList(const std::string& name) const {
  std::vector<std::string> out;
  const Entry* e = Get(*this, name);
  if (!e) return out;
  if (e->literal.is_string()) {
    out.emplace_back(e->literal.get_string());
  } else if (e->literal.is_array()) {
    for (const auto& v : e->literal.get_array()) {
      if (v.is_string()) out.emplace_back(v.get_string());
    }
  }
  return out;
}

const Template* Settings::Tmpl(const std::string& name) const {
  const Entry* e = Get(*this, name);
  return e && e->tmpl ? &*e->tmpl : nullptr;
}

const std::vector<std::pair<std::string, Template>>& Settings::TmplMap(
    const std::string& name) const {
  static const std::vector<std::pair<std::string, Template>> kEmpty;
  const Entry* e = Get(*this, name);
  return e ? e->tmpl_map : kEmpty;
}

const StructureTemplate* Settings::Structure(const std::string& name) const {
  const Entry* e = Get(*this, name);
  return e ? e->structure.get() : nullptr;
}

const Value* Settings::Raw(const std::string& name) const {
  const Entry* e = Get(*this, name);
  return e ? &e->literal : nullptr;
}

Result<std::filesystem::path> Settings::ResolvePath(const std::string& name,
                                                    const Scope& scope) const {
  std::string text;
  if (const Template* t = Tmpl(name)) {
    auto r = t->Render(scope);
    if (!r.ok()) return r.status().Wrap("rendering " + name);
    text = std::move(r).value();
  } else if (auto s = String(name)) {
    text = *s;
  }
  if (text.empty()) return Status::Invalid("setting '" + name + "' is empty");
  std::filesystem::path p(text);
  if (p.is_relative()) p = base_dir / p;
  p = p.lexically_normal();
  if (const Template* t = Tmpl(name); t && !t->IsConstant()) {
    // Values put into a path by a template (a caseworker's parameter, a
    // record field) must not move it out of the folder the recipe wrote
    // literally: "out/{{ params.file }}" stays inside out/, and a path that
    // starts with a template stays inside the recipe's folder.
    const std::string& src = t->source();
    std::string fixed = src.substr(0, src.find("{{"));
    size_t slash = fixed.find_last_of('/');
    fixed = slash == std::string::npos ? "" : fixed.substr(0, slash + 1);
    std::filesystem::path root(fixed);
    if (root.is_relative()) root = base_dir / root;
    root = root.lexically_normal();
    if (!root.has_filename()) root = root.parent_path();  // "out/" -> "out"
    auto rel = p.lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..") {
      return Status::Invalid(
          "setting '" + name + "' leaves " +
          (fixed.empty() ? std::string("the recipe's folder") : "the folder " + fixed) +
          " (a value a template puts into a path may not climb out of the folder the recipe "
          "names)");
    }
  }
  return p;
}

int Settings::Line(const std::string& name, const std::string& part) const {
  auto e = entries.find(name);
  if (e == entries.end()) return 0;
  auto l = e->second.lines.find(part);
  return l == e->second.lines.end() ? 0 : l->second;
}

std::string ClosestMatch(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    size_t d = tmpl::Levenshtein(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_d <= limit ? best : "";
}

std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string m = ClosestMatch(word, candidates);
  return m.empty() ? "" : "; did you mean '" + m + "'?";
}

}  // namespace keyonce
