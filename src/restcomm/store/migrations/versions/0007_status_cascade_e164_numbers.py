"""Accounts remember which ancestor's status change they follow; phone numbers stored in E.164.

* ``accounts.status_cascaded_from``: NULL when an account's status is its own, otherwise the
  ancestor whose change cascaded to it. Reactivating an ancestor reactivates only those accounts,
  so a closed account stays closed and one suspended on its own stays suspended. Existing
  accounts get NULL: after this migration their statuses are all treated as their own.
* ``incoming_phone_numbers.phone_number``: every non-pattern number is rewritten to its canonical
  form (E.164 when it is a phone number; patterns, ``*`` and SIP user names are left as they are).
  When several rows of one organization are spellings of the same number (``+15553331234``,
  ``15553331234``, ``+1 555 333 1234``), one is kept: the row already spelled in E.164, else the
  oldest. The others are renamed ``<E.164>#duplicate-<sid>`` (reachable by no sender's spelling;
  their owners see them in their lists and can release them). Every kept and renamed row is
  reported on the ``restcomm.migrations`` logger (WARNING).

Revision ID: 0007_status_cascade_e164_numbers
Revises: 0006_mo_parts
"""

import logging
import sys
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from restcomm.phone import normalize, to_e164

revision = "0007_status_cascade_e164_numbers"
down_revision = "0006_mo_parts"
branch_labels = None
depends_on = None

log = logging.getLogger("restcomm.migrations")

_numbers = sa.table(
    "incoming_phone_numbers",
    sa.column("sid", sa.String),
    sa.column("account_sid", sa.String),
    sa.column("organization_sid", sa.String),
    sa.column("phone_number", sa.String),
    sa.column("is_pattern", sa.Boolean),
    sa.column("date_created", sa.DateTime),
)


def duplicate_name(e164: str, sid: str) -> str:
    return f"{e164}#duplicate-{sid}"


def plan(rows: list[dict[str, object]]) -> tuple[dict[str, str], list[str]]:
    """What to rewrite (sid -> new phone_number) and the report lines, for non-pattern rows
    ``{sid, account_sid, organization_sid, phone_number, date_created}``. Pure, for the unit test."""
    groups: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        groups[(str(row["organization_sid"]), normalize(str(row["phone_number"])))].append(row)
    changes: dict[str, str] = {}
    report: list[str] = []
    for (_org, canonical), members in sorted(groups.items()):
        members.sort(key=lambda r: (r["phone_number"] != canonical, r["date_created"], r["sid"]))
        kept, *others = members
        if kept["phone_number"] != canonical:
            changes[str(kept["sid"])] = canonical
        if not others:
            if kept["phone_number"] != canonical:
                report.append(f"number {kept['sid']} (account {kept['account_sid']}): "
                              f"{kept['phone_number']!r} normalised to {canonical}")
            continue
        report.append(f"number {canonical}: kept {kept['sid']} (account {kept['account_sid']}, "
                      f"was {kept['phone_number']!r})")
        for row in others:
            new = duplicate_name(canonical, str(row["sid"]))
            changes[str(row["sid"])] = new
            report.append(f"number {canonical}: duplicate {row['sid']} (account {row['account_sid']}, "
                          f"was {row['phone_number']!r}) renamed to {new!r}")
    return changes, report


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("status_cascaded_from", sa.String(length=34), nullable=True))

    bind = op.get_bind()
    rows = [dict(r) for r in bind.execute(
        sa.select(_numbers.c.sid, _numbers.c.account_sid, _numbers.c.organization_sid, _numbers.c.phone_number,
                  _numbers.c.date_created, _numbers.c.is_pattern)
    ).mappings()]
    # "1 (555) 333-1234" was stored as a pattern (it holds parentheses) but is a phone number.
    spelled = [r for r in rows if r["is_pattern"] and to_e164(str(r["phone_number"])) is not None]
    for row in spelled:
        bind.execute(sa.update(_numbers).where(_numbers.c.sid == row["sid"]).values(is_pattern=False))
    changes, report = plan([r for r in rows if not r["is_pattern"] or r in spelled])
    # Renamed duplicates first, so that no kept row's new spelling is still taken.
    ordered = sorted(changes.items(), key=lambda kv: "#duplicate-" not in kv[1])
    for sid, phone in ordered:
        bind.execute(sa.update(_numbers).where(_numbers.c.sid == sid).values(phone_number=phone))
    for line in report:
        if log.hasHandlers():
            log.warning("migration 0007: %s", line)
        else:  # `restcomm db upgrade` without logging set up: the operator still sees the report
            print(f"migration 0007: {line}", file=sys.stderr)


def downgrade() -> None:
    # Numbers stay in E.164 (the old code accepts that form too); only the column goes.
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("status_cascaded_from")
