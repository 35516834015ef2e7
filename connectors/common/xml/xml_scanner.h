// Streaming XML: cuts the record elements out of a document of any size.
//
// pugixml parses whole documents only, so a large file is read in chunks by
// a small scanner that understands just enough XML to follow the element
// structure (tags, comments, CDATA, processing instructions, the DOCTYPE)
// and to track namespace declarations. Each element that matches the record
// path is handed out as its markup plus the namespace declarations in scope
// from its ancestors; the caller parses that fragment with pugixml. Memory
// holds one chunk and the current record, however big the file.
//
// Safety: DTDs are never read. A DOCTYPE that declares entities fails the
// run (nothing is ever expanded, so entity bombs cannot grow), and inside a
// record an entity reference other than the five predefined ones and
// character references makes that record malformed.
//
// Encodings: UTF-8 (BOM or not), UTF-16 (by its BOM or the shape of "<?"),
// ISO-8859-1 and Windows-1252 as declared in the XML declaration (or forced
// by the caller). Text handed out is UTF-8.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connectors/common/xml/xml_dom.h"
#include "keyonce/status.h"

namespace keyonce::connectors::xml {

// The record path: `/Export/Persons/Person`, `//Person`, `/Export//Person`,
// `/Export/*/Person`, or several of these joined by `|` (an element that
// matches any of them), with prefixes from the recipe's namespaces
// (`/p:Export/p:Person`). A prefixed step matches elements in that
// namespace; a step without prefix matches elements in no namespace or in a
// namespace the recipe does not declare (so a document's default namespace
// needs no declaration). `*` matches any element (`p:*` any in namespace p).
class RecordPath {
 public:
  static Result<RecordPath> Parse(std::string_view text, const Namespaces& namespaces);

  struct Name {
    std::string uri;  // "" for no namespace
    std::string local;
  };
  // True when the open elements `stack` (outermost first) match.
  bool Matches(const std::vector<Name>& stack) const;
  // False when no element inside the innermost of `stack` can match, so its
  // content need not be named or matched (e.g. a sheet's rows, for the path
  // /worksheet/mergeCells/mergeCell). True whenever the path has `//`.
  bool MayMatchBelow(const std::vector<Name>& stack) const;

 private:
  struct Step {
    bool descendant = false;         // preceded by `//`
    bool any_name = false;           // `*`
    std::optional<std::string> uri;  // prefixed: its namespace
    std::string local;
  };
  bool Match(const std::vector<Name>& stack, size_t si, size_t pi) const;
  bool StepMatches(const Step& step, const Name& name) const;
  std::vector<Step> steps_;
  std::vector<std::string> declared_uris_;
  bool has_descendant_step_ = false;
  std::vector<RecordPath> alternatives_;  // after `|`
};

enum class XmlEncoding { kAuto, kUtf8, kUtf16, kLatin1, kWindows1252 };
// "auto", "utf-8", "utf-16", "iso-8859-1" (latin1), "windows-1252" (cp1252).
std::optional<XmlEncoding> ParseXmlEncoding(std::string_view name);

struct ScannedRecord {
  std::string text;  // the record element's markup, UTF-8
  // Namespace declarations in scope from the ancestors: prefix ("" for the
  // default namespace) -> URI.
  std::vector<std::pair<std::string, std::string>> namespaces;
  uint64_t line = 0, column = 0;  // where the record's start tag begins
  // With Options::context_path: the start tag (markup, e.g. `<table:table
  // table:name="Ark1">`) of the last element met that matches it, and how
  // many such elements were met so far (1 for the first): which table a row
  // is in, without holding the table.
  std::string context;
  uint64_t context_index = 0;
  // Non-empty when the record is malformed: why, with line:column, without
  // any content. `text` then holds what was read of it (may be empty).
  std::string error;
};

class XmlScanner {
 public:
  // Reads up to n bytes into data; 0 at the end of the input.
  using ReadFn = std::function<Result<size_t>(char* data, size_t n)>;

  struct Options {
    RecordPath path;
    std::string name;  // for messages: "export.xml"
    XmlEncoding encoding = XmlEncoding::kAuto;
    // Elements (outside records) whose start tag records report as their
    // context (ScannedRecord::context).
    std::optional<RecordPath> context_path;
    size_t max_record_bytes = 16u << 20;
    size_t chunk_bytes = 256u << 10;
  };

  XmlScanner(Options options, ReadFn read);
  ~XmlScanner();

  // The next record: true with *out filled (a malformed record has
  // out->error set and the scan goes on after it), false at the end of the
  // document, or an error when the document's structure outside the records
  // is broken ("export.xml:12:5: closing tag </Persons> does not match
  // <Export> opened at line 2") or it cannot be read.
  Result<bool> Next(ScannedRecord* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyonce::connectors::xml
