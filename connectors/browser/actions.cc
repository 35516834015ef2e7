#include "connectors/browser/actions.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "keyonce/spec.h"

namespace keyonce::connectors::browser {
namespace {

struct KindName {
  Action::Kind kind;
  const char* name;
};
constexpr KindName kKinds[] = {
    {Action::Kind::kGoto, "goto"},         {Action::Kind::kFill, "fill"},
    {Action::Kind::kSelect, "select"},     {Action::Kind::kCheck, "check"},
    {Action::Kind::kUncheck, "uncheck"},   {Action::Kind::kUpload, "upload"},
    {Action::Kind::kClick, "click"},       {Action::Kind::kPress, "press"},
    {Action::Kind::kWait, "wait"},         {Action::Kind::kWaitGone, "wait_gone"},
    {Action::Kind::kExpect, "expect"},     {Action::Kind::kRead, "read"},
    {Action::Kind::kInFrame, "in_frame"},  {Action::Kind::kInNewWindow, "in_new_window"},
    {Action::Kind::kDownload, "download"},
};

const std::vector<std::string>& KindNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& k : kKinds) v.push_back(k.name);
    return v;
  }();
  return names;
}

const std::vector<std::string> kLocatorKeys = {"label", "role", "text", "placeholder",
                                               "title", "css",  "xpath"};
const std::vector<std::string> kLocatorOptions = {"name", "exact", "nth"};

