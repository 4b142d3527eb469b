"""Alert rules (read: any key; write: admin) and alerts (read; ack/resolve: label or admin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import ReadKey, RowId, SessionDep, ThemeFilter, UTCTime, is_admin, require_scope
from api.errors import PROBLEM_RESPONSES
from core.models import ApiKey
from trends.alerts import (
    RulePatch,
    RuleSpec,
    acknowledge_alert,
    alert_detail,
    alert_to_dict,
    create_rule,
    delete_rule,
    get_rule,
    list_alerts,
    list_rules,
    resolve_alert,
    rule_to_dict,
    update_rule,
)

router = APIRouter(tags=["alerts"], responses=PROBLEM_RESPONSES)
AdminKey = Annotated[ApiKey, Depends(require_scope("admin"))]
# Triage is a correction of the record, like a label: the `label` scope (or admin) may do it.
TriageKey = Annotated[ApiKey, Depends(require_scope("label"))]


@router.get("/v1/alert-rules")
def rules(session: SessionDep, key: ReadKey) -> dict[str, Any]:
    """Every rule; channel URLs are shown to admin keys only, secrets never."""
    return {"items": [rule_to_dict(r, reveal=is_admin(key)) for r in list_rules(session=session)]}


@router.get("/v1/alert-rules/{rule_id}")
def rule(session: SessionDep, key: ReadKey, rule_id: RowId) -> dict[str, Any]:
    """One rule."""
    return rule_to_dict(get_rule(session=session, rule_id=rule_id), reveal=is_admin(key))


@router.post("/v1/alert-rules", status_code=201)
def add_rule(
    request: Request, session: SessionDep, key: AdminKey, body: RuleSpec
) -> dict[str, Any]:
    """Create a rule (409 if the name is taken)."""
    row = create_rule(
        session=session,
        spec=body,
        taxonomy=request.app.state.taxonomy,
        settings=request.app.state.settings,
    )
    return rule_to_dict(row, reveal=True)


@router.put("/v1/alert-rules/{rule_id}")
def change_rule(
    request: Request, session: SessionDep, key: AdminKey, rule_id: RowId, body: RulePatch
) -> dict[str, Any]:
    """Change the given fields of a rule; a change to what it watches clears its threshold."""
    row = update_rule(
        session=session,
        rule_id=rule_id,
        patch=body,
        taxonomy=request.app.state.taxonomy,
        settings=request.app.state.settings,
    )
    return rule_to_dict(row, reveal=True)


@router.delete("/v1/alert-rules/{rule_id}", status_code=204)
def remove_rule(session: SessionDep, key: AdminKey, rule_id: RowId) -> Response:
    """Delete a rule and its alerts."""
    delete_rule(session=session, rule_id=rule_id)
    return Response(status_code=204)


@router.get("/v1/alerts")
def alerts(
    session: SessionDep,
    key: ReadKey,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    rule: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    theme: ThemeFilter = None,
    since: UTCTime | None = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Alerts newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    return list_alerts(
        session=session,
        status=status,
        rule_id=rule,
        theme=theme,
        since=since,
        before_id=cursor,
        limit=limit,
    )


@router.get("/v1/alerts/{alert_id}")
def alert(session: SessionDep, key: ReadKey, alert_id: RowId) -> dict[str, Any]:
    """One alert: why it opened, its examples and delivery attempts."""
    return alert_detail(session=session, alert_id=alert_id)


@router.post("/v1/alerts/{alert_id}/ack")
def ack(session: SessionDep, key: TriageKey, alert_id: RowId) -> dict[str, Any]:
    """Acknowledge an open alert (409 if resolved)."""
    return alert_to_dict(acknowledge_alert(session=session, alert_id=alert_id, by=key.name))


@router.post("/v1/alerts/{alert_id}/resolve")
def resolve(session: SessionDep, key: TriageKey, alert_id: RowId) -> dict[str, Any]:
    """Resolve an alert by hand (idempotent)."""
    return alert_to_dict(resolve_alert(session=session, alert_id=alert_id, by=key.name))
