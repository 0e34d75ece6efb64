"""The role table covers every operation, and maps Restcomm's permission names as documented."""

from __future__ import annotations

import pytest

from restcomm.api.errors import ApiError
from restcomm.api.framework import REGISTRY, Operation, Principal
from restcomm.api.roles import DOMAINS, authorize, permission, role_of
from restcomm.web.endpoints import load_resources


def _ops() -> list[Operation]:
    load_resources()
    return [op for op in REGISTRY if op.auth]


def _op(method: str, path: str) -> Operation:
    [op] = [o for o in REGISTRY if o.method == method and o.path == path]
    return op


def _principal(role: str) -> Principal:
    return Principal(account={"sid": "AC1", "role": role, "parent_sid": "AC0", "status": "active"}, credential_sid="AC1")


def test_every_operation_has_a_known_domain() -> None:
    assert {op.tag for op in _ops()} <= set(DOMAINS)


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/Accounts/{AccountSid}/Clients", ("Read", "Clients")),
    ("POST", "/Accounts/{AccountSid}/Clients", ("Create", "Clients")),
    ("POST", "/Accounts/{AccountSid}/Clients/{ClientSid}", ("Modify", "Clients")),
    ("DELETE", "/Accounts/{AccountSid}/Clients/{ClientSid}", ("Delete", "Clients")),
    ("DELETE", "/Accounts/{AccountSid}/Applications/{ApplicationSid}", ("Modify", "Applications")),
    ("POST", "/Accounts/{AccountSid}/SMS/Messages", ("Create", "SmsMessages")),
    ("PUT", "/Organizations/{Organization}", ("Create", "Organizations")),
    ("POST", "/Accounts/{AccountSid}", ("Modify", "Accounts")),
])
def test_permissions(method: str, path: str, expected: tuple[str, str]) -> None:
    _ops()
    assert permission(_op(method, path)) == expected


def test_roles_are_matched_without_case_and_unknown_ones_are_not_enforced() -> None:
    assert role_of("administrator") == "Administrator"
    assert role_of(" Developer ") == role_of("user") == "Developer"
    assert role_of("Billing") is None and role_of("") is None
    _ops()
    send = _op("POST", "/Accounts/{AccountSid}/SMS/Messages")
    read = _op("GET", "/Accounts/{AccountSid}/SMS/Messages")
    for role in ("Administrator", "Billing", "custom"):
        authorize(_principal(role), send)
    authorize(_principal("Developer"), read)
    with pytest.raises(ApiError) as err:
        authorize(_principal("developer"), send)
    assert err.value.status == 403 and err.value.code == 20006
    for op in _ops():
        if op.tag in ("Keys", "AuthTokens", "AuditLog", "Gateways", "Carriers", "Organizations"):
            with pytest.raises(ApiError):
                authorize(_principal("Developer"), op)
