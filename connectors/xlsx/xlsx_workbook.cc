#include "connectors/xlsx/xlsx_workbook.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <pugixml.hpp>

#include "connectors/common/xml/xml_dom.h"
#include "connectors/common/xml/xml_scanner.h"

namespace keyonce::connectors::xlsx {

namespace {

// workbook.xml, its relationships and styles.xml are small; a bigger one is
// not a real workbook.
constexpr uint64_t kMaxPartBytes = 16u << 20;

Result<std::unique_ptr<pugi::xml_document>> LoadPart(sheet::ZipArchive& zip,
                                                     const std::string& entry) {
  auto text = zip.ReadWhole(entry, kMaxPartBytes);
  if (!text.ok()) return text.status();
  auto doc = std::make_unique<pugi::xml_document>();
  pugi::xml_parse_result r = doc->load_buffer(text->data(), text->size(), pugi::parse_default);
  if (!r) {
    return Status::Invalid(zip.name() + ": " + entry + " is damaged (" + r.description() +
                           " at byte " + std::to_string(r.offset) + ")");
  }
  return doc;
}

pugi::xml_node Child(const pugi::xml_node& n, std::string_view local) {
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && xml::LocalPart(c.name()) == local) return c;
  }
  return pugi::xml_node();
}

// An attribute by local name (r:id, whatever the prefix).
const char* Attr(const pugi::xml_node& n, std::string_view local) {
  for (pugi::xml_attribute a = n.first_attribute(); a; a = a.next_attribute()) {
    if (xml::LocalPart(a.name()) == local) return a.value();
  }
  return "";
}

std::string EndsAfterSlash(const std::string& s) {
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

// A relationship target of a part in xl/ as a zip entry name.
std::string ResolveTarget(const std::string& target) {
  if (!target.empty() && target[0] == '/') return target.substr(1);
  std::string t = target;
  std::string base = "xl";
  while (t.rfind("../", 0) == 0) {
    t = t.substr(3);
    base = "";
  }
  return base.empty() ? t : base + "/" + t;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// OOXML writes characters XML cannot hold (and some it can, like CR) as
// _xHHHH_.
void AppendDecoded(std::string& out, std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_' && i + 6 < text.size() && text[i + 1] == 'x' && text[i + 6] == '_') {
      uint32_t cp = 0;
      auto [end, ec] = std::from_chars(text.data() + i + 2, text.data() + i + 6, cp, 16);
      if (ec == std::errc() && end == text.data() + i + 6) {
        AppendUtf8(out, cp);
        i += 6;
        continue;
      }
    }
    out += text[i];
  }
}

void AppendT(std::string& out, const pugi::xml_node& t) {
  for (pugi::xml_node c = t.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata)
      AppendDecoded(out, c.value());
  }
}

}  // namespace

std::string StringItemText(const pugi::xml_node& item) {
  std::string out;
  for (pugi::xml_node c = item.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    std::string_view name = xml::LocalPart(c.name());
    if (name == "t") {
      AppendT(out, c);
    } else if (name == "r") {
      if (pugi::xml_node t = Child(c, "t")) AppendT(out, t);
    }
  }
  return out;
}

Result<Workbook> ReadWorkbook(sheet::ZipArchive& zip) {
  const std::string kWorkbook = "xl/workbook.xml";
  if (!zip.Has(kWorkbook)) {
    return Status::Invalid(zip.name() + " is a zip archive but not an xlsx workbook (it has no " +
                           kWorkbook + "; an .ods file needs the ods connector)");
  }
  auto wb_doc = LoadPart(zip, kWorkbook);
  if (!wb_doc.ok()) return wb_doc.status();
  std::map<std::string, std::string> targets;  // relationship id -> entry
  Workbook wb;
  const std::string kRels = "xl/_rels/workbook.xml.rels";
  if (zip.Has(kRels)) {
    auto rels = LoadPart(zip, kRels);
    if (!rels.ok()) return rels.status();
    for (pugi::xml_node r : (*rels)->document_element().children()) {
      if (xml::LocalPart(r.name()) != "Relationship") continue;
      std::string type = EndsAfterSlash(Attr(r, "Type"));
      std::string entry = ResolveTarget(Attr(r, "Target"));
      targets[Attr(r, "Id")] = entry;
      if (type == "sharedStrings") wb.shared_strings_entry = entry;
      if (type == "styles") wb.styles_entry = entry;
    }
  }
  pugi::xml_node root = (*wb_doc)->document_element();
  if (pugi::xml_node pr = Child(root, "workbookPr")) {
    std::string v = Attr(pr, "date1904");
    if (v == "1" || v == "true") wb.date_system = sheet::DateSystem::k1904;
  }
  pugi::xml_node sheets = Child(root, "sheets");
  for (pugi::xml_node s : sheets.children()) {
    if (xml::LocalPart(s.name()) != "sheet") continue;
    SheetInfo info;
    info.name = Attr(s, "name");
    std::string state = Attr(s, "state");
    info.hidden = state == "hidden" || state == "veryHidden";
    // r:id; the plain `id` attribute does not exist on <sheet>.
    std::string rid;
    for (pugi::xml_attribute a = s.first_attribute(); a; a = a.next_attribute()) {
      if (std::strchr(a.name(), ':') && xml::LocalPart(a.name()) == "id") rid = a.value();
    }
    auto it = targets.find(rid);
    if (it != targets.end()) {
      info.entry = it->second;
    } else {
      // Without relationships, the usual place.
      info.entry = "xl/worksheets/sheet" + std::to_string(wb.sheets.size() + 1) + ".xml";
    }
    wb.sheets.push_back(std::move(info));
  }
  if (wb.sheets.empty()) return Status::Invalid(zip.name() + ": the workbook lists no sheets");
  if (wb.shared_strings_entry.empty() && zip.Has("xl/sharedStrings.xml")) {
    wb.shared_strings_entry = "xl/sharedStrings.xml";
  }
  if (wb.styles_entry.empty() && zip.Has("xl/styles.xml")) wb.styles_entry = "xl/styles.xml";
  return wb;
}

