"""``clickstream customers``: load the core-banking extract into Redis, make a sample one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

customers_app = typer.Typer(help="The customer reference store (core-banking extract in Redis).")
console = Console(stderr=True)


def _count_rows(path: Path) -> int | None:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


@customers_app.command("load")
def load(
    path: Annotated[Path, typer.Argument(help="Extract: CSV (with a header) or .parquet.")],
) -> None:
    """Load an extract as a new version and switch the running job to it atomically."""
    from sinks.redis_projection import redis_client
    from state.customer_store import ExtractError, load_customers
    from state.settings import load_settings

    settings = load_settings()
    client = redis_client(settings.redis_url, settings.redis_options())
    total = _count_rows(path) if path.is_file() else None
    columns = (TextColumn("[bold]loading"), BarColumn(), MofNCompleteColumn(),
               TextColumn("rows"), TimeElapsedColumn())  # fmt: skip
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("load", total=total)
            report = load_customers(
                client,
                settings.redis_prefix,
                path,
                on_progress=lambda n: progress.advance(task, n),
            )
    except (ExtractError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"loaded {report.rows:,} customers as version {report.version} in "
        f"{report.seconds:.1f} s ({report.rows / max(report.seconds, 1e-6):,.0f} rows/s); "
        f"{report.bad_rows:,} bad rows"
    )
    for problem in report.problems:
        console.print(f"  [yellow]{problem}[/yellow]")


@customers_app.command("sample")
def sample(
    path: Annotated[Path, typer.Argument(help="Where to write (.csv or .parquet).")],
    customers: Annotated[int, typer.Option(min=1, help="As for `clickstream simulate`.")] = 1000,
    seed: Annotated[int, typer.Option(help="As for `clickstream simulate`.")] = 42,
) -> None:
    """Write an extract that matches the simulator's customers (same ids and segments)."""
    from sources.customer_sample import write_sample_extract
    from sources.simulator import SimulationConfig

    rows = write_sample_extract(path, SimulationConfig(customers=customers, seed=seed))
    console.print(f"wrote {rows:,} customers to {path}")
