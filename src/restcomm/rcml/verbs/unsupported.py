"""Any element at verb level that an SMS application cannot execute (``<Say>``, ``<Dial>``, ``<foo>``).

It is kept in the verb list, rather than dropped, so the interpreter can write warning 14110 at the
point where Restcomm would and then skip it. Its children are deliberately not searched: Restcomm's
habit of running verbs found inside unknown elements (``rcml.md`` §1.3) is a bug we do not copy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unsupported:
    name: str