Result<std::vector<sheet::DateKind>> ReadStyleKinds(sheet::ZipArchive& zip,
                                                    const std::string& entry) {
  std::vector<sheet::DateKind> kinds;
  if (entry.empty()) return kinds;
  auto doc = LoadPart(zip, entry);
  if (!doc.ok()) return doc.status();
  pugi::xml_node root = (*doc)->document_element();
  std::map<int, sheet::DateKind> custom;
  for (pugi::xml_node f : Child(root, "numFmts").children()) {
    if (xml::LocalPart(f.name()) != "numFmt") continue;
    custom[std::atoi(Attr(f, "numFmtId"))] = sheet::ClassifyFormatCode(Attr(f, "formatCode"));
  }
  for (pugi::xml_node xf : Child(root, "cellXfs").children()) {
    if (xml::LocalPart(xf.name()) != "xf") continue;
    int id = std::atoi(Attr(xf, "numFmtId"));
    auto it = custom.find(id);
    kinds.push_back(it != custom.end() ? it->second : sheet::ClassifyBuiltinFormat(id));
  }
  return kinds;
}

Result<EntryScanner> ScanEntry(sheet::ZipArchive& zip, const std::string& entry, const char* path,
                               size_t max_record_bytes) {
  auto reader = zip.OpenEntry(entry);
  if (!reader.ok()) return reader.status();
  auto parsed = xml::RecordPath::Parse(path, {});
  if (!parsed.ok()) return parsed.status();
  xml::XmlScanner::Options o;
  o.path = std::move(parsed).value();
  o.name = zip.name() + ": " + entry;
  o.max_record_bytes = max_record_bytes;
  EntryScanner out;
  out.reader = std::move(reader).value();
  sheet::ZipEntryReader* r = out.reader.get();
  out.scanner = std::make_unique<xml::XmlScanner>(
      std::move(o), [r](char* data, size_t n) { return r->Read(data, n); });
  return out;
}

Result<std::vector<std::string>> ReadSharedStrings(sheet::ZipArchive& zip, const std::string& entry,
                                                   uint64_t max_bytes) {
  std::vector<std::string> out;
  if (entry.empty()) return out;
  auto scan = ScanEntry(zip, entry, "/sst/si", 64u << 20);
  if (!scan.ok()) return scan.status();
  uint64_t held = 0;
  while (true) {
    xml::ScannedRecord rec;
    auto more = scan->scanner->Next(&rec);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (!rec.error.empty()) {
      return Status::Invalid(zip.name() + ": " + entry + ": string " + std::to_string(out.size()) +
                             " is malformed: " + rec.error);
    }
    pugi::xml_document doc;
    pugi::xml_parse_result p = doc.load_buffer(rec.text.data(), rec.text.size(),
                                               pugi::parse_default | pugi::parse_ws_pcdata);
    if (!p) {
      return Status::Invalid(zip.name() + ": " + entry + ": string " + std::to_string(out.size()) +
                             " is malformed (" + p.description() + ")");
    }
    out.push_back(StringItemText(doc.document_element()));
    held += out.back().size() + 32;
    if (held > max_bytes) {
      return Status::Invalid(zip.name() + ": the shared string table holds more than " +
                             ByteSize(static_cast<size_t>(max_bytes)) +
                             " (max_shared_strings_bytes)");
    }
  }
  return out;
}

std::string SheetRefName(const std::string& name) {
  bool plain = !name.empty();
  for (unsigned char ch : name) {
    plain = plain && (std::isalnum(ch) || ch == '_' || ch >= 0x80);
  }
  if (plain) return name;
  std::string out = "'";
  for (char ch : name) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

}  // namespace keyonce::connectors::xlsx
