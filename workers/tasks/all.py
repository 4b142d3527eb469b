"""Every task, imported so the worker registers them."""

from workers.tasks import alerts, classify, ingest, reports, trends

__all__ = ["alerts", "classify", "ingest", "reports", "trends"]
