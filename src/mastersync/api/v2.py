"""Version 2 of the item search: cursor paging, stable while records change.

v1 pages by offset: a record changed between two page requests moves to the front (v1 is
ordered by last change) and the pages skip or repeat records. v2 orders by master id
(time-ordered) and continues after a cursor, so a reader sees every record once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from mastersync.api.auth import Caller, need
from mastersync.api.context import context
from mastersync.api.schemas import RecordPageV2
from mastersync.api.system import record_out

router = APIRouter(prefix="/v2")


@router.get(
    "/items",
    response_model=RecordPageV2,
    tags=["system: items"],
    summary="Search items (cursor paging)",
    operation_id="search_items_v2",
)
def search_items(
    request: Request,
    principal: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^itm_[0-9a-f]{32}$", description="next_cursor of the last page"),
    ] = None,
    q: Annotated[str | None, Query(max_length=100, description="name contains")] = None,
) -> dict[str, Any]:
    """Items within the caller's reach, by master id, after ``cursor``."""
    need(principal, "item:read")
    ctx = context(request)
    page = ctx.governance.search(
        "item", principal.rule("item"), text=q, limit=limit + 1, after=cursor or ""
    )
    records = page.records[:limit]
    return {
        "items": [record_out(ctx, principal, r, page.linked[r.master_id]) for r in records],
        "limit": limit,
        "next_cursor": records[-1].master_id if len(page.records) > limit else None,
    }
