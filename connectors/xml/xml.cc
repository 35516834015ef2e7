// The `xml` connector: a streaming source of records from an XML file.
// Settings are declared here once, as data; the scanner that cuts records
// out of the file is common/xml/xml_scanner.cc, the conversion to values xml_dom.cc.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <pugixml.hpp>

#include "connectors/common/after_read.h"
#include "connectors/common/fields.h"
#include "connectors/common/xml/xml_dom.h"
#include "connectors/common/xml/xml_scanner.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::xml {
namespace {

namespace fs = std::filesystem;

constexpr char kWrapper[] = "keyonce-record";

// What make_source checked, ready for Open.
struct SourceConfig {
  Namespaces namespaces;
  RecordPath path;
  XPathMap fields;
  ConvertOptions convert;
  XmlEncoding encoding = XmlEncoding::kAuto;
  size_t max_record_bytes = 0;  // 0: the recipe's limits.record_bytes
};

Result<SourceConfig> ReadConfig(const Settings& s) {
  SourceConfig c;
  auto ns = ParseNamespaces(s.Raw("namespaces"), "namespaces");
  if (!ns.ok()) return ns.status().Wrap(s.where);
  c.namespaces = std::move(ns).value();
  auto path = RecordPath::Parse(s.String("records").value_or(""), c.namespaces);
  if (!path.ok()) return path.status().Wrap(s.where + ": records");
  c.path = std::move(path).value();
  auto fields = CompileXPathMap(s.Raw("fields"), "fields");
  if (!fields.ok()) return fields.status().Wrap(s.where);
  c.fields = std::move(fields).value();
  for (const auto& name : s.StringList("lists")) c.convert.lists.insert(name);
  std::string enc = s.String("encoding").value_or("auto");
  auto e = ParseXmlEncoding(enc);
  if (!e) {
    return Status::Invalid(s.where + ": encoding '" + enc +
                           "' is not one of auto, utf-8, utf-16, iso-8859-1, windows-1252");
  }
  c.encoding = *e;
  if (auto max = s.Int("max_record_bytes")) {
    if (*max < 1024) return Status::Invalid(s.where + ": max_record_bytes must be at least 1024");
    c.max_record_bytes = static_cast<size_t>(*max);
  }
  return c;
}

std::string AttributeText(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '"') {
      out += "&quot;";
    } else if (c == '<') {
      out += "&lt;";
    } else {
      out += c;
    }
  }
  return out;
}

class XmlSource : public Source {
 public:
  explicit XmlSource(Settings settings, SourceConfig config)
      : settings_(std::move(settings)), config_(std::move(config)) {}
  ~XmlSource() override { CloseFd(); }

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    CloseFd();
    fd_ = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      int err = errno;
      if (err == ENOENT) return Status::NotFound("file not found: " + path->string());
      return Status::Io("opening " + path->string() + ": " + std::strerror(err));
    }
    path_ = *path;
    name_ = path_.filename().string();
    XmlScanner::Options o;
    o.path = config_.path;
    o.name = name_;
    o.encoding = config_.encoding;
    // Its own max_record_bytes, else the recipe's limits.record_bytes.
    o.max_record_bytes =
        config_.max_record_bytes ? config_.max_record_bytes : ctx.limits.record_bytes;
    scanner_ = std::make_unique<XmlScanner>(
        std::move(o), [this](char* data, size_t n) { return ReadSome(data, n); });
    return Status::OK();
  }

  Result<bool> Next(SourceItem* item) override {
    if (!scanner_) return Status::Internal("xml source read before Open");
    ScannedRecord rec;
    auto more = scanner_->Next(&rec);
    if (!more.ok() || !*more) return more;
    *item = SourceItem();
    item->position = name_ + ":" + std::to_string(rec.line);
    if (!rec.error.empty()) return Reject(item, std::move(rec.error), std::move(rec.text));
    return Convert(rec, item);
  }

  Status Close() override {
    scanner_.reset();
    CloseFd();
    return Status::OK();
  }

 private:
  bool Reject(SourceItem* item, std::string reason, std::string raw) {
    item->rejected = true;
    item->reason = std::move(reason);
    item->raw = std::move(raw);
    return true;
  }

  // Parses the record's markup (inside a wrapper element carrying the
  // ancestors' namespace declarations) and converts it.
  Result<bool> Convert(ScannedRecord& rec, SourceItem* item) {
    std::string frag = "<";
    frag += kWrapper;
    for (const auto& [prefix, uri] : rec.namespaces) {
      frag += prefix.empty() ? " xmlns=\"" : " xmlns:" + prefix + "=\"";
      frag += AttributeText(uri);
      frag += '"';
    }
    frag += '>';
    const size_t prefix_len = frag.size();
    frag += rec.text;
    frag += "</";
    frag += kWrapper;
    frag += '>';
    pugi::xml_document doc;
    // parse_default: no DOCTYPE, only the predefined entities (the scanner
    // rejected every other reference).
    pugi::xml_parse_result parsed =
        doc.load_buffer(frag.data(), frag.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!parsed) {
      size_t off = parsed.offset > static_cast<ptrdiff_t>(prefix_len)
                       ? static_cast<size_t>(parsed.offset) - prefix_len
                       : 0;
      auto [line, col] = LineColumn(rec.text, off, rec.line, rec.column);
      return Reject(item,
                    name_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " +
                        parsed.description(),
                    std::move(rec.text));
    }
    pugi::xml_node element = doc.document_element().first_child();
    while (element && element.type() != pugi::node_element) element = element.next_sibling();
    if (!element) return Status::Internal("xml source: a record without its element");
    Result<Value> value = Value(nullptr);
    if (config_.fields.empty()) {
      value = ElementToValue(element, config_.convert, /*as_object=*/true);
    } else {
      Status st = NormalizeNames(doc.document_element(), config_.namespaces);
      if (!st.ok()) {
        value = st;
      } else {
        value = EvaluateXPathMap(config_.fields, element, config_.convert);
      }
    }
    if (!value.ok()) {
      return Reject(item,
                    name_ + ":" + std::to_string(rec.line) + ":" + std::to_string(rec.column) +
                        ": " + value.status().message(),
                    std::move(rec.text));
    }
    item->record = std::move(value->as_object());
    return true;
  }

  Result<size_t> ReadSome(char* data, size_t n) {
    while (true) {
      ssize_t r = ::read(fd_, data, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno == EINTR) continue;
      return Status::Io("reading " + path_.string() + ": " + std::strerror(errno));
    }
  }

  void CloseFd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  Settings settings_;
  SourceConfig config_;
  fs::path path_;
  std::string name_;
  int fd_ = -1;
  std::unique_ptr<XmlScanner> scanner_;
};

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  auto config = ReadConfig(settings);
  if (!config.ok()) return config.status();
  return std::unique_ptr<Source>(new XmlSource(settings, std::move(config).value()));
}

