#!/usr/bin/python3
"""Reads a workbook written by the xlsx target with openpyxl (Debian
python3-openpyxl) and prints what a reader sees, as JSON, for xlsx_target_test.

Usage: read_back.py FILE.xlsx

Output: {"sheets": [...], "freeze": "A2", "filter": "A1:C3",
         "widths": {"A": 12.7}, "rows": [[[value, data_type, number_format], ...], ...]}
Dates come back as datetime objects (openpyxl's is_date), printed as ISO text;
data_type is openpyxl's: n number, s string, b boolean, d date.
"""
import datetime
import json
import sys

from openpyxl import load_workbook

wb = load_workbook(sys.argv[1])
ws = wb.worksheets[0]
rows = []
for row in ws.iter_rows():
    cells = []
    for c in row:
        v = c.value
        if isinstance(v, (datetime.datetime, datetime.date)):
            v = v.isoformat()
        cells.append([v, c.data_type, c.number_format])
    rows.append(cells)
widths = {k: d.width for k, d in ws.column_dimensions.items() if d.width}
print(json.dumps({"sheets": wb.sheetnames, "freeze": ws.freeze_panes,
                  "filter": ws.auto_filter.ref, "widths": widths, "rows": rows},
                 ensure_ascii=False))
