"""`undertow classify`: label a JSON Lines file, train the heads, evaluate against gold labels."""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import typer

from cli.common import atomic_output, check_output_dir, fail, load_settings

app = typer.Typer(
    help="Classify posts: label files, train and evaluate the model, sweep and reclassify.",
    no_args_is_help=True,
)

MAX_TEXT_CHARS = 20_000  # beyond this a "post" is a pasted document; it is cut, never rejected
# Lines per chunk of `classify file`: the encoder sorts a chunk by token count into micro-batches
# of 16, which pad 17% extra tokens over real posts in chunks of 128 and 2% in chunks of 1024.
FILE_CHUNK = 1024


def _load_classifier(model: str, backend: str | None = None) -> Any:
    settings = load_settings()
    if backend:
        settings = settings.model_copy(update={"classifier_backend": backend})
    if model == "rules":
        from classify.rules import RulesClassifier
        from core.taxonomy import load_taxonomy

        return RulesClassifier(
            taxonomy=load_taxonomy(settings.taxonomy_path), brand_accounts=settings.brand_accounts
        )
    from classify.artifacts import ArtifactError
    from classify.transformer import TransformerClassifier

    try:
        return TransformerClassifier.from_settings(settings)
    except ArtifactError as e:
        raise fail(str(e)) from None


def _parse_line(line: str) -> tuple[str | int, Any]:
    """The line's `id` as written (a string or an integer) and its PostInput; ValueError says
    what is wrong with the line."""
    from classify.base import PostInput
    from core.posttext import storable

    try:
        # A cut emoji ("\ud83d") would fail the tokenizer and the output file for every line.
        obj = storable(json.loads(line))
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError("not JSON (nested too deep)") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "id" not in obj or not isinstance(obj["id"], str | int) or isinstance(obj["id"], bool):
        raise ValueError("missing or non-scalar `id`")
    text = obj.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ValueError("`text` is not a string")
    parent = obj.get("parent_text")
    if parent is not None and not isinstance(parent, str):
        raise ValueError("`parent_text` is not a string")
    author = obj.get("author_handle")
    return obj["id"], PostInput(
        id=str(obj["id"]),
        text=text[:MAX_TEXT_CHARS],
        parent_text=parent[:MAX_TEXT_CHARS] if parent else None,
        author_handle=author if isinstance(author, str) else None,
        platform=obj.get("platform") if isinstance(obj.get("platform"), str) else None,
    )


@contextmanager
def _output(path: Path) -> Iterator[IO[str]]:
    """stdout for "-", else a temp file renamed over OUT only when every line is written."""
    if str(path) == "-":
        yield sys.stdout
        return
    with atomic_output(path) as f:
        yield f


def _row(given_id: str | int, p: Any) -> str:
    row = {
        "id": given_id,  # as the input wrote it: 7 stays 7, "7" stays "7"
        "themes": p.themes,
        "scores": p.scores,
        "products": p.products,
        "model_version": p.model_version,
    }
    if p.targets:
        row["targets"] = p.targets
    if p.evidence:
        row["evidence"] = p.evidence
    return json.dumps(row, ensure_ascii=False) + "\n"


def _batches(
    lines: Iterator[str], batch_size: int, errors: list[tuple[int, str]]
) -> Iterator[list[tuple[str | int, Any]]]:
    """Valid posts (id as given, PostInput) in input order, `batch_size` at a time; bad lines
    go to `errors`."""
    batch: list[tuple[str | int, Any]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            errors.append((n, "empty line"))
            continue
        try:
            batch.append(_parse_line(line))
        except ValueError as e:
            errors.append((n, str(e)))
            continue
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def classify_stream(
    classifier: Any, lines: Iterator[str], out: IO[str], *, batch_size: int = 128
) -> tuple[int, list[tuple[int, str]]]:
    """Label each valid line in order; returns (lines written, [(line number, error), ...]).

    Two batches are in flight: while one is in the encoder (which releases the GIL), the other's
    lexical features, products, evidence and JSON run beside it, so no core waits through the
    Python part. Output keeps the input order.
    """
    written, errors = 0, list[tuple[int, str]]()
    pending: deque[tuple[list[str | int], Future[list[Any]]]] = deque()

    def drain(keep: int) -> None:
        nonlocal written
        while len(pending) > keep:
            ids, future = pending.popleft()
            for given_id, p in zip(ids, future.result(), strict=True):
                out.write(_row(given_id, p))
                written += 1

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="classify") as pool:
        try:
            for batch in _batches(lines, batch_size, errors):
                ids = [given_id for given_id, _ in batch]
                pending.append((ids, pool.submit(classifier.predict, [p for _, p in batch])))
                drain(keep=1)
            drain(keep=0)
        finally:
            for _, f in pending:  # an error or Ctrl-C: do not start what is still queued
                f.cancel()
    return written, errors


