"""The review queue: list, inspect (with the image) and decide the inputs the guard sent to REVIEW."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from fortify.service.deps import Plane, Reviewer
from fortify.service.routes import ERRORS

router = APIRouter(prefix="/review", tags=["review"], responses=ERRORS)
EventId = Annotated[int, Path(ge=1, le=2**62)]


class ReviewDecision(BaseModel):
    """``accept`` the model's label, ``label`` with the right one, or ``reject`` the input."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["accept", "label", "reject"]
    label: int | None = Field(default=None, ge=0, le=100_000)
    note: str | None = Field(default=None, max_length=500)


@router.get("", summary="Review items, oldest first (keyset pagination with after)")
async def list_items(
    plane: Plane,
    _: Reviewer,
    state: Literal["pending", "reviewed", "accepted", "labelled", "rejected"] = "pending",
    status: Literal["ACCEPTED", "REVIEW", "REJECTED"] | None = None,
    version: Annotated[str | None, Query(max_length=32)] = None,
    key: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    return await plane.run_io(
        lambda: plane.review.page(
            review_state=state, status=status, model_version=version, key_id=key, after_id=after, limit=limit
        )
    )


@router.get("/{event_id}", summary="One item with its input and image")
async def get_item(event_id: EventId, plane: Plane, _: Reviewer) -> dict[str, Any]:
    return await plane.run_io(plane.review.item, event_id)


@router.post("/{event_id}", summary="Decide one item")
async def decide(event_id: EventId, body: ReviewDecision, plane: Plane, who: Reviewer) -> dict[str, Any]:
    return await plane.run_io(plane.review.decide, event_id, body.action, body.label, body.note, who)


alerts_router = APIRouter(prefix="/alerts", tags=["review"], responses=ERRORS)


@alerts_router.get("", summary="Alerts fired since a time (newest first)")
async def list_alerts(
    plane: Plane,
    _: Reviewer,
    since: Annotated[float, Query(ge=0, le=1e11)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = await plane.run_io(plane.store.recent_alerts, limit)
    return {"items": [r["detail"] | {"id": r["id"]} for r in rows if r["fired_at"] >= since]}
