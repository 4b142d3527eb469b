"""`undertow classify sweep|reclassify`: classification of stored posts through the queue."""

from __future__ import annotations

import typer

from cli.common import echo_json, load_settings


def sweep() -> None:
    """Enqueue posts that have no classification for the current model and text (recovery)."""
    load_settings()
    from workers.tasks.classify import sweep as do_sweep

    echo_json({"enqueued": do_sweep()})


def reclassify(
    batch: int = typer.Option(50_000, min=1, help="Posts to enqueue per round."),
) -> None:
    """Re-score history with the current model in the background; old labels stay until replaced."""
    settings = load_settings()
    from classify.loader import get_classifier
    from classify.store import pending_post_ids
    from core.db import session_scope
    from workers.enqueue import enqueue_classification

    version = get_classifier(settings).version
    total = 0
    while True:
        with session_scope(settings) as session:
            ids = pending_post_ids(
                session=session, model_version=version, stale_after_s=0, limit=batch
            )
        ids = [i for i in ids]
        if not ids:
            break
        enqueue_classification(ids)
        total += len(ids)
        if len(ids) < batch:
            break
    echo_json({"model_version": version, "enqueued": total})
