"""Give the simulator's customers their profiles in the real customer store."""

from __future__ import annotations

from pathlib import Path

import redis

from sources.customer_sample import write_sample_extract
from sources.simulator import SimulationConfig, customers
from state.customer_store import load_customers


def load_simulated_customers(
    client: redis.Redis, prefix: str, folder: Path, config: SimulationConfig
) -> dict[str, str]:
    """Load an extract matching ``config``'s customers; return customer id → segment."""
    extract = folder / "customers.csv"
    write_sample_extract(extract, config)
    load_customers(client, prefix, extract)
    return {c.customer_id: c.segment for c in customers(config)}
