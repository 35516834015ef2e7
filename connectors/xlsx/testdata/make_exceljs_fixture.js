// A workbook written by the npm exceljs package (another spreadsheet writer
// than openpyxl and LibreOffice, with its own way of storing things: shared
// strings, rich text runs, formulas with cached results, error values, date
// cells by number format, merged ranges, hidden rows), for xlsx_test.
//
//   node make_exceljs_fixture.js OUT_DIR    (env NODE_MODULES: tests/node_modules)
'use strict';
const path = require('node:path');
const ExcelJS = require(path.join(process.env.NODE_MODULES, 'exceljs'));

async function main() {
  const out = process.argv[2];
  const wb = new ExcelJS.Workbook();
  wb.creator = 'keyonce tests';
  const ws = wb.addWorksheet('Tilmeldinger');
  ws.addRow(['Navn', 'Antal', 'Beløb', 'Aktiv', 'Dato', 'Tidspunkt', 'Formel', 'Fejl', 'Note']);
  ws.addRow([
    'Søren Æblegård',
    42,
    1234.5,
    true,
    new Date(Date.UTC(2026, 11, 7)),
    new Date(Date.UTC(2026, 11, 7, 13, 45, 30)),
    {formula: 'B2*2', result: 84},
    {error: '#N/A'},
    {richText: [{text: 'Fed ', font: {bold: true}}, {text: 'og almindelig'}]},
  ]);
  ws.getCell('E2').numFmt = 'dd-mm-yyyy';
  ws.getCell('F2').numFmt = 'dd-mm-yyyy hh:mm:ss';
  ws.addRow([
    'Åse Østergård', 7, 0.25, false, null, null, {formula: 'B3*2', result: 14}, 1, '0101901234'
  ]);
  ws.addRow(['Fælles afdeling']);
  ws.mergeCells('A4:C4');
  ws.addRow(['Skjult række', 1]);
  ws.getRow(5).hidden = true;
  ws.addRow(['Sidste', 3]);
  await wb.xlsx.writeFile(path.join(out, 'exceljs.xlsx'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
