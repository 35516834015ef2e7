// The scripts the browser connector runs in the page (WebDriver "execute
// script"). Values a recipe types are always passed as script arguments,
// never written into a script's text, so nothing from a record is ever
// executed.
#pragma once

namespace keyonce::connectors::browser {

// Finds elements the way a person sees them. Arguments: a locator
// (Locator::ToJson) and a mode: "act" (visible and enabled), "see"
// (visible) or "any" (present, e.g. a hidden file input). Returns
// {count, element, visible, enabled, rect: [x, y, w, h]}: count is the number
// of matches in that mode; element the one chosen (nth, or the only one).
extern const char kLocateScript[];

// The value a person reads from an element: a form field's value (a select's
// chosen option text, a checkbox's "true"/"false"), else its visible text.
extern const char kReadScript[];

// Sets a field that cannot be typed into reliably (date and time inputs,
// content-editable elements) and fires input and change events. Arguments:
// the element, the value.
extern const char kSetValueScript[];

// Chooses the option whose visible text (or value) is the argument in a
// <select>, firing input and change events. Returns "" when done, else the
// options there are (comma-separated, at most 20) for the message.
extern const char kSelectScript[];

// Whether a checkbox or radio is checked (true/false), or null.
extern const char kCheckedScript[];

}  // namespace keyonce::connectors::browser
