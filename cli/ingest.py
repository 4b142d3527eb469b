"""`undertow ingest`: replay files, run a source once, show health."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import echo_json, fail, load_settings

app = typer.Typer(
    help="Collect posts: replay a file, run a source now, show source health.", no_args_is_help=True
)


def replay_file(path: Path, *, name: str = "demo", enqueue: bool = True) -> dict[str, int]:
    """Load a JSON Lines file of normalized posts through the same upsert path as live sources."""
    from core.db import session_scope
    from core.settings import SourceConfig
    from ingest.pipeline import run_source
    from ingest.sources.replay import ReplaySource

    settings = load_settings()
    config = SourceConfig(name=name, kind="replay", options={"path": str(path)})
    on_committed = None
    if enqueue:
        from workers.enqueue import enqueue_classification

        on_committed = enqueue_classification
    with session_scope(settings) as session:
        return run_source(
            session=session,
            config=config,
            adapter=ReplaySource(name=name, path=path),
            secret=settings.author_key_secret.get_secret_value(),
            on_committed=on_committed,
        )


@app.command()
def replay(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines of posts."),
    name: str = typer.Option("demo", help="Source name to record the replay under."),
    enqueue: bool = typer.Option(True, help="Hand new posts to the classification queue."),
) -> None:
    """Load PATH (e.g. data/demo/posts.jsonl); running it again adds nothing."""
    echo_json(replay_file(path.resolve(), name=name, enqueue=enqueue))


@app.command()
def once(
    name: str = typer.Argument(..., help="A source name from [[sources]] in the config."),
) -> None:
    """Run one configured source now (ignores its backoff) and enqueue what is new."""
    from core.errors import UndertowError
    from workers.tasks.ingest import run_source_now

    load_settings()
    try:
        echo_json(run_source_now(name))
    except UndertowError as e:
        raise fail(e.detail) from None


@app.command()
def status() -> None:
    """Each source's health: last success, last error, consecutive failures, posts collected."""
    from core.db import session_scope
    from ingest.pipeline import source_status

    with session_scope(load_settings()) as session:
        rows = source_status(session=session)
        echo_json(
            [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "last_success_at": s.last_success_at,
                    "last_error_at": s.last_error_at,
                    "last_error": s.last_error,
                    "consecutive_failures": s.consecutive_failures,
                    "posts_collected": s.posts_collected,
                    "quarantined": s.quarantined,
                }
                for s in rows
            ]
        )
