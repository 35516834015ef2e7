#!/usr/bin/python3
"""Makes the xlsx source's test workbooks with openpyxl (Debian python3-openpyxl).

Usage: make_fixtures.py OUT_DIR [BIG_ROWS]   (run by ctest as the xlsx_fixtures
fixture; BIG_ROWS, the rows of big.xlsx, is 100,000 unless a sanitizer build
asks for fewer)

openpyxl writes what it can: shared strings, numbers, booleans, dates with
built-in and custom formats, a time, merged cells, a hidden row and sheet, the
1904 date system, BIG_ROWS rows in write_only mode (inline strings). What it
cannot write is patched into the saved zip afterwards, marked PATCH below:
rich text runs (shared and inline), formulas with their cached values (openpyxl
never computes formulas, so Excel's cached <v> is written by hand), an error
cell, serial 60 (Excel's 1900-02-29), and malformed XML. The damaged, non-zip,
encrypted (OLE) and zip bomb files are made with zipfile and plain bytes.
"""
import datetime
import os
import re
import shutil
import sys
import zipfile

from openpyxl import Workbook

out = sys.argv[1]
big_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
tmp = out + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)


def path(name):
    return os.path.join(tmp, name)


def patch_zip(src, dst, edits, add=None):
    """Copies zip src to dst, passing the text of each entry named in edits
    through its function, and adding the entries of `add` (name -> text)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        names = set(zin.namelist())
        for name in edits:
            assert name in names, name
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename in edits:
                data = edits[item.filename](data.decode("utf-8")).encode("utf-8")
            zout.writestr(item, data, zipfile.ZIP_DEFLATED)
        for name, text in (add or {}).items():
            zout.writestr(name, text.encode("utf-8"), zipfile.ZIP_DEFLATED)


def replace_cell(xml, ref, new):
    """Replaces cell `ref` (<c r="ref" .../> or <c r="ref" ...>...</c>) by `new`."""
    pattern = r'<c r="%s"[^>]*?(/>|>.*?</c>)' % ref
    xml, n = re.subn(pattern, lambda m: new, xml, count=1)
    assert n == 1, ref
    return xml


# --- kinds.xlsx: every kind of cell, merged cells, hidden row and sheet ---
wb = Workbook()
ws = wb.active
ws.title = "Ark1"
ws.append(["Navn", "Antal", "Beløb", "Aktiv", "Dato", "DatoTid", "Tid", "Dansk", "Formel"])
ws.append(["Søren Æblegård", 42, 12.5, True, datetime.date(2024, 3, 1),
           datetime.datetime(2024, 3, 1, 8, 30), datetime.time(8, 30),
           datetime.date(2024, 12, 24), 0])
ws.append(["RICH", -7, "0042", False, 60, 59, 1.5104166667, 3, 0])
ws.append(["INLINE"])
ws.append(["fejl", 0])
ws.append(["efter", 1])
ws["E2"].number_format = "mm-dd-yy"            # built-in 14
ws["F2"].number_format = "dd-mm-yyyy hh:mm"    # custom date and time
ws["G2"].number_format = "h:mm"                # built-in 20
ws["H2"].number_format = '[$-406]d. mmmm yyyy;@'  # custom, Danish locale
ws["E3"].number_format = "mm-dd-yy"
ws["F3"].number_format = "dd-mm-yyyy hh:mm"
ws["G3"].number_format = "[h]:mm:ss"           # elapsed hours
ws["H3"].number_format = "[Red]0.0"            # colour, not a date

hidden = wb.create_sheet("Skjult")
hidden.sheet_state = "hidden"
hidden.append(["Hemmelig"])
hidden.append(["x"])

merged = wb.create_sheet("Fletning")
merged.append(["Afdeling", "Navn"])
merged.append(["Skole", "Anna"])
merged.append([None, "Bo"])
merged.append([None, "Carl"])
merged.append(["Rådhus", "Dorte"])
merged.merge_cells("A2:A4")
merged.row_dimensions[3].hidden = True

report = wb.create_sheet("Rapport 2024")
report.append(["Rapport over fravær"])
report.append([])
report.append(["id", "navn", None, "navn"])
report.append([1, "Åse", "x", "y"])
report.append([2, "Øjvind", None, None])
report.append([])
report.append(["Sum", 2])
wb.save(path("kinds_plain.xlsx"))


def kinds_sheet(xml):
    # PATCH: an inline string of rich text runs, with a phonetic run left out.
    xml = replace_cell(xml, "A4", '<c r="A4" t="inlineStr"><is><r><rPr><b/></rPr><t xml:space="preserve">'
                       'Hans </t></r><r><t>Ørsted</t></r><rPh sb="0" eb="1"><t>HO</t></rPh></is></c>')
    # PATCH: formulas with the values Excel cached when it saved the file.
    xml = replace_cell(xml, "I2", '<c r="I2"><f>B2*2</f><v>84</v></c>')
    xml = replace_cell(xml, "I3", '<c r="I3" t="str"><f>A2&amp;"!"</f><v>Søren Æblegård!</v></c>')
    # PATCH: an error cell (a formula that divides by zero).
    xml = replace_cell(xml, "B5", '<c r="B5" t="e"><f>1/0</f><v>#DIV/0!</v></c>')
    # PATCH: a formula saved without a cached value, and an ISO date cell (t="d").
    xml = xml.replace('<c r="B6" t="n"><v>1</v></c>',
                      '<c r="B6" t="n"><v>1</v></c><c r="C6"><f>1+1</f></c>'
                      '<c r="D6" t="d"><v>2024-03-01T00:00:00</v></c>')
    return xml


# PATCH: Debian's openpyxl (3.0) writes every string inline, so two cells
# become shared strings (Excel's way), one of them rich text runs.
SHARED_STRINGS = (
    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2" '
    'uniqueCount="2"><si><t>Søren Æblegård</t></si><si><r><rPr><i/></rPr>'
    '<t xml:space="preserve">Kim </t></r><r><t>Ågård</t></r></si></sst>')


def kinds_shared(xml):
    xml = replace_cell(xml, "A2", '<c r="A2" t="s"><v>0</v></c>')
    return replace_cell(xml, "A3", '<c r="A3" t="s"><v>1</v></c>')


def add_rel(xml):
    return xml.replace("</Relationships>",
                       '<Relationship Id="rIdSS" Type="http://schemas.openxmlformats.org/'
                       'officeDocument/2006/relationships/sharedStrings" '
                       'Target="sharedStrings.xml"/></Relationships>')


def add_type(xml):
    return xml.replace("</Types>",
                       '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                       'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
                       "</Types>")


patch_zip(path("kinds_plain.xlsx"), path("kinds.xlsx"),
          {"xl/worksheets/sheet1.xml": lambda x: kinds_shared(kinds_sheet(x)),
           "xl/_rels/workbook.xml.rels": add_rel, "[Content_Types].xml": add_type},
          add={"xl/sharedStrings.xml": SHARED_STRINGS})
os.remove(path("kinds_plain.xlsx"))

# --- date1904.xlsx: the Mac date system ---
wb = Workbook()
wb.epoch = datetime.datetime(1904, 1, 1)  # openpyxl.utils.datetime.CALENDAR_MAC_1904
ws = wb.active
ws.append(["Dato"])
ws.append([datetime.date(2024, 3, 1)])
ws["A2"].number_format = "dd-mm-yyyy"
wb.save(path("date1904.xlsx"))
with zipfile.ZipFile(path("date1904.xlsx")) as z:
    assert b'date1904="1"' in z.read("xl/workbook.xml"), "openpyxl did not write date1904"

# --- afdelinger.xlsx: a lookup table kept in Excel (a title row above the header) ---
wb = Workbook()
ws = wb.active
ws.title = "Afdelinger"
ws.append(["Afdelinger pr. 1. januar"])
ws.append(["Afdelingskode", "Navn", "Leder"])
ws.append([10, "Børn og Unge", "Åse"])
ws.append([" 20 ", "Teknik og Miljø", "Ølgaard"])
ws.append([10, "Dublet", "Ærø"])
ws.append([30, "Ældre", None])
wb.save(path("afdelinger.xlsx"))

# --- malformed rows and a broken sheet ---
patch_zip(path("kinds.xlsx"), path("bad_row.xlsx"), {
    # PATCH: row 3's cell closes the wrong tag; rows 2 and 4 are fine.
    "xl/worksheets/sheet1.xml": lambda x: replace_cell(x, "B3", '<c r="B3"><v>1</x></c>')})
patch_zip(path("kinds.xlsx"), path("bad_header.xlsx"), {
    # PATCH: the header row's cell closes the wrong tag.
    "xl/worksheets/sheet1.xml": lambda x: replace_cell(x, "B1", '<c r="B1"><v>1</x></c>')})
patch_zip(path("kinds.xlsx"), path("broken_sheet.xlsx"), {
    # PATCH: the sheet's XML ends in the middle of row 3.
    "xl/worksheets/sheet1.xml": lambda x: x[:x.index('<row r="3"') + 30]})

# --- files that are not workbooks ---
with open(path("kinds.xlsx"), "rb") as f:
    whole = f.read()
with open(path("truncated.xlsx"), "wb") as f:
    f.write(whole[: len(whole) // 2])
with open(path("notzip.xlsx"), "wb") as f:
    f.write(b"id;navn\n1;Ane\n")
with open(path("encrypted.xlsx"), "wb") as f:
    f.write(bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 4088)

# --- bomb.xlsx: a real workbook whose sheet inflates 100 MB of spaces from ~100 KB ---
wb = Workbook()
wb.active.append(["x"])
wb.save(path("bomb_plain.xlsx"))
with zipfile.ZipFile(path("bomb_plain.xlsx")) as zin, \
        zipfile.ZipFile(path("bomb.xlsx"), "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
    for item in zin.infolist():
        if item.filename != "xl/worksheets/sheet1.xml":
            zout.writestr(item.filename, zin.read(item.filename))
    with zout.open("xl/worksheets/sheet1.xml", "w") as s:
        s.write(b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>')
        chunk = b" " * (1 << 20)
        for _ in range(100):
            s.write(chunk)
        s.write(b"</sheetData></worksheet>")
os.remove(path("bomb_plain.xlsx"))

# strings_bomb.xlsx: kinds.xlsx whose shared string table (the part the source
# holds in memory) inflates 30 MB of one letter from ~30 KB.
with zipfile.ZipFile(path("kinds.xlsx")) as zin, \
        zipfile.ZipFile(path("strings_bomb.xlsx"), "w", zipfile.ZIP_DEFLATED,
                        compresslevel=9) as zout:
    for item in zin.infolist():
        if item.filename != "xl/sharedStrings.xml":
            zout.writestr(item.filename, zin.read(item.filename))
    with zout.open("xl/sharedStrings.xml", "w") as s:
        s.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b"<si><t>x</t></si><si><t>")
        chunk = b"a" * (1 << 20)
        for _ in range(30):
            s.write(chunk)
        s.write(b"</t></si></sst>")

# --- big.xlsx: big_rows rows in openpyxl's write_only (streaming) mode ---
wb = Workbook(write_only=True)
ws = wb.create_sheet("Data")
ws.append(["id", "beløb"])
for i in range(1, big_rows + 1):
    ws.append([i, i + 0.5])
wb.save(path("big.xlsx"))

# big_bad_end.xlsx: big.xlsx with the last bytes of its sheet's deflate data
# spoilt, so the entry fails only at its end: a reader that streams gives the
# first rows before that error, one that inflates the sheet first gives none.
with zipfile.ZipFile(path("big.xlsx")) as z:
    info = z.getinfo("xl/worksheets/sheet1.xml")
with open(path("big.xlsx"), "rb") as f:
    data = bytearray(f.read())
name_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little")
extra_len = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
start = info.header_offset + 30 + name_len + extra_len
end = start + info.compress_size
for i in range(end - 64, end - 8):
    data[i] ^= 0x5A
with open(path("big_bad_end.xlsx"), "wb") as f:
    f.write(data)

shutil.rmtree(out, ignore_errors=True)
os.rename(tmp, out)
