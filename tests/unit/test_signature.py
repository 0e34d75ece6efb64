"""X-Twilio-Signature: our signatures must be accepted by twilio-python's RequestValidator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from restcomm.webhooks.signature import (
    SIGNATURE_HEADER,
    compute_signature,
    signing_payload,
    validate,
)

TOKEN = "0123456789abcdef0123456789abcdef"


def test_known_answer_from_twilio_documentation() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert compute_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert SIGNATURE_HEADER == "X-Twilio-Signature"


SMS_PARAMS = [
    ("SmsSid", "SM0123"), ("AccountSid", "AC0123"), ("From", "+15551230000"), ("To", "+15559870000"),
    ("Body", "Hi & bye = 100% + more\nnew line ✓ 😀"), ("ApiVersion", "2012-04-24"),
]

POST_CASES = [
    pytest.param("https://app.example.com/sms", SMS_PARAMS, id="post"),
    pytest.param("https://app.example.com/sms?step=2&x=a%20b", SMS_PARAMS, id="post-url-with-query"),
    pytest.param("http://127.0.0.1:8080/sms", SMS_PARAMS, id="post-with-port"),
    pytest.param("https://app.example.com:443/sms", SMS_PARAMS, id="post-explicit-default-port"),
    pytest.param("https://user:pw@app.example.com/sms", SMS_PARAMS, id="post-with-userinfo"),
    pytest.param("https://app.example.com/sms", [("b", "x"), ("B", "y"), ("a", ""), ("_", "z")], id="sort-order"),
    pytest.param("https://app.example.com/sms", [("MediaUrl", "u2"), ("MediaUrl", "u1"), ("Body", "b")],
                 id="repeated-names"),
    pytest.param("https://app.example.com/sms", [("a", "1"), ("a", "1")], id="repeated-identical-pair"),
    pytest.param("https://app.example.com/sms", [], id="no-params"),
]


@pytest.mark.parametrize(("url", "pairs"), POST_CASES)
def test_post_signatures_are_accepted_by_twilio(url: str, pairs: list[tuple[str, str]]) -> None:
    signature = compute_signature(TOKEN, url, pairs)
    form = MultiDict(pairs)  # what a web framework hands the validator
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, form, signature)
    assert validate(TOKEN, url, form, signature)
    assert validate(TOKEN, url, pairs, signature)
    # The same parameters given as a mapping of lists sign identically.
    as_mapping = {name: form.getall(name) for name in form}
    assert compute_signature(TOKEN, url, as_mapping) == signature


GET_URLS = [
    "https://app.example.com/sms?From=%2B15551230000&To=%2B15559870000&Body=Hi+%26+bye",
    "https://app.example.com/sms?step=2&From=%2B1555&Body=caf%C3%A9",
    "http://127.0.0.1:8080/sms?a=1&a=2",
    "https://app.example.com/sms",
]


@pytest.mark.parametrize("url", GET_URLS)
def test_get_signatures_cover_the_url_only(url: str) -> None:
    signature = compute_signature(TOKEN, url)
    assert RequestValidator(TOKEN).validate(url, {}, signature)
    assert validate(TOKEN, url, None, signature)
    assert signing_payload(url) == url


TAMPER_CASES = [
    pytest.param(lambda url, p, tok: (url, p, "wrong-token"), id="other-token"),
    pytest.param(lambda url, p, tok: (url + "x", p, tok), id="url-changed"),
    pytest.param(lambda url, p, tok: (url.replace("https", "http"), p, tok), id="scheme-changed"),
    pytest.param(lambda url, p, tok: (url, [*p, ("Extra", "1")], tok), id="param-added"),
    pytest.param(lambda url, p, tok: (url, [(n, v + " ") for n, v in p], tok), id="value-changed"),
    pytest.param(lambda url, p, tok: (url, p[1:], tok), id="param-removed"),
]


@pytest.mark.parametrize("tamper", TAMPER_CASES)
def test_tampered_requests_fail_validation(tamper) -> None:
    url = "https://app.example.com/sms?step=1"
    signature = compute_signature(TOKEN, url, SMS_PARAMS)
    other_url, other_params, token = tamper(url, SMS_PARAMS, TOKEN)
    assert not validate(token, other_url, other_params, signature)
    assert not RequestValidator(token).validate(other_url, MultiDict(other_params), signature)


PORT_VARIANTS = [
    ("https://app.example.com/sms", "https://app.example.com:443/sms"),
    ("https://app.example.com:443/sms", "https://app.example.com/sms"),
    # A proxy in front of the app may add a port the signer never saw.
    ("http://app.example.com/sms", "http://app.example.com:8080/sms"),
]


@pytest.mark.parametrize(("signed_url", "seen_url"), PORT_VARIANTS)
def test_validate_tolerates_port_differences_like_twilio(signed_url: str, seen_url: str) -> None:
    signature = compute_signature(TOKEN, signed_url, SMS_PARAMS)
    assert validate(TOKEN, seen_url, SMS_PARAMS, signature)
    assert RequestValidator(TOKEN).validate(seen_url, MultiDict(SMS_PARAMS), signature)


def test_validate_handles_ipv6_ports() -> None:
    # twilio-python mangles "[::1]:8080" when stripping the port; ours keeps the brackets.
    signature = compute_signature(TOKEN, "http://[::1]/sms", SMS_PARAMS)
    assert validate(TOKEN, "http://[::1]:8080/sms", SMS_PARAMS, signature)
    assert not validate(TOKEN, "http://[::2]:8080/sms", SMS_PARAMS, signature)


def test_validate_rejects_garbage_signatures() -> None:
    url = "https://app.example.com/sms"
    for garbage in ["", "not base64", "é", compute_signature(TOKEN, url)[:-2]]:
        assert not validate(TOKEN, url, SMS_PARAMS, garbage)


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@given(
    path=st.from_regex(r"/[A-Za-z0-9/_.-]{0,30}", fullmatch=True),
    port=st.none() | st.integers(1, 65535),
    pairs=st.lists(st.tuples(text, text), max_size=8),
)
def test_any_parameters_are_accepted_by_twilio(path: str, port: int | None, pairs: list[tuple[str, str]]) -> None:
    url = f"https://app.example.com{'' if port is None else f':{port}'}{path}"
    signature = compute_signature(TOKEN, url, pairs)
    assert RequestValidator(TOKEN).validate(url, MultiDict(pairs), signature)
    assert validate(TOKEN, url, pairs, signature)
