// The scripts the browser connector runs in the page (WebDriver "execute
// script"). Values a recipe types are always passed as script arguments,
// never written into a script's text, so nothing from a record is ever
// executed.
#pragma once

#include <string>

namespace keyonce::connectors::browser {

// Finds elements the way a person sees them. Arguments: a locator
// (Locator::ToJson) and a mode: "act" (visible and enabled), "see"
// (visible) or "any" (present, e.g. a hidden file input). Returns
// {count, element, visible, enabled, rect: [x, y, w, h]}: count is the number
// of matches in that mode; element the one chosen (nth, or the only one).
extern const std::string kLocateScript;

// The same, waiting in the page (WebDriver "execute async script"):
// arguments a locator, a mode and a budget in ms. Answers as soon as the
// chosen element is in the same place two looks in a row (16 ms apart), then
// with `stable: true`; else when the budget is spent, with the last look. A
// selector the page cannot take: {error}. The page going away meanwhile ends
// the script (WebDriverError::kScriptTimeout at once).
extern const std::string kWaitScript;

// The value a person reads from an element: a form field's value (a select's
// chosen option text, a checkbox's "true"/"false"), else its visible text.
extern const char kReadScript[];

// Fills a field in one step, as a paste would: sets the value (through the
// element's own setter, which frameworks watch), fires input and change, and
// leaves the field. Arguments: the element, the value. Returns "" when done,
// "not a field", "longer:N" (the field's maxlength is N) or "refused:TYPE"
// (the browser emptied the value: not in the form a TYPE field takes).
extern const char kSetValueScript[];

// Chooses the option whose visible text (or value) is the argument in a
// <select>, firing input and change events. Returns "" when done, else the
// options there are (comma-separated, at most 20) for the message.
extern const char kSelectScript[];

// Whether a checkbox or radio is checked (true/false), or null.
extern const char kCheckedScript[];

}  // namespace keyonce::connectors::browser
