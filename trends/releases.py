"""Release events: model launches that trends are compared around."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import Session, select

from core.errors import InvalidInput
from core.models import ReleaseEvent
from core.taxonomy import Taxonomy


def add_release(
    *, session: Session, taxonomy: Taxonomy, product: str, day: date | str, title: str
) -> ReleaseEvent:
    """Record a release; the same (product, date, title) twice is one release."""
    if product not in taxonomy.products:
        raise InvalidInput(
            f"unknown product {product!r}; one of {list(taxonomy.products)}", param="product"
        )
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError as e:
            raise InvalidInput(f"date {day!r} is not YYYY-MM-DD", param="date") from e
    when = datetime(day.year, day.month, day.day, tzinfo=UTC)
    title = title.strip()
    if not title:
        raise InvalidInput("a release needs a title", param="title")
    existing = session.exec(
        select(ReleaseEvent).where(
            ReleaseEvent.product == product, ReleaseEvent.date == when, ReleaseEvent.title == title
        )
    ).first()
    if existing:
        return existing
    row = ReleaseEvent(product=product, date=when, title=title)
    session.add(row)
    session.flush()
    return row


def list_releases(*, session: Session) -> list[ReleaseEvent]:
    """All releases, oldest first."""
    return list(session.exec(select(ReleaseEvent).order_by(ReleaseEvent.date)))  # type: ignore[arg-type]
