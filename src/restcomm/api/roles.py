"""Roles and their permissions, checked on every authenticated operation (web/endpoints.py calls
``authorize`` right after authentication, before the tenancy check).

Restcomm's model (restcomm-api.md §2.5): a permission is ``RestComm:{Action}:{Domain}`` with the
actions Create, Read, Modify and Delete; the role ``Administrator`` passes every check, and the
shipped configuration defines one other role, ``Developer``, whose permissions are copied here
(plus Tags, which Restcomm did not have). The set is fixed: there is no configuration of roles.

The role is the authenticated account's (for an API key, its account's; for an IAM user, the user's). Stored values are matched
without regard to case; ``User`` is taken as ``Developer``. Any other value is not enforced: such an
account keeps what it could do before roles were enforced (everything its tenancy allows), where
Restcomm would refuse it every check. This keeps accounts made when ``Role`` was a free string
working; set their role to ``Developer`` to restrict them.

Tenancy and the per-resource rules (the SuperAdmin for organizations, the administrator account
for carriers, keys not managing keys) still apply on top of the role.
"""

from __future__ import annotations

from restcomm.api.errors import ApiError
from restcomm.api.framework import Operation, Principal

ADMINISTRATOR = "Administrator"
DEVELOPER = "Developer"
ROLES = (ADMINISTRATOR, DEVELOPER)

_ALIASES = {"administrator": ADMINISTRATOR, "developer": DEVELOPER, "user": DEVELOPER}

# Operation tag (the OpenAPI tag) -> Restcomm's permission domain.
DOMAINS: dict[str, str] = {
    "Accounts": "Accounts",
    "Applications": "Applications",
    "AuditLog": "AuditLog",
    "AuthTokens": "AuthTokens",
    "AvailablePhoneNumbers": "AvailablePhoneNumbers",
    "Calls": "Calls",
    "Twilio Calls": "Calls",
    "Carriers": "Carriers",
    "Clients": "Clients",
    "Email": "EmailMessages",
    "Gateways": "Gateways",
    "IncomingPhoneNumbers": "IncomingPhoneNumbers",
    "Keys": "Keys",
    "Notifications": "Notifications",
    "Organizations": "Organizations",
    "Profiles": "Profiles",
    "OutgoingCallerIds": "OutgoingCallerIds",
    "Recordings": "Recordings",
    "Twilio Recordings": "Recordings",
    "SMS Messages": "SmsMessages",
    "Twilio Messages": "SmsMessages",
    "Tags": "Tags",
    "Usage": "Usage",
    "Users": "Users",
}

_ALL = frozenset({"Create", "Read", "Modify", "Delete"})

# Restcomm's shipped Developer role (restcomm.xml security-roles), for the domains served here.
# Not granted: Keys, Users, AuthTokens and AuditLog (credentials and their trail are the administrator's),
# Gateways, Carriers and Organizations (the platform's).
PERMISSIONS: dict[str, dict[str, frozenset[str]]] = {
    DEVELOPER: {
        "Accounts": _ALL,
        "Applications": _ALL,
        "AvailablePhoneNumbers": frozenset({"Read"}),
        "Calls": _ALL,
        "Clients": _ALL,
        "EmailMessages": _ALL,
        "IncomingPhoneNumbers": _ALL,
        "Notifications": frozenset({"Read"}),
        "OutgoingCallerIds": _ALL,
        # Reading: the schema, and its own effective profile (api/profiles.py refuses the rest, as
        # Restcomm does for every role but the SuperAdmin).
        "Profiles": frozenset({"Read"}),
        "Recordings": frozenset({"Read", "Delete"}),
        "SmsMessages": frozenset({"Read"}),  # as in Restcomm: a Developer cannot send SMS
        "Tags": _ALL,
        "Usage": _ALL,
    },
}


def role_of(role: str | None) -> str | None:
    """The enforced role a stored value stands for, or None when it is not one (not enforced)."""
    return _ALIASES.get((role or "").strip().lower())


def permission(op: Operation) -> tuple[str, str]:
    """(action, domain) an operation needs: GET reads, DELETE deletes, POST/PUT to a collection
    creates and to an item modifies (Restcomm checks Modify to delete an application)."""
    domain = DOMAINS.get(op.tag, op.tag)  # an unmapped tag is a domain no role but Administrator has
    if op.method == "GET":
        action = "Read"
    elif op.method == "DELETE":
        action = "Modify" if domain == "Applications" else "Delete"
    elif op.method == "PUT" and domain == "Organizations":
        action = "Create"  # PUT /Organizations/{domainName} creates
    else:
        action = "Modify" if op.path.endswith("}") else "Create"
    return action, domain


def authorize(principal: Principal, op: Operation) -> None:
    """403 unless the principal's role grants the operation's permission."""
    role = role_of(principal.role)
    if role is None or role == ADMINISTRATOR:
        return
    action, domain = permission(op)
    if action not in PERMISSIONS[role].get(domain, frozenset()):
        raise ApiError(403, 20006, f"The {role} role does not have the permission RestComm:{action}:{domain}")