// The keys an action's mapping may hold besides a locator's.
std::vector<std::string> OptionKeys(Action::Kind k) {
  std::vector<std::string> o = {"timeout_seconds"};
  switch (k) {
    case Action::Kind::kFill:
      o.insert(o.end(), {"value", "keys"});
      break;
    case Action::Kind::kSelect:
      o.push_back("option");
      break;
    case Action::Kind::kUpload:
      o.push_back("file");
      break;
    case Action::Kind::kClick:
      o.insert(o.end(), {"dialog", "submits"});
      break;
    case Action::Kind::kPress:
      o.push_back("key");
      break;
    case Action::Kind::kExpect:
      o.push_back("message");
      break;
    case Action::Kind::kDownload:
      o.insert(o.end(), {"as", "folder"});
      break;
    default:
      break;
  }
  return o;
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// "write[3].do[0] (recipe.yaml:31)"; `part` as Settings::Line takes it.
std::string Where(const Settings& settings, const std::string& setting, const std::string& part) {
  std::string w = setting + (part.empty() || part[0] == '[' ? "" : ".") + part;
  int line = settings.Line(setting, part);
  if (line > 0)
    w +=
        " (" + (settings.file.empty() ? "line " : settings.file + ":") + std::to_string(line) + ")";
  return w;
}

bool IsScalar(const Value& v) { return !v.is_object() && !v.is_array() && !v.is_null(); }

// A locator from an action's mapping (or a string: visible text), ignoring
// the action's own options. `required`: the mapping must name one.
Result<Locator> LocatorFrom(const Value& v, const std::string& where,
                            const std::vector<std::string>& options, bool* found) {
  Locator l;
  *found = false;
  if (v.is_string()) {
    l.by = Locator::By::kText;
    l.value = std::string(v.get_string());
    *found = true;
    return l;
  }
  if (!v.is_object()) {
    return Status::Invalid(where + ": expected a text or a mapping (label:, role:, text:, ...)");
  }
  const auto& o = v.get_object();
  std::vector<std::string> known = kLocatorKeys;
  known.insert(known.end(), kLocatorOptions.begin(), kLocatorOptions.end());
  known.insert(known.end(), options.begin(), options.end());
  for (const auto& kv : o) {
    std::string k(kv.key());
    if (!Has(known, k))
      return Status::Invalid(where + ": unknown key '" + k + "'" + DidYouMean(k, known));
  }
  int primaries = 0;
  for (const auto& key : kLocatorKeys) {
    const Value* p = o.if_contains(key);
    if (!p) continue;
    if (++primaries > 1) {
      return Status::Invalid(where +
                             ": give one of label, role, text, placeholder, title, css "
                             "or xpath, not several");
    }
    if (!IsScalar(*p) || ToText(*p).empty()) {
      return Status::Invalid(where + ": '" + key + "' must be a non-empty text");
    }
    l.value = ToText(*p);
    l.by = key == "label"         ? Locator::By::kLabel
           : key == "role"        ? Locator::By::kRole
           : key == "text"        ? Locator::By::kText
           : key == "placeholder" ? Locator::By::kPlaceholder
           : key == "title"       ? Locator::By::kTitle
           : key == "css"         ? Locator::By::kCss
                                  : Locator::By::kXpath;
  }
  *found = primaries == 1;
  if (const Value* n = o.if_contains("name")) {
    if (l.by != Locator::By::kRole || !*found) {
      return Status::Invalid(where + ": 'name' goes with 'role' (e.g. role: button, name: Gem)");
    }
    l.name = ToText(*n);
  }
  if (const Value* e = o.if_contains("exact")) {
    if (!e->is_bool()) return Status::Invalid(where + ": 'exact' must be true or false");
    l.exact = e->get_bool();
  }
  if (const Value* n = o.if_contains("nth")) {
    if (!n->is_int64() || n->get_int64() < 1) {
      return Status::Invalid(where + ": 'nth' must be a whole number from 1");
    }
    l.nth = static_cast<int>(n->get_int64());
  }
  return l;
}

Result<double> Seconds(const boost::json::object& o, const std::string& where) {
  const Value* t = o.if_contains("timeout_seconds");
  if (!t) return 0.0;
  if (!t->is_number() || t->to_number<double>() <= 0 || t->to_number<double>() > 3600) {
    return Status::Invalid(where + ": 'timeout_seconds' must be a number of seconds, above 0");
  }
  return t->to_number<double>();
}

Result<std::vector<std::pair<std::string, Locator>>> Reads(const Value& v,
                                                           const std::string& where) {
  if (!v.is_object() || v.get_object().empty()) {
    return Status::Invalid(where +
                           ": expected a mapping of names to locators, e.g. "
                           "{case_number: {css: \"#sagsnummer\"}}");
  }
  std::vector<std::pair<std::string, Locator>> out;
  for (const auto& kv : v.get_object()) {
    bool found = false;
    auto l = LocatorFrom(kv.value(), where + "." + std::string(kv.key()), {}, &found);
    if (!l.ok()) return l.status();
    if (!found) return Status::Invalid(where + "." + std::string(kv.key()) + ": which element?");
    out.emplace_back(std::string(kv.key()), std::move(l).value());
  }
  return out;
}

Result<Action> ParseOne(const Value& item, const Settings& settings, const std::string& setting,
                        const std::string& part);

Result<std::vector<Action>> ParseList(const Value& list, const Settings& settings,
                                      const std::string& setting, const std::string& part) {
  if (!list.is_array()) {
    return Status::Invalid(Where(settings, setting, part) + ": expected a list of actions");
  }
  std::vector<Action> out;
  size_t i = 0;
  for (const auto& item : list.get_array()) {
    auto a = ParseOne(item, settings, setting, part + "[" + std::to_string(i++) + "]");
    if (!a.ok()) return a.status();
    out.push_back(std::move(a).value());
  }
  return out;
}

Result<Action> ParseOne(const Value& item, const Settings& settings, const std::string& setting,
                        const std::string& part) {
  Action a;
  a.where = Where(settings, setting, part);
  if (!item.is_object()) {
    return Status::Invalid(a.where +
                           ": expected an action such as `- fill: {label: Navn, value: "
                           "\"{{ record.name }}\"}`");
  }
  const auto& o = item.get_object();
  const KindName* kind = nullptr;
  for (const auto& kv : o) {
    std::string k(kv.key());
    if (k == "do") continue;
    auto it = std::find_if(std::begin(kKinds), std::end(kKinds),
                           [&](const KindName& n) { return k == n.name; });
    if (it == std::end(kKinds)) {
      return Status::Invalid(a.where + ": unknown action '" + k + "'" + DidYouMean(k, KindNames()));
    }
    if (kind) {
      return Status::Invalid(a.where + ": one action per list item ('" + kind->name + "' and '" +
                             k + "'); start a new item with -");
    }
    kind = &*it;
  }
  if (!kind) return Status::Invalid(a.where + ": no action (one of goto, fill, click, ...)");
  a.kind = kind->kind;
  const std::string akey = kind->name;
  const Value& v = o.at(akey);
  const bool nested = a.kind == Action::Kind::kInFrame || a.kind == Action::Kind::kInNewWindow;
  if (o.contains("do") && !nested) {
    return Status::Invalid(a.where + ": 'do' goes with in_frame or in_new_window");
  }
  switch (a.kind) {
    case Action::Kind::kGoto:
      if (!IsScalar(v) || ToText(v).empty()) {
        return Status::Invalid(a.where +
                               ": goto needs a URL (absolute, or a path below the "
                               "target's url)");
      }
      a.text = ToText(v);
      return a;
    case Action::Kind::kRead: {
      auto r = Reads(v, a.where + ".read");
      if (!r.ok()) return r.status();
      a.reads = std::move(r).value();
      return a;
    }
    case Action::Kind::kPress:
      if (IsScalar(v)) {
        a.text = ToText(v);
        return a;
      }
      break;
    default:
      break;
  }
  const std::vector<std::string> options = OptionKeys(a.kind);
  bool found = false;
  auto l = LocatorFrom(v, a.where + "." + akey, options, &found);
  if (!l.ok()) return l.status();
  a.target = std::move(l).value();
  a.has_target = found;
  if (!found && a.kind != Action::Kind::kPress) {
    return Status::Invalid(a.where + ": " + akey +
                           " needs the element: label:, role: (with name:), text:, placeholder:, "
                           "title:, css: or xpath:");
  }
  if (v.is_object()) {
    const auto& vo = v.get_object();
    auto secs = Seconds(vo, a.where);
    if (!secs.ok()) return secs.status();
    a.timeout_seconds = *secs;
    auto text_of = [&](const char* key, bool required) -> Status {
      const Value* t = vo.if_contains(key);
      if (!t) {
        return required ? Status::Invalid(a.where + ": " + akey + " needs '" + key + "'")
                        : Status::OK();
      }
      if (!IsScalar(*t) && !t->is_null()) {
        return Status::Invalid(a.where + ": '" + key + "' must be a text");
      }
      a.text = t->is_null() ? "" : ToText(*t);
      return Status::OK();
    };
    Status st;
    switch (a.kind) {
      case Action::Kind::kFill:
        st = text_of("value", true);
        if (const Value* k = vo.if_contains("keys"); st.ok() && k) {
          if (!k->is_bool()) return Status::Invalid(a.where + ": 'keys' must be true or false");
          a.keys = k->get_bool();
        }
        break;
      case Action::Kind::kSelect:
        st = text_of("option", true);
        break;
      case Action::Kind::kUpload:
        st = text_of("file", true);
        break;
      case Action::Kind::kPress:
        st = text_of("key", true);
        break;
      case Action::Kind::kExpect:
        st = text_of("message", false);
        break;
      case Action::Kind::kDownload: {
        st = text_of("folder", false);
        if (st.ok() && a.text.empty()) a.text = "downloads";
        const Value* as = vo.if_contains("as");
        if (st.ok() && (!as || !as->is_string() || as->get_string().empty())) {
          st = Status::Invalid(a.where +
                               ": download needs 'as:', the reply's name for the saved "
                               "file's path (as: kvittering, then capture "
                               "\"{{ reply.kvittering }}\")");
        } else if (st.ok()) {
          a.as = std::string(as->get_string());
        }
        break;
      }
      case Action::Kind::kClick: {
        if (const Value* d = vo.if_contains("dialog")) {
          a.dialog = IsScalar(*d) ? ToText(*d) : "";
          if (a.dialog != "accept" && a.dialog != "dismiss") {
            return Status::Invalid(a.where + ": 'dialog' is accept or dismiss");
          }
        }
        if (const Value* s = vo.if_contains("submits")) {
          if (!s->is_bool()) return Status::Invalid(a.where + ": 'submits' must be true or false");
          a.submits = s->get_bool();
        }
        break;
      }
      default:
        break;
    }
    if (!st.ok()) return st;
  } else if (a.kind == Action::Kind::kDownload) {
    return Status::Invalid(a.where +
                           ": download needs a mapping with the element to click and "
                           "'as:' (e.g. {role: link, name: Hent kvittering, as: "
                           "kvittering})");
  } else if (a.kind == Action::Kind::kFill || a.kind == Action::Kind::kSelect ||
             a.kind == Action::Kind::kUpload) {
    return Status::Invalid(a.where + ": " + akey + " needs a mapping with the element and its " +
                           (a.kind == Action::Kind::kFill     ? "value"
                            : a.kind == Action::Kind::kSelect ? "option"
                                                              : "file"));
  }
  if (nested) {
    const Value* body = o.if_contains("do");
    if (!body) {
      return Status::Invalid(a.where + ": " + akey + " needs 'do:', the actions inside it");
    }
    auto b = ParseList(*body, settings, setting, part + ".do");
    if (!b.ok()) return b.status();
    a.body = std::move(b).value();
  }
  return a;
}

}  // namespace

