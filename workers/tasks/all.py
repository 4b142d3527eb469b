"""Every task, imported so the worker registers them."""

from workers.tasks import alerts, classify, ingest, reports, retention, trends

__all__ = ["alerts", "classify", "ingest", "reports", "retention", "trends"]
