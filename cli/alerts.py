"""`undertow alerts`: rules, calibration, detection, the alert list, and detector backtests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from cli.common import echo_json, fail, load_settings
from core.errors import UndertowError

app = typer.Typer(
    help="Spike alerts: rules, calibration, detection, alerts, backtests.", no_args_is_help=True
)
rules_app = typer.Typer(help="Alert rules: list, add, remove, defaults.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--now must be an ISO 8601 time, not {value!r}", 2) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


@rules_app.command("list")
def rules_list(
    show_urls: bool = typer.Option(False, "--show-urls", help="Show full channel URLs."),
) -> None:
    """Every rule with its threshold and channels (secrets are never shown)."""
    from core.db import session_scope
    from trends.alerts import list_rules, rule_to_dict

    with session_scope(load_settings()) as session:
        echo_json([rule_to_dict(r, reveal=show_urls) for r in list_rules(session=session)])


@rules_app.command("add")
def rules_add(
    name: str = typer.Option(..., "--name", help="Unique rule name."),
    theme: str = typer.Option(..., "--theme", help="A theme key of the taxonomy."),
    product: str | None = typer.Option(None, "--product", help="Only posts about this product."),
    platform: str | None = typer.Option(None, "--platform", help="Only posts from this platform."),
    granularity: str = typer.Option("hour", help="hour or day."),
    metric: str = typer.Option("count", help="count, or share of the product's posts."),
    budget: float = typer.Option(2.0, help="At most this many alerts per 28 days."),
    min_count: int = typer.Option(5, help="Fewest posts in the window to alert on."),
    cooldown_hours: int = typer.Option(24, help="No new alert this soon after the last."),
    channel: list[str] = typer.Option(
        [],
        "--channel",
        help='JSON, repeatable: {"type":"slack","url":...}, {"type":"webhook","url":...,'
        '"secret":...} or {"type":"email","to":["a@b.org"]}.',
    ),
) -> None:
    """Add a rule."""
    from pydantic import ValidationError

    from core.db import session_scope
    from core.taxonomy import load_taxonomy
    from trends.alerts import RuleSpec, create_rule, rule_to_dict

    settings = load_settings()
    try:
        channels = [json.loads(c) for c in channel]
        spec = RuleSpec(
            name=name,
            theme=theme,
            product=product,
            platform=platform,
            granularity=granularity,  # type: ignore[arg-type]
            metric=metric,  # type: ignore[arg-type]
            budget=budget,
            min_count=min_count,
            cooldown_hours=cooldown_hours,
            channels=channels,
        )
    except json.JSONDecodeError as e:
        raise fail(f"--channel is not JSON: {e}", 2) from None
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise fail(f"{where}: {err.get('msg')}", 2) from None
    try:
        with session_scope(settings) as session:
            row = create_rule(
                session=session,
                spec=spec,
                taxonomy=load_taxonomy(settings.taxonomy_path),
                settings=settings,
            )
            out = rule_to_dict(row)
    except UndertowError as e:
        raise fail(e.detail, 2) from None
    echo_json(out)


@rules_app.command("remove")
def rules_remove(rule: str = typer.Argument(..., help="Rule id or name.")) -> None:
    """Delete a rule and its alerts."""
    from core.db import session_scope
    from trends.alerts import delete_rule, find_rule

    try:
        with session_scope(load_settings()) as session:
            delete_rule(session=session, rule_id=int(find_rule(session=session, ref=rule).id or 0))
    except UndertowError as e:
        raise fail(e.detail, 2) from None
    typer.echo(f"removed rule {rule}")


@rules_app.command("defaults")
def rules_defaults() -> None:
    """Create the default rules for the complaint themes that are missing (idempotent)."""
    from core.db import session_scope
    from core.taxonomy import load_taxonomy
    from trends.alerts import ensure_default_rules

    settings = load_settings()
    try:
        with session_scope(settings) as session:
            made = ensure_default_rules(
                session=session, taxonomy=load_taxonomy(settings.taxonomy_path), settings=settings
            )
            names = [r.name for r in made]
    except UndertowError as e:
        raise fail(e.detail, 2) from None
    echo_json({"created": names})


@app.command()
def calibrate(
    rule: list[str] = typer.Option([], "--rule", help="Rule id or name (default: all enabled)."),
    now: str | None = typer.Option(None, help="Calibrate as of this time (ISO 8601)."),
) -> None:
    """Set each rule's threshold from its history so it stays within its budget."""
    from core.db import session_scope
    from trends.alerts import calibrate_rules, find_rule

    settings = load_settings()
    try:
        with session_scope(settings) as session:
            ids = [int(find_rule(session=session, ref=r).id or 0) for r in rule]
            echo_json(
                calibrate_rules(session=session, settings=settings, now=_when(now), rule_ids=ids)
            )
    except UndertowError as e:
        raise fail(e.detail, 2) from None


@app.command()
def detect(
    now: str | None = typer.Option(None, help="Detect as of this time (ISO 8601)."),
) -> None:
    """Run detection once, now, and enqueue deliveries of the alerts it opens."""
    load_settings()
    from workers.tasks.alerts import run_detection

    echo_json(run_detection(_when(now)))


@app.command("list")
def list_(
    status: str | None = typer.Option(None, help="open, acknowledged or resolved."),
    rule: int | None = typer.Option(None, help="Rule id."),
    theme: str | None = typer.Option(None, help="Theme key."),
    limit: int = typer.Option(50, min=1, max=500),
) -> None:
    """Alerts, newest first."""
    from core.db import session_scope
    from trends.alerts import list_alerts

    try:
        with session_scope(load_settings()) as session:
            page = list_alerts(
                session=session, status=status, rule_id=rule, theme=theme, limit=limit
            )
    except UndertowError as e:
        raise fail(e.detail, 2) from None
    echo_json(page["items"])


@app.command()
def backtest(
    series: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV with timestamp,value."
    ),
    out: Path = typer.Option(
        ..., "-o", "--out", help="Output CSV: timestamp,value,expected,score,alert."
    ),
    granularity: str = typer.Option(
        "auto", help="5min, hour or day (auto: from the series' usual spacing)."
    ),
    budget: float = typer.Option(
        4.0, min=0.0, help="At most this many alerts in any 28 days (hard cap)."
    ),
) -> None:
    """Run the detector over SERIES with no look-ahead and write one row per input row."""
    from trends.backtest import run_backtest

    if granularity not in ("auto", "5min", "hour", "day"):
        raise fail(f"granularity must be auto, 5min, hour or day, not {granularity!r}", 2)
    try:
        summary = run_backtest(series, out, granularity=granularity, budget=budget)  # type: ignore[arg-type]
    except ValueError as e:
        raise fail(str(e), 2) from None
    echo_json(summary)
