#!/usr/bin/python3
"""Makes the ods source's fixtures in OUT (argument 1), run once per ctest run.

kinds.fods (written by hand, every kind of cell) is converted by LibreOffice
(headless, with a private profile so parallel runs do not collide) to
kinds.ods, kinds.xlsx, kinds.xls and one csv per sheet (kinds-Ark1.csv, as
LibreOffice shows the cells). The rest are made here: a damaged ods, a zip
bomb, an ods with a malformed row, and big.ods with ROWS (argument 2) rows.
"""
import os
import shutil
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1]
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
os.makedirs(OUT, exist_ok=True)

MIME = "application/vnd.oasis.opendocument.spreadsheet"
HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'office:version="1.3"><office:body><office:spreadsheet>')
TAIL = '</office:spreadsheet></office:body></office:document-content>'


def soffice(fmt, src):
    profile = "file://" + os.path.join(os.path.abspath(OUT), "lo-profile")
    subprocess.run(["soffice", "-env:UserInstallation=" + profile, "--headless",
                    "--convert-to", fmt, "--outdir", OUT, src],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write_ods(name, content_parts):
    """An ods whose content.xml is the concatenation of content_parts."""
    path = os.path.join(OUT, name)
    with zipfile.ZipFile(path + ".tmp", "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), MIME, compress_type=zipfile.ZIP_STORED)
        info = zipfile.ZipInfo("content.xml", (2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as f:
            for part in content_parts:
                f.write(part.encode("utf-8"))
    os.replace(path + ".tmp", path)


def cell_s(t):
    return ('<table:table-cell office:value-type="string"><text:p>%s</text:p>'
            '</table:table-cell>' % t)


def cell_f(v):
    return ('<table:table-cell office:value-type="float" office:value="%s"><text:p>%s'
            '</text:p></table:table-cell>' % (v, v))


def big_rows(n):
    yield HEAD + '<table:table table:name="Data"><table:table-row>'
    yield cell_s("id") + cell_s("navn") + cell_s("beløb") + cell_s("dato") + "</table:table-row>"
    batch = []
    for i in range(1, n + 1):
        batch.append('<table:table-row>' + cell_f(i) + cell_s("Person %d Ærø" % i) +
                     cell_f("%d.5" % i) +
                     '<table:table-cell office:value-type="date" office:date-value='
                     '"2024-%02d-%02d"><text:p>x</text:p></table:table-cell>'
                     '<table:table-cell table:number-columns-repeated="16380"/>'
                     '</table:table-row>' % (i % 12 + 1, i % 28 + 1))
        if len(batch) == 1000:
            yield "".join(batch)
            batch = []
    yield "".join(batch)
    yield ('<table:table-row table:number-rows-repeated="%d"><table:table-cell '
           'table:number-columns-repeated="16384"/></table:table-row></table:table>' %
           (1048576 - n - 1)) + TAIL


def main():
    # LibreOffice: the hand-written flat ODS to every format.
    fods = os.path.join(HERE, "kinds.fods")
    soffice("ods", fods)
    kinds = os.path.join(OUT, "kinds.ods")
    soffice("xlsx", kinds)
    soffice("xls", kinds)
    soffice("ods", os.path.join(HERE, "date1904.fods"))
    soffice("xlsx", os.path.join(OUT, "date1904.ods"))
    soffice("xls", os.path.join(OUT, "date1904.ods"))
    soffice("csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1", fods)
    shutil.rmtree(os.path.join(OUT, "lo-profile"), ignore_errors=True)

    # Damaged: the first half of a real ods.
    with open(kinds, "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, "truncated.ods"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(OUT, "notzip.ods"), "wb") as f:
        f.write(b"Navn;Antal\nSoren;1\n")

    # A zip bomb: 40 MiB of spaces in content.xml (about 1000:1).
    write_ods("bomb.ods", [HEAD, " " * (40 << 20), TAIL])

    # A malformed second row (the sheet is read on) and a malformed header.
    good = '<table:table-row>' + cell_s("Søren") + cell_f(1) + '</table:table-row>'
    write_ods("bad_row.ods", [
        HEAD, '<table:table table:name="Ark1"><table:table-row>', cell_s("Navn"), cell_s("Antal"),
        '</table:table-row>', good, '<table:table-row><table:table-cell><text:p>x &bogus; y</text:p>'
        '</table:table-cell></table:table-row>', '<table:table-row>', cell_s("Hans Ørsted"), cell_f(2),
        '</table:table-row></table:table>', TAIL])
    write_ods("bad_header.ods", [
        HEAD, '<table:table table:name="Ark1"><table:table-row><table:table-cell><text:p>&bogus;'
        '</text:p></table:table-cell></table:table-row>', good, '</table:table>', TAIL])

    # Repeated rows with values, repeated cells with values.
    write_ods("repeated.ods", [
        HEAD, '<table:table table:name="Ark1"><table:table-row>', cell_s("a"), cell_s("b"),
        cell_s("c"), '</table:table-row><table:table-row table:number-rows-repeated="3">',
        '<table:table-cell table:number-columns-repeated="2" office:value-type="float" '
        'office:value="7"><text:p>7</text:p></table:table-cell></table:table-row>'
        '<table:table-row table:number-rows-repeated="2"><table:table-cell/></table:table-row>'
        '<table:table-row>', cell_s("x"), '<table:table-cell '
        'table:number-columns-repeated="100000" office:value-type="string"><text:p>y</text:p>'
        '</table:table-cell></table:table-row>'
        # An empty row repeated 2^40 times: nothing, at once.
        '<table:table-row table:number-rows-repeated="1099511627776"><table:table-cell/>'
        '</table:table-row></table:table>', TAIL])

    # Text runs LibreOffice Calc itself does not write (tabs), as other
    # programs may.
    write_ods("text.ods", [
        HEAD, '<table:table table:name="Ark1"><table:table-row>', cell_s("Tekst"),
        '</table:table-row><table:table-row><table:table-cell office:value-type="string">'
        '<office:annotation><text:p>note</text:p></office:annotation>'
        '<text:p>a<text:tab/>b<text:line-break/>c <text:span>d</text:span><text:s/> '
        '<text:a>e</text:a></text:p>'
        '</table:table-cell></table:table-row></table:table>', TAIL])

    # Password-protected: LibreOffice encrypts content.xml and says so in
    # the manifest.
    path = os.path.join(OUT, "encrypted.ods")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", MIME)
        z.writestr("content.xml", os.urandom(4096))
        z.writestr("META-INF/manifest.xml",
                   '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
                   'manifest:1.0"><manifest:file-entry manifest:full-path="content.xml">'
                   '<manifest:encryption-data manifest:checksum-type="SHA1/1K"/>'
                   '</manifest:file-entry></manifest:manifest>')

    write_ods("big.ods", big_rows(ROWS))


main()
