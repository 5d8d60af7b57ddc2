"""The review queue over the store: pages of items, one item with its image, a reviewer's decision.

Items are the events whose verdict was REVIEW (``review_state`` ``pending``); a decision moves one to
``accepted`` (the model's label confirmed), ``labelled`` (the reviewer's label) or ``rejected`` (not a
valid input), once. ``fortify review export`` turns the accepted and labelled ones into a dataset.
"""

from __future__ import annotations

from typing import Any

from fortify.service.auth import Principal
from fortify.service.errors import BadRequest, Conflict, NotFound
from fortify.service.images import png_data_uri
from fortify.service.protocol import INPUT_NAME
from fortify.service.store import Store


class ReviewQueue:
    """Review operations; ``guards`` (by version) give each item's bounds and class count."""

    def __init__(self, store: Store, guards: dict[str, Any], primary: str) -> None:
        self.store, self.guards, self.primary = store, guards, primary

    def _guard(self, version: str) -> Any:
        # an item of a version no longer served is shown with the primary's bounds and classes
        return self.guards.get(version, self.guards[self.primary])

    def page(self, **filters: Any) -> dict[str, Any]:
        """A page of items (no images) and the cursor of the next page (``None`` at the end)."""
        limit = filters["limit"]
        items = self.store.list_events(**{**filters, "limit": limit + 1})
        more = len(items) > limit
        items = items[:limit]
        return {"items": items, "next_after": items[-1]["id"] if more else None}

    def item(self, event_id: int) -> dict[str, Any]:
        """One event with its input as OIP-style data and a PNG data URI when it is an image."""
        row = self.store.get_event(event_id)
        if row is None:
            raise NotFound(f"no event {event_id}")
        array = row.pop("input")
        row["input"] = None
        row["image"] = None
        if array is not None:
            data = array.ravel().tolist()
            row["input"] = {"name": INPUT_NAME, "datatype": "FP32", "shape": list(array.shape), "data": data}
            row["image"] = png_data_uri(array, self._guard(row["model_version"]).bounds)
        return row

    def decide(
        self, event_id: int, action: str, label: int | None, note: str | None, who: Principal
    ) -> dict[str, Any]:
        """Accept the model's label, set the right one, or reject the input; ``Conflict`` if not pending."""
        row = self.store.get_event(event_id)
        if row is None:
            raise NotFound(f"no event {event_id}")
        num_classes = self._guard(row["model_version"]).num_classes
        if action == "label":
            if label is None or not 0 <= label < num_classes:
                raise BadRequest(f"action 'label' needs a label in [0, {num_classes - 1}]")
            state = "labelled"
        elif action == "accept":
            state, label = "accepted", int(row["label"])
        else:
            state, label = "rejected", None
        if not self.store.review(event_id, state, label, who.id, note):
            raise Conflict(f"event {event_id} is not waiting for review (state: {row['review_state']})")
        return {"id": event_id, "review_state": state, "review_label": label, "reviewed_by": who.id}
