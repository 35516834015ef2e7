// The parts of an xlsx package the source needs besides the sheet itself:
// the sheet list (xl/workbook.xml and its relationships), the date system,
// the number formats of the cell styles (xl/styles.xml) and the shared
// string table (xl/sharedStrings.xml). All are read once at Open; the
// string table is the only one that grows with the data, and it is bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/common/sheet/cells.h"
#include "connectors/common/sheet/zip_archive.h"
#include "connectors/common/xml/xml_scanner.h"
#include "keyonce/status.h"

namespace pugi {
class xml_node;
}

namespace keyonce::connectors::xlsx {

struct SheetInfo {
  std::string name;
  std::string entry;    // "xl/worksheets/sheet1.xml"
  bool hidden = false;  // state="hidden" or "veryHidden"
};

struct Workbook {
  std::vector<SheetInfo> sheets;  // in the workbook's order (the tabs')
  sheet::DateSystem date_system = sheet::DateSystem::k1900;
  std::string shared_strings_entry;  // "" when the workbook has none
  std::string styles_entry;          // "" when the workbook has none
};

// workbook.xml, its relationships. kInvalid (naming the file) when the zip
// is not an xlsx workbook or the parts are malformed.
Result<Workbook> ReadWorkbook(sheet::ZipArchive& zip);

// The date kind of each cell style (cellXfs, by the index cells give in
// s="..."), from styles.xml's number formats.
Result<std::vector<sheet::DateKind>> ReadStyleKinds(sheet::ZipArchive& zip,
                                                    const std::string& entry);

// The shared strings, rich text runs joined (phonetic runs left out),
// streamed from the entry; kInvalid once they would hold more than
// max_bytes (counting 32 bytes of bookkeeping per string).
Result<std::vector<std::string>> ReadSharedStrings(sheet::ZipArchive& zip, const std::string& entry,
                                                   uint64_t max_bytes);

// The elements at `path` (e.g. "/worksheet/sheetData/row") of a zip entry,
// scanned as the entry is inflated; the reader lives as long as the scanner.
struct EntryScanner {
  std::unique_ptr<sheet::ZipEntryReader> reader;
  std::unique_ptr<xml::XmlScanner> scanner;
};
Result<EntryScanner> ScanEntry(sheet::ZipArchive& zip, const std::string& entry, const char* path,
                               size_t max_record_bytes);

// Text of an <si> or <is> element: its <t>, or its runs' <t> joined, with
// the _xHHHH_ escapes of OOXML decoded; phonetic runs (<rPh>) left out.
std::string StringItemText(const pugi::xml_node& item);

// 'Ark 1' as Excel writes a sheet name in a reference (Ark1!B17,
// 'Ark 1'!B17), for positions in messages of the source and the target.
std::string SheetRefName(const std::string& name);

}  // namespace keyonce::connectors::xlsx