@app.command("file")
def file(
    in_path: Path = typer.Argument(
        ..., metavar="IN.jsonl", help="One JSON object per line: id, text, parent_text?"
    ),
    out_path: Path = typer.Option(
        ..., "-o", "--out", help="Where to write results ('-' for stdout)."
    ),
    batch_size: int = typer.Option(
        FILE_CHUNK,
        "--batch-size",
        min=1,
        max=4096,
        help="Posts per chunk; bigger chunks sort into micro-batches with less padding.",
    ),
    model: str = typer.Option("transformers", "--model", help="transformers (default) or rules."),
    backend: str | None = typer.Option(
        None,
        "--backend",
        help="Encoder runtime: auto (OpenVINO bf16 where the CPU runs bf16 fast, else ONNX fp32; "
        "the default unless classifier_backend is configured), onnx, openvino or torch.",
    ),
) -> None:
    """Label every post in a JSON Lines file: one output line per valid input line, same order."""
    if not in_path.is_file():
        raise fail(f"{in_path}: no such file", 2)
    check_output_dir(out_path)
    if backend not in (None, "auto", "onnx", "openvino", "torch"):
        raise fail(f"--backend {backend!r}: one of auto, onnx, openvino, torch", 2)
    if backend is None and "classifier_backend" not in load_settings().model_fields_set:
        backend = "auto"  # no database is written: the fastest runtime that keeps the labels
    started = time.perf_counter()
    classifier = _load_classifier(model, backend)
    # utf-8-sig: a byte-order mark (Windows tools write one) is not part of the first line.
    with in_path.open(encoding="utf-8-sig", errors="replace") as f, _output(out_path) as out:
        written, errors = classify_stream(classifier, f, out, batch_size=batch_size)
    for n, msg in errors:
        typer.echo(f"{in_path}:{n}: skipped: {msg}", err=True)
    seconds = time.perf_counter() - started
    typer.echo(
        f"classified {written} posts ({len(errors)} skipped) with {classifier.version} "
        f"in {seconds:.1f}s ({written / max(seconds, 1e-9):.0f} posts/s incl. model load)",
        err=True,
    )


@app.command("train")
def train(
    data_dir: Path | None = typer.Option(
        None, help="Folder of training *.jsonl (default: the shipped set)."
    ),
    out: Path | None = typer.Option(
        None, help="Artifact path (default: classify/artifacts/heads.npz)."
    ),
    include_test: bool = typer.Option(
        False, help="Also fit on the held-out test split (final release)."
    ),
    reviewed: bool = typer.Option(
        False,
        "--reviewed",
        help="Also fit on the posts reviewed in the database (85%; the rest stays held out).",
    ),
) -> None:
    """Fit the theme heads on the training set, report the held-out split, save the artifact."""
    settings = load_settings()
    from classify.artifacts import DEFAULT_ARTIFACT
    from classify.encoder import Encoder
    from classify.training import TRAIN_DIR, DataError
    from classify.training import train as run_training
    from core.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(settings.taxonomy_path)
    fit_reviewed: list[Any] = []
    if reviewed:
        from classify.reviewed import fit_part

        examples = _reviewed_posts(settings, taxonomy.theme_keys)
        fit_reviewed = fit_part(examples)
    try:
        result = run_training(
            # The fp32 reference on every host: the same data gives the same heads anywhere.
            encoder=Encoder(settings.model_path, precision="fp32"),
            taxonomy=taxonomy,
            data_dir=data_dir or TRAIN_DIR,
            out=out or DEFAULT_ARTIFACT,
            registry=settings.brand_accounts,
            include_test=include_test,
            shared_dir=settings.shared_dir,
            reviewed=fit_reviewed,
        )
    except DataError as e:
        raise fail(str(e)) from None
    typer.echo(
        f"saved {result.path} (hash {result.content_hash[:12]}): fit on {result.n_fit}, "
        f"{result.n_test} held out, C={result.fit.emb_c}/{result.fit.lex_c}, "
        f"out-of-fold macro F1 {result.fit.oof_macro_f1:.3f}, {result.seconds:.0f}s"
    )
    typer.echo(f"  training data: {result.real_note}")
    if reviewed:
        typer.echo(
            f"  reviewed posts: {result.n_reviewed} fit, "
            f"{len(examples) - len(fit_reviewed)} held out for `classify eval --reviewed`"
        )
    for theme, stats in result.fit.per_theme.items():
        typer.echo(
            f"  {theme:<26} threshold {stats['threshold']:.3f}  val P {stats['precision']:.2f} "
            f"R {stats['recall']:.2f} F1 {stats['f1']:.2f}"
        )
    if not include_test and out is None:
        _eval_held_out(settings)