std::string Locator::Describe() const {
  std::string kind;
  switch (by) {
    case By::kLabel:
      kind = "label";
      break;
    case By::kRole:
      kind = "role " + value;
      break;
    case By::kText:
      kind = "text";
      break;
    case By::kPlaceholder:
      kind = "placeholder";
      break;
    case By::kTitle:
      kind = "title";
      break;
    case By::kCss:
      kind = "css";
      break;
    case By::kXpath:
      kind = "xpath";
      break;
  }
  std::string shown = by == By::kRole ? name : value;
  std::string d = kind + (shown.empty() ? std::string() : " '" + shown + "'");
  if (nth) d += " (match " + std::to_string(nth) + ")";
  return d;
}

Value Locator::ToJson() const {
  static const char* const kBy[] = {"label", "role", "text", "placeholder",
                                    "title", "css",  "xpath"};
  boost::json::object o;
  o["by"] = kBy[static_cast<int>(by)];
  o["value"] = value;
  if (!name.empty()) o["name"] = name;
  o["exact"] = exact;
  o["nth"] = nth;
  return Value(std::move(o));
}

const char* Action::Name() const {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "?";
}

Result<std::vector<Action>> ParseActions(const Value& list, const Settings& settings,
                                         const std::string& setting) {
  return ParseList(list, settings, setting, "");
}

