"""A core-banking customer extract that matches the simulator's customers (CSV or Parquet)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sources.simulator import SimulationConfig, customers

FIRST_NAMES = ("Anna", "Piotr", "Katarzyna", "Tomasz", "Magdalena", "Jan", "Agnieszka", "Marek",
               "Ewa", "Paweł", "Zofia", "Michał")  # fmt: skip
PRODUCTS = ("current_account", "savings", "credit_card", "debit_card", "mortgage",
            "personal_loan", "investment", "insurance")  # fmt: skip
COLUMNS = ("customer_id", "segment", "sms_consent", "phone", "first_name", "products",
           "push_consent")  # fmt: skip


def sample_rows(config: SimulationConfig) -> list[dict[str, str]]:
    """One row per simulated customer: same ids and segments as the simulator's traffic.

    SMS consent is yes for ~80%, no for ~15% and missing for ~5% (unknown: no SMS); push
    consent (an extra column the rules can read) is yes for ~70%, no otherwise.
    """
    rng = random.Random(f"extract:{config.seed}")
    rows = []
    for customer in customers(config):
        draw = rng.random()
        consent = "true" if draw < 0.80 else "false" if draw < 0.95 else ""
        held = ["current_account", *rng.sample(PRODUCTS[1:], rng.randint(0, 3))]
        rows.append(
            {
                "customer_id": customer.customer_id,
                "segment": customer.segment,
                "sms_consent": consent,
                "phone": f"+48{rng.randint(500_000_000, 899_999_999)}",
                "first_name": rng.choice(FIRST_NAMES),
                "products": ";".join(held),
                "push_consent": "true" if rng.random() < 0.70 else "false",
            }
        )
    return rows


def write_sample_extract(path: Path, config: SimulationConfig) -> int:
    """Write the extract (Parquet when the path ends with .parquet, else CSV); return its rows."""
    rows = sample_rows(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table = pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in COLUMNS]))
        pq.write_table(table, path, compression="zstd")
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return len(rows)