def _eval_held_out(settings: Any) -> None:
    from classify.training import load_examples, split_examples, training_files
    from core.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(settings.taxonomy_path)
    examples = split_examples(load_examples(training_files(), known_themes=taxonomy.theme_keys))[
        "test"
    ]
    _report(
        [e.as_post() for e in examples],
        [set(e.themes) for e in examples],
        title=f"project held-out split ({len(examples)} posts)",
    )


def _reviewed_posts(settings: Any, themes: Any) -> list[Any]:
    """Every reviewed post on its current text, from the configured database (exit 2 if down)."""
    import sqlalchemy as sa

    from classify.reviewed import reviewed_examples
    from core.db import session_scope

    try:
        with session_scope(settings) as session:
            examples, stale = reviewed_examples(session, themes)
    except sa.exc.SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        if isinstance(e, sa.exc.ProgrammingError | sa.exc.OperationalError) and (
            "no such table" in reason or "does not exist" in reason
        ):
            reason += " (run `undertow db upgrade` first)"
        raise fail(f"cannot read reviewed posts from the database: {reason}", 2) from None
    if stale:
        typer.echo(
            f"  {stale} reviewed posts left out: their label was made on an earlier text", err=True
        )
    return examples


def _eval_reviewed(settings: Any) -> None:
    from classify.artifacts import DEFAULT_ARTIFACT, ArtifactError, load_artifact
    from classify.reviewed import unseen
    from core.taxonomy import load_taxonomy

    examples = _reviewed_posts(settings, load_taxonomy(settings.taxonomy_path).theme_keys)
    try:  # the heads `_report` scores
        n_fit = int(load_artifact(DEFAULT_ARTIFACT).meta["training"].get("n_reviewed", 0))
    except (ArtifactError, KeyError) as e:
        raise fail(f"cannot tell which reviewed posts the heads saw: {e}") from None
    posts, what = unseen(examples, n_fit)
    if not posts:
        typer.echo(
            f"no reviewed post to score yet ({len(examples)} reviewed, none held out; about 15% "
            "of them, chosen by a hash of the post, are kept out of every fit)",
            err=True,
        )
        return
    _report(
        [e.as_post() for e in posts],
        [set(e.themes) for e in posts],
        title=f"reviewed posts ({what})",
    )


_classifiers: dict[str, Any] = {}


def _report(posts: list[Any], gold: list[set[str]], *, title: str) -> None:
    from classify.evaluate import evaluate, format_reports, rules_baseline
    from classify.transformer import TransformerClassifier
    from core.taxonomy import load_taxonomy

    settings = load_settings()
    if not _classifiers:  # one model load for every set this command evaluates
        _classifiers["transformers"] = TransformerClassifier.from_settings(settings)
        rules = rules_baseline()
        if rules is not None:
            _classifiers["rules"] = rules
    reports = evaluate(_classifiers, posts, gold, load_taxonomy(settings.taxonomy_path).theme_keys)
    typer.echo(format_reports(reports, title=title))


@app.command("eval")
def eval_(
    labeled: Path | None = typer.Argument(
        None, metavar="[LABELED.jsonl]", help="id, text, parent_text?, themes"
    ),
    real_dev: bool = typer.Option(
        False, "--real-dev", help="The real dev set (texts from shared_dir)."
    ),
    held_out: bool = typer.Option(False, "--held-out", help="The project's held-out test split."),
    reviewed: bool = typer.Option(
        False, "--reviewed", help="The reviewed posts in the database that no fit sees."
    ),
) -> None:
    """Per-theme precision, recall, F1 and support, micro/macro F1, confusions; rules beside."""
    settings = load_settings()
    if not (labeled or real_dev or held_out or reviewed):
        raise fail("give LABELED.jsonl, --real-dev, --held-out or --reviewed", 2)
    if labeled:
        from classify.training import DataError, load_examples
        from core.taxonomy import load_taxonomy

        if not labeled.is_file():
            raise fail(f"{labeled}: no such file", 2)
        try:
            # Unknown themes fail with their line: a misspelt key would count as a miss.
            examples = load_examples(
                [labeled], known_themes=load_taxonomy(settings.taxonomy_path).theme_keys
            )
        except DataError as e:
            raise fail(str(e)) from None
        _report(
            [e.as_post() for e in examples],
            [set(e.themes) for e in examples],
            title=f"{labeled} ({len(examples)} posts)",
        )
    if held_out:
        _eval_held_out(settings)
    if reviewed:
        _eval_reviewed(settings)
    if real_dev:
        from classify.base import PostInput
        from classify.devset import load_real_dev

        try:
            dev = load_real_dev(settings.shared_dir)
        except FileNotFoundError as e:
            typer.echo(f"skipping the real dev set: {e}", err=True)
            return
        _report(
            [PostInput(id=p.id, text=p.text, parent_text=p.parent_text) for p in dev],
            [set(p.themes) for p in dev],
            title=f"real dev set ({len(dev)} posts from {settings.shared_dir})",
        )
