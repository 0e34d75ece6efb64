"""``X-Twilio-Signature``: how a Twilio-compatible application knows a webhook came from us.

Restcomm signs nothing; Twilio signs every webhook, and Twilio apps commonly refuse unsigned ones
(``twilio.request_validator.RequestValidator``). We sign with the account's AuthToken:

    base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...))

where ``url`` is the full URL requested (for GET it already carries the parameters in its query
string, and nothing is appended) and the POST parameters are sorted by name (code-point order).

Repeated names follow twilio-python, the validator most of our users run: values of one name are
sorted and **de-duplicated** (twilio-node keeps duplicates). The pipeline never sends the same
name/value pair twice, so the two validators agree on everything we send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"

FormParams = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _grouped(params: FormParams | None) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    if params is None:
        return grouped
    items: Iterable[tuple[str, str | Sequence[str]]]
    items = params.items() if isinstance(params, Mapping) else params
    for name, value in items:
        values = grouped.setdefault(name, [])
        if isinstance(value, str):
            values.append(value)
        else:
            values.extend(value)
    return grouped


def signing_payload(url: str, params: FormParams | None = None) -> str:
    """The exact string that is HMAC'd; exposed so a failing validation can be debugged."""
    parts = [url]
    grouped = _grouped(params)
    for name in sorted(grouped):
        for value in sorted(set(grouped[name])):
            parts.append(name)
            parts.append(value)
    return "".join(parts)


def compute_signature(auth_token: str, url: str, params: FormParams | None = None) -> str:
    """Value for the ``X-Twilio-Signature`` header of a request to ``url`` carrying ``params``.

    Pass ``params`` only for POST form bodies; for GET the parameters are already part of ``url``.
    """
    payload = signing_payload(url, params).encode("utf-8")
    digest = hmac.new(auth_token.encode("utf-8"), payload, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _port_variants(url: str) -> list[str]:
    """The URL as given, without its port, and with the scheme's default port made explicit.

    Twilio's own validator accepts all three because its signers have not been consistent about
    ports behind proxies; accepting the same set keeps us interchangeable with it.
    """
    variants = [url]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return variants
    host = parts.hostname
    if host is None:
        return variants
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if port is not None:
        variants.append(urlunsplit(parts._replace(netloc=prefix + host)))
    elif parts.scheme.lower() in _DEFAULT_PORTS:
        default = _DEFAULT_PORTS[parts.scheme.lower()]
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    return variants


def validate(auth_token: str, url: str, params: FormParams | None, signature: str) -> bool:
    """True when ``signature`` is what ``auth_token`` gives for this request (constant-time compare)."""
    given = signature.strip().encode("utf-8")
    valid = False
    for candidate in _port_variants(url):
        expected = compute_signature(auth_token, candidate, params).encode("ascii")
        # No early exit: every variant is compared, so timing does not reveal which one matched.
        valid |= hmac.compare_digest(expected, given)
    return valid
