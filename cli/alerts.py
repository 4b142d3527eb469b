"""`undertow alerts`: spike detection backtests (rules and delivery grow here)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import echo_json, fail

app = typer.Typer(help="Spike alerts: backtest the detector on a series.", no_args_is_help=True)


@app.command()
def backtest(
    series: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV with timestamp,value."
    ),
    out: Path = typer.Option(
        ..., "-o", "--out", help="Output CSV: timestamp,value,expected,score,alert."
    ),
    granularity: str = typer.Option("hour", help="5min, hour or day."),
    budget: float = typer.Option(2.0, min=0.0, help="At most this many alerts per 28 days."),
) -> None:
    """Run the detector over SERIES with no look-ahead and write one row per input row."""
    from trends.backtest import run_backtest

    if granularity not in ("5min", "hour", "day"):
        raise fail(f"granularity must be 5min, hour or day, not {granularity!r}", 2)
    try:
        summary = run_backtest(series, out, granularity=granularity, budget=budget)  # type: ignore[arg-type]
    except ValueError as e:
        raise fail(str(e), 2) from None
    echo_json(summary)
