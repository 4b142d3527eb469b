"""Every task, imported so the worker registers them."""

from workers.tasks import classify, ingest, trends

__all__ = ["classify", "ingest", "trends"]
