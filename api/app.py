"""The FastAPI application: thin routes over the domain packages."""

from __future__ import annotations

from fastapi import FastAPI

from api import dashboard, errors, metrics
from api.ratelimit import make_limiter
from api.routes import alerts, catalog, exports, health, posts, releases, trends
from api.routes import metrics as metrics_routes
from core.logging import configure_logging
from core.settings import Settings, get_settings
from core.taxonomy import load_taxonomy
from trends.exports import ExportSlots


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (the process's settings by default)."""
    settings = settings or get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    app = FastAPI(
        title="Undertow",
        version="0.1.0",
        description="Public discourse about AI assistants: themes, trends, alerts, exports.",
    )
    app.state.settings = settings
    app.state.taxonomy = load_taxonomy(settings.taxonomy_path)
    app.state.limiter = make_limiter(settings)
    app.state.export_slots = ExportSlots(settings.max_concurrent_exports)
    errors.install(app)
    metrics.install(app)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    app.include_router(trends.router)
    app.include_router(posts.router)
    app.include_router(releases.router)
    app.include_router(exports.router)
    app.include_router(catalog.router)
    app.include_router(alerts.router)
    dashboard.mount(app)
    return app
