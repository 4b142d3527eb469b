"""The Celery app: broker from Settings (Redis distributed, kombu filesystem embedded)."""

from __future__ import annotations

from celery import Celery
from sqlalchemy.exc import OperationalError

from core.settings import Settings, get_settings

QUEUES = ("ingest", "classify", "default")
# The longest task may run this long before the worker kills it.
TASK_TIME_LIMIT_S = 900
# Tasks that must not be lost while the database is unreachable (a restart, a failover) retry
# on this named transient error, with capped exponential backoff and jitter, for ~5 minutes.
DB_RETRY: dict[str, object] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 15,
    "retry_jitter": True,
    "max_retries": 20,
}


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from ``settings``; tasks are imported from workers.tasks."""
    app = Celery("undertow", broker=settings.celery_broker_url, include=["workers.tasks.all"])
    transport: dict[str, object] = {
        # Redis re-delivers an unacknowledged message only after this; it must exceed the
        # longest task time limit, or a long task would run twice while still running.
        "visibility_timeout": TASK_TIME_LIMIT_S * 2,
    }
    if settings.celery_broker_url.startswith("filesystem"):
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        transport.update(
            data_folder_in=str(folder / "queue"),
            data_folder_out=str(folder / "queue"),
            processed_folder=str(folder / "processed"),
            control_folder=str(folder / "control"),
            store_processed=False,
            # The folder is polled; kombu's default of 1 s caps a worker at ~1 message a second.
            polling_interval=0.1,
        )
        # Broadcast control needs a fanout exchange; the embedded worker does without it.
        app.conf.worker_enable_remote_control = False
    app.conf.update(
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        # Results are never read: every task writes its outcome to the database.
        task_ignore_result=True,
        # Hard and soft limits: the soft one lets a task log and clean up before the kill.
        task_time_limit=TASK_TIME_LIMIT_S,
        task_soft_time_limit=TASK_TIME_LIMIT_S - 60,
        # Ack after the task ran: every task is idempotent, so a redelivery after a crash is safe.
        task_acks_late=True,
        # A worker killed mid-task gives its message back instead of acknowledging it.
        task_reject_on_worker_lost=True,
        # One message at a time per process: classify batches are long and should not be hoarded.
        worker_prefetch_multiplier=1,
        # Recycle worker processes now and then to bound memory growth from long runs.
        worker_max_tasks_per_child=500,
        task_default_queue="default",
        task_routes={
            "ingest.*": {"queue": "ingest"},
            "classify.*": {"queue": "classify"},
            "trends.*": {"queue": "default"},
        },
        worker_hijack_root_logger=False,
        # Our structured log lines go to stdout with their own level; Celery would relabel them.
        worker_redirect_stdouts_level="INFO",
        timezone="UTC",
    )
    return app


celery_app = make_celery(get_settings())
