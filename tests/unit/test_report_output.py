"""How ``clickstream trino report`` prints a report: whole headers, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

from rich.console import Console

from flows.trino_cli import ReportFormat, report_table, report_text

COLUMNS = [
    "target_element", "day_of_month", "segment", "os", "app_version",
    "sessions", "conversions", "conversion_rate", "screen", "channel",
]  # fmt: skip
ROWS = [
    ["apply_loan", date(2026, 1, 15), "retail", "Android", "5.13.2", 120, 30, Decimal("0.25"),
     "loan_offer", None],
]  # fmt: skip


def test_a_wide_report_shows_every_header_whole_on_a_narrow_terminal() -> None:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(report_table("element_conversion", COLUMNS, ROWS))
    lines = console.export_text().splitlines()
    # Headers may fold onto several lines, never be cut short: every letter of them is there.
    header = lines[lines.index(next(x for x in lines if x.startswith("┏"))) + 1 :]
    header = header[: header.index(next(x for x in header if x.startswith("┡")))]
    letters = [c for line in header for c in line if c not in "┃ "]
    assert sorted(letters) == sorted("".join(COLUMNS))
    assert all(len(line) <= 80 for line in lines)


def test_csv_has_a_header_line_and_plain_values() -> None:
    rows = list(csv.reader(io.StringIO(report_text(COLUMNS, ROWS, ReportFormat.csv))))
    assert rows[0] == COLUMNS
    assert rows[1][:3] == ["apply_loan", "2026-01-15", "retail"]
    assert rows[1][7] == "0.25" and rows[1][9] == ""


def test_json_is_a_list_of_objects_by_column() -> None:
    records = json.loads(report_text(COLUMNS, ROWS, ReportFormat.json))
    assert records == [
        {
            "target_element": "apply_loan", "day_of_month": "2026-01-15", "segment": "retail",
            "os": "Android", "app_version": "5.13.2", "sessions": 120, "conversions": 30,
            "conversion_rate": 0.25, "screen": "loan_offer", "channel": None,
        }
    ]  # fmt: skip
