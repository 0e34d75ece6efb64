"""The ``Tag`` filter of list operations (``?Tag=key:value``, or ``?Tag=key`` for any value).

Shared by the tagged resources' list operations (accounts, clients, applications, incoming
numbers) and the Tags resource, which defines what a key may be (api/tags.py).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from restcomm.api.errors import invalid
from restcomm.api.framework import Call, Param
from restcomm.store.schema import tags

# A key is what comes before the first ':' of a filter, so it cannot hold one.
KEY = re.compile(r"^[^:\x00-\x1f\x7f]{1,128}$")

TAG_FILTER = Param("Tag", max_length=400, description="only resources tagged key:value (or key, any value)")


def tag_condition(call: Call, sid_column: Any, resource_type: str, account_sid: str | None) -> Any:
    """A condition on ``sid_column`` for the request's ``Tag`` filter, or None without one.

    ``account_sid`` narrows the lookup to one account's tags (the index); None for accounts, whose
    tags each live under the tagged account itself.
    """
    spec = call.query.get("Tag")
    if spec is None or spec == "":
        return None
    key, sep, value = spec.partition(":")
    key = key.strip()
    if not KEY.match(key):
        raise invalid("Tag", "must be key:value or key, with a key of 1 to 128 characters", 20001)
    sub = select(tags.c.resource_sid).where(tags.c.resource_type == resource_type, tags.c.key == key)
    if account_sid is not None:
        sub = sub.where(tags.c.account_sid == account_sid)
    if sep:
        sub = sub.where(tags.c.value == value)
    return sid_column.in_(sub)
