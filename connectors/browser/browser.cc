// The `browser` connector: keys records into web applications that have no
// API, through Debian's chromium driven over W3C WebDriver (chromedriver).
// Settings are declared here; the recipe language is in actions.h and
// docs/browser.md, the exactly-once protocol in browser_target.h.
#include "connectors/browser/browser_target.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::browser {
namespace {

constexpr const char* kLocatorHelp =
    "An element is found the way a person sees it: {label: CPR-nummer}, {role: button, name: "
    "Opret sag}, {text: Sagen er oprettet} (a plain text means the same), {placeholder: ...}, "
    "{title: ...}; {css: ...} and {xpath: ...} as a fallback. Text is compared without regard to "
    "case and spacing; exact: false matches a part; nth: picks one of several.";

ConnectorDef Def() {
  ConnectorDef def;
  def.name = "browser";
  def.summary =
      "Keys each record into a web application through a browser (Debian's chromium), filling its "
      "forms the way a person would, exactly once.";

  ComponentSpec target;
  target.summary =
      "Runs the `write` actions for each record in chromium (headless): go to a page, fill fields "
      "found by their label, choose options, tick boxes, upload files, click, expect a text, read "
      "values (e.g. the case number) into the reply for `capture`. Every action waits until its "
      "element is there, visible, enabled and still. Everything before the click marked `submits: "
      "true` is done again when needed (an expired session, a crashed browser); after it, "
      "`exists` (search the system) decides whether a submit whose answer was lost arrived, and "
      "without `exists` such a record is left in doubt for a person. See docs/browser.md.";
  target.fields = {
      FieldSpec::Tmpl("url", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Required()
          .Describe("The web application's address; `goto` paths are relative to it.")
          .Example("\"{{ params.portal_url }}\""),
      FieldSpec::Structure("login")
          .Roots(kRootsStatic)
          .Describe(
              "Actions that log in, with the user name and password from `secrets`. Run when a "
              "browser starts and again whenever `logged_out` shows (an expired session); a login "
              "that fails stops the run at once instead of being tried again.")
          .Example(
              "[{goto: /login}, {fill: {label: Brugernavn, value: \"{{ secrets.portal_user "
              "}}\"}}, {fill: {label: Adgangskode, value: \"{{ secrets.portal_password }}\"}}, "
              "{click: {role: button, name: Log ind}}]"),
      FieldSpec::Any("logged_out")
          .Describe(std::string("What only the login page shows, e.g. its heading: when it is "
                                "visible, the session expired. Required with login. ") +
                    kLocatorHelp)
          .Example("{role: heading, name: Log ind}"),
      FieldSpec::Structure("write")
          .Required()
          .Describe(
              "The actions that key one record (see docs/browser.md): goto, fill (keys: true to "
              "type key by key), select, check, "
              "uncheck, upload, click (dialog: accept|dismiss, submits: true), press, wait, "
              "wait_gone, expect, read, download (as:, folder:), in_frame/in_new_window with do:. "
              "Exactly one click has "
              "`submits: true`: the one that sends the record.")
          .Example("[{goto: /cases/new}, {fill: {label: CPR-nummer, value: \"{{ record.cpr }}\"}}, "
                   "{click: {role: button, name: Opret sag, dialog: accept, submits: true}}, "
                   "{expect: {text: Sagen er oprettet}}, {read: {case_number: {label: "
                   "Sagsnummer}}}]"),
      FieldSpec::Structure("exists")
          .Describe(
              "How to see whether a record is already in the system: `actions` (e.g. a search), "
              "then `found` shows when it is there (and `read` takes its values, as `write`'s read "
              "does) or `absent` when it is not. Asked after a submit whose answer was lost, and "
              "for records in doubt after a crash.")
          .Example("{actions: [{goto: \"/search?cpr={{ record.cpr | urlencode }}\"}], found: "
                   "{css: \"table.resultater td\"}, absent: {text: Ingen sager fundet}, read: "
                   "{case_number: {css: \"table.resultater td\", nth: 1}}}"),
      FieldSpec::Any("errors")
          .Describe(std::string("Where the site shows its own messages (validation errors): when "
                                "an action fails and it shows, the record is quarantined with the "
                                "site's message. ") +
                    kLocatorHelp)
          .Example("{css: \"[role=alert]\"}"),
      FieldSpec::Int("sessions")
          .Default("1")
          .Describe("Browsers side by side (1-8), each logged in on its own; each record is keyed "
                    "in one of them.")
          .Example("3"),
      FieldSpec::Number("timeout_seconds")
          .Default("10")
          .Describe("How long an action waits for its element (an action may set its own "
                    "timeout_seconds). The message names the action, its element and line.")
          .Example("15"),
      FieldSpec::Number("page_timeout_seconds")
          .Default("30")
          .Describe("How long a page may take to load.")
          .Example("60"),
      FieldSpec::Bool("headed")
          .Default("false")
          .Describe("Show the browser window (to watch a recipe while writing it; needs a "
                    "display). Default: headless.")
          .Example("true"),
      FieldSpec::String("language")
          .Default("da-DK")
          .Describe("The browser's language (Accept-Language, navigator.language).")
          .Example("da-DK"),
      FieldSpec::String("chromium")
          .Describe("The chromium program. Default: /usr/bin/chromium (Debian's chromium).")
          .Example("/usr/bin/chromium"),
      FieldSpec::String("chromedriver")
          .Describe("The chromedriver program. Default: /usr/bin/chromedriver (Debian's "
                    "chromium-driver).")
          .Example("/usr/bin/chromedriver"),
  };
  target.example_yaml =
      "- name: sagsportal\n"
      "  type: browser\n"
      "  url: \"{{ params.portal_url }}\"\n"
      "  login:\n"
      "    - goto: /login\n"
      "    - fill: {label: Brugernavn, value: \"{{ secrets.portal_user }}\"}\n"
      "    - fill: {label: Adgangskode, value: \"{{ secrets.portal_password }}\"}\n"
      "    - click: {role: button, name: Log ind}\n"
      "  logged_out: {role: heading, name: Log ind}\n"
      "  errors: {css: \"[role=alert]\"}\n"
      "  write:\n"
      "    - goto: /cases/new\n"
      "    - fill: {label: CPR-nummer, value: \"{{ record.cpr }}\"}\n"
      "    - fill: {label: Navn, value: \"{{ record.name }}\"}\n"
      "    - select: {label: Ydelse, option: Boligstøtte}\n"
      "    - check: {label: Samtykke givet}\n"
      "    - click: {role: button, name: Opret sag, dialog: accept, submits: true}\n"
      "    - expect: {text: Sagen er oprettet}\n"
      "    - read: {case_number: {label: Sagsnummer}}\n"
      "  exists:\n"
      "    actions: [{goto: \"/search?cpr={{ record.cpr | urlencode }}\"}]\n"
      "    found: {css: \"table td\"}\n"
      "    absent: {text: Ingen sager fundet}\n"
      "    read: {case_number: {css: \"table td\", nth: 1}}\n"
      "  capture: {case_number: \"{{ reply.case_number }}\"}\n";
  // The lookup: the target's browser, login and timeouts, and `find`.
  ComponentSpec lookup;
  lookup.summary =
      "Looks a key up in a web application: the `find` actions (e.g. its search page, with the "
      "key as {{ key }}), then `found` shows when there is a match (and `read` takes the row's "
      "values) or `absent` when there is none. One browser, logged in like the target's; the "
      "engine caches answers per run. See docs/browser.md.";
  for (const FieldSpec& f : target.fields) {
    const std::string& n = f.name;
    if (n == "url" || n == "login" || n == "logged_out" || n == "errors" ||
        n == "timeout_seconds" || n == "page_timeout_seconds" || n == "headed" || n == "language" ||
        n == "chromium" || n == "chromedriver") {
      lookup.fields.push_back(f);
    }
  }
  lookup.fields.push_back(
      FieldSpec::Structure("find")
          .Roots(kRootsStatic | kRootKey)
          .Required()
          .Describe("How to find one key: `actions` (e.g. open the search page for {{ key }}), "
                    "then `found` (what shows when there is a match), `absent` (what shows when "
                    "there is none) and `read` (the row's values, as `write`'s read).")
          .Example("{actions: [{goto: \"/search?cpr={{ key | urlencode }}\"}], found: {css: "
                   "\"#resultater td\"}, absent: {text: Ingen sager fundet}, read: {sagsnummer: "
                   "{css: \"#resultater td\", nth: 1}}}"));
  lookup.example_yaml =
      "tables:\n"
      "  sager:\n"
      "    type: browser\n"
      "    url: \"{{ params.portal_url }}\"\n"
      "    login:\n"
      "      - goto: /login\n"
      "      - fill: {label: Brugernavn, value: \"{{ secrets.portal_user }}\"}\n"
      "      - fill: {label: Adgangskode, value: \"{{ secrets.portal_password }}\"}\n"
      "      - click: {role: button, name: Log ind}\n"
      "    logged_out: {role: heading, name: Log ind}\n"
      "    find:\n"
      "      actions: [{goto: \"/search?cpr={{ key | urlencode }}\"}]\n"
      "      found: {css: \"#resultater td\"}\n"
      "      absent: {text: Ingen sager fundet}\n"
      "      read: {sagsnummer: {css: \"#resultater td\", nth: 1}}\n";

  def.target = std::move(target);
  def.make_target = MakeBrowserTarget;
  def.lookup = std::move(lookup);
  def.make_lookup = MakeBrowserLookup;
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::browser

KEYONCE_REGISTER_CONNECTOR(keyonce::connectors::browser::Def());