Result<ExistsCheck> ParseExists(const Value& v, const Settings& settings,
                                const std::string& where) {
  if (!v.is_object()) {
    return Status::Invalid(Where(settings, where, "") +
                           ": expected a mapping with actions, found (and absent, read)");
  }
  const auto& o = v.get_object();
  const std::vector<std::string> known = {"actions", "found", "absent", "read"};
  for (const auto& kv : o) {
    std::string k(kv.key());
    if (!Has(known, k)) {
      return Status::Invalid(Where(settings, where, k) + ": unknown key '" + k + "'" +
                             DidYouMean(k, known));
    }
  }
  ExistsCheck e;
  if (const Value* acts = o.if_contains("actions")) {
    auto a = ParseList(*acts, settings, where, "actions");
    if (!a.ok()) return a.status();
    e.actions = std::move(a).value();
  }
  const Value* found = o.if_contains("found");
  if (!found) {
    return Status::Invalid(Where(settings, where, "") +
                           ": needs 'found:', what shows when the record is there");
  }
  auto f = ParseLocator(*found, Where(settings, where, "found"));
  if (!f.ok()) return f.status();
  e.found = std::move(f).value();
  if (const Value* absent = o.if_contains("absent")) {
    auto a = ParseLocator(*absent, Where(settings, where, "absent"));
    if (!a.ok()) return a.status();
    e.absent = std::move(a).value();
    e.has_absent = true;
  }
  if (const Value* read = o.if_contains("read")) {
    auto r = Reads(*read, Where(settings, where, "read"));
    if (!r.ok()) return r.status();
    e.reads = std::move(r).value();
  }
  return e;
}

Result<Locator> ParseLocator(const Value& v, const std::string& where) {
  bool found = false;
  auto l = LocatorFrom(v, where, {}, &found);
  if (!l.ok()) return l.status();
  if (!found) return Status::Invalid(where + ": which element? (label:, role:, text:, css:, ...)");
  return l;
}

Value RenderForDryRun(const std::vector<Action>& actions) {
  boost::json::array out;
  for (const auto& a : actions) {
    boost::json::object o;
    o["action"] = a.Name();
    if (a.has_target) o["element"] = a.target.Describe();
    if (!a.text.empty()) {
      const char* key = a.kind == Action::Kind::kGoto       ? "url"
                        : a.kind == Action::Kind::kSelect   ? "option"
                        : a.kind == Action::Kind::kUpload   ? "file"
                        : a.kind == Action::Kind::kPress    ? "key"
                        : a.kind == Action::Kind::kExpect   ? "message"
                        : a.kind == Action::Kind::kDownload ? "folder"
                                                            : "value";
      o[key] = a.text;
    }
    if (!a.as.empty()) o["as"] = a.as;
    if (!a.dialog.empty()) o["dialog"] = a.dialog;
    if (a.submits) o["submits"] = true;
    if (a.keys) o["keys"] = true;
    if (!a.reads.empty()) {
      boost::json::object r;
      for (const auto& [name, l] : a.reads) r[name] = l.Describe();
      o["read"] = std::move(r);
    }
    if (!a.body.empty()) o["do"] = RenderForDryRun(a.body);
    out.push_back(std::move(o));
  }
  return Value(std::move(out));
}

}  // namespace keyonce::connectors::browser