ConnectorDef XmlConnector() {
  ConnectorDef def;
  def.name = "xml";
  def.summary =
      "XML files: the elements at a path become records, streamed from files of any size.";

  ComponentSpec source;
  source.summary =
      "Reads the elements at the `records` path of an XML file as records, streaming (memory "
      "holds one record, however big the file). Each record element becomes an object: a child "
      "element without attributes or children is a text field, an attribute is a field named "
      "@name, a repeated child becomes a list, a nested element an object (its own text as "
      "#text); names are local names, without namespace prefixes. With `fields`, the record "
      "holds exactly the values of those XPath expressions instead. A malformed record (e.g. a "
      "closing tag that does not match) is quarantined with its line and column and the file is "
      "read on; a file whose structure outside the records is broken fails the run with "
      "file:line:column. DTDs are never read: a DOCTYPE that declares entities fails the run "
      "and an undefined entity reference makes its record malformed, so nothing is ever "
      "expanded or fetched. Encodings: UTF-8 (with or without BOM), UTF-16 (with BOM), and "
      "ISO-8859-1 or Windows-1252 as the XML declaration says.";
  source.fields = {
      FilePathField("XML file to read.", "in/persons-{{ params.month }}.xml"),
      FieldSpec::String("records")
          .Required()
          .Describe(
              "Path of the record elements: steps separated by / from the root (/Export/Persons/"
              "Person), // for any depth (//Person, /Export//Person), * for any element "
              "(/Export/*/Person), prefixes from `namespaces` (/e:Export/e:Person). A step "
              "without prefix matches elements in no namespace or in a namespace not declared in "
              "`namespaces` (a default namespace needs no declaration). No predicates.")
          .Example("/Export/Persons/Person"),
      FieldSpec::Any("namespaces")
          .Describe("Prefix -> namespace URI, for `records` and `fields`: a prefixed name matches "
                    "elements in that namespace whatever prefix the file uses.")
          .Example("{p: \"urn:example:persons:1\"}"),
      FieldSpec::Any("fields")
          .Describe(
              "Field name -> XPath 1.0 expression evaluated with the record element as the "
              "context node (e.g. Name/First, @id, p:Address/p:City, count(Child)). An element "
              "gives its text (or an object, converted as above), an attribute its value; "
              "several nodes give a list, none null. Names in namespaces declared in "
              "`namespaces` are written with the recipe's prefix, all others without prefix. "
              "Absent: the whole record element is converted.")
          .Example("{cpr: \"CPR\", id: \"@id\", city: \"Address/City\", phones: \"Phone\"}"),
      FieldSpec::StringList("lists")
          .Describe("Element names that always become lists, even when a record holds only one "
                    "(otherwise a single child is a value and repeated children a list).")
          .Example("[Phone, Child]"),
      FieldSpec::Enum("encoding", {"auto", "utf-8", "utf-16", "iso-8859-1", "windows-1252"})
          .Default("auto")
          .Describe(
              "auto: a byte order mark, else the XML declaration's encoding, else UTF-8. Set it "
              "only for files that declare the wrong encoding.")
          .Example("auto"),
      FieldSpec::Int("max_record_bytes")
          .Describe("Largest record element accepted (bytes of UTF-8); a bigger one is quarantined "
                    "without being held in memory. Default: the recipe's limits.record_bytes "
                    "(16 MiB).")
          .Example("16777216"),
  };
  source.example_yaml =
      "source:\n"
      "  type: xml\n"
      "  path: in/export.xml\n"
      "  records: /p:Export/p:Persons/p:Person\n"
      "  namespaces: {p: \"urn:example:persons:1\"}\n"
      "  lists: [Phone]\n";
  def.make_source = MakeSource;
  AddAfterRead(source, def.make_source);
  def.source = std::move(source);
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::xml

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::xml::XmlConnector());
