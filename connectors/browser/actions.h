// The browser connector's recipe language: lists of actions a person would
// do in a web page (go to a page, fill a field found by its label, choose an
// option, click a button, expect a text, read a value), parsed from the
// rendered YAML structure of `login`, `write` and `exists`.
//
// An action is a mapping with one action key; its value is a locator (how a
// person finds the element: by label, role and name, visible text,
// placeholder or title, with css and xpath as a fallback) plus the action's
// own options:
//
//   - goto: /cases/new
//   - fill: {label: CPR-nummer, value: "{{ record.cpr }}"}
//   - click: {role: button, name: Opret sag, dialog: accept, submits: true}
//   - in_frame: {title: Bemærkning}
//     do:
//       - fill: {css: body, value: "{{ record.note }}"}
//   - download: {role: link, name: Hent kvittering, as: kvittering, folder: out/kvitteringer}
//
// Parse() is pure: it checks the shape (unknown actions and keys get a "did
// you mean" hint and the recipe line) and is used both by `keyonce
// validate` (on the unrendered structure) and for every record (on the
// rendered one).
#pragma once

#include <string>
#include <vector>

#include "keyonce/settings.h"
#include "keyonce/status.h"
#include "keyonce/value.h"

namespace keyonce::connectors::browser {

struct Locator {
  enum class By { kLabel, kRole, kText, kPlaceholder, kTitle, kCss, kXpath };
  By by = By::kText;
  std::string value;  // the label, role, text, placeholder, title, selector or expression
  std::string name;   // with kRole: the accessible name ("" = any)
  bool exact = true;  // false: the text need only contain `value` (case and spaces still ignored)
  int nth = 0;        // 0: exactly one element must match; n: the n-th visible match
  // "label 'CPR-nummer'", "role button 'Opret sag'", "css '#x'"
  std::string Describe() const;
  // The locator as the page script (locate.js) takes it.
  Value ToJson() const;
};

struct Action {
  enum class Kind {
    kGoto,         // text: the URL (relative to the target's url)
    kFill,         // target, text: the value typed
    kSelect,       // target, text: the option's visible text
    kCheck,        // target
    kUncheck,      // target
    kUpload,       // target, text: the file's path
    kClick,        // target; dialog; submits
    kPress,        // text: the key; target (optional): focused first
    kWait,         // target: until visible
    kWaitGone,     // target: until not visible
    kExpect,       // target: visible, else a permanent error (text: the message)
    kRead,         // reads: values into the reply
    kInFrame,      // target: the iframe; body: actions inside it
    kInNewWindow,  // target: what opens the window when clicked; body: actions in it
    kDownload,     // target: what starts the download when clicked; text: the folder; as
  };
  Kind kind = Kind::kGoto;
  Locator target;
  bool has_target = false;
  std::string text;
  std::string dialog;          // click: "accept" or "dismiss" a dialog the click opens
  bool submits = false;        // click: from here the record may have been created
  bool keys = false;           // fill: typed key by key instead of set in one step
  double timeout_seconds = 0;  // 0: the target's timeout_seconds
  std::string as;              // download: the reply key that gets the saved file's path
  std::vector<std::pair<std::string, Locator>> reads;
  std::vector<Action> body;
  std::string where;  // "write[3] (recipe.yaml:27)", for messages

  const char* Name() const;
};

// The `exists` block: actions (e.g. a search), then whether `found` shows
// (the record is there; `read` takes its values) or `absent` shows.
struct ExistsCheck {
  std::vector<Action> actions;
  Locator found;
  bool has_absent = false;
  Locator absent;
  std::vector<std::pair<std::string, Locator>> reads;
};

// Parses a list of actions. `setting` is the recipe key ("write"), used with
// `settings` for the recipe lines in messages. kInvalid naming the action and
// its line when the shape is wrong.
Result<std::vector<Action>> ParseActions(const Value& list, const Settings& settings,
                                         const std::string& setting);
// `where` is the recipe key: "exists" (a target), "find" (a lookup).
Result<ExistsCheck> ParseExists(const Value& v, const Settings& settings,
                                const std::string& where = "exists");
// A lone locator setting (logged_out, errors).
Result<Locator> ParseLocator(const Value& v, const std::string& where);

// The rendered actions as the dry run shows them (values included: a dry run
// shows what would be written; secrets are masked by the engine's redactor).
Value RenderForDryRun(const std::vector<Action>& actions);

}  // namespace keyonce::connectors::browser
