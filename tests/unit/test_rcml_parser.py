"""RCML/TwiML parser: what twilio-python emits, hand-written Restcomm RCML, hostile XML, URLs."""

from __future__ import annotations

import codecs
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.twiml.messaging_response import Body, Media, MessagingResponse
from twilio.twiml.messaging_response import Message as TwimlMessage

from restcomm.rcml.errors import (
    SMS_NOTIFICATION_CODES,
    Code,
    LogLevel,
    RcmlParseError,
    RcmlUrlError,
    RcmlWarning,
    more_info_url,
    notification_code,
)
from restcomm.rcml.parser import (
    MAX_DOCUMENT_BYTES,
    Email,
    Message,
    ParsedRcml,
    Redirect,
    Sms,
    Unsupported,
    parse_rcml,
    resolve_url,
)

# --------------------------------------------------------------------------------------------
# Documents produced by the twilio-python generator
# --------------------------------------------------------------------------------------------


def _twiml(build: Callable[[MessagingResponse], object]) -> str:
    response = MessagingResponse()
    build(response)
    return str(response)


def _message_with_children(r: MessagingResponse) -> None:
    m = TwimlMessage(to="+15551230000")
    m.append(Body("Hello from a Body child"))
    m.append(Media("https://example.com/a.png"))
    m.append(Media("https://example.com/b.jpg"))
    r.append(m)


def _text_then_media(r: MessagingResponse) -> None:
    r.message("Text before media").media("https://example.com/a.png")


def _body_and_text(r: MessagingResponse) -> None:
    r.message("ignored own text").body("the Body wins")


TWILIO_CASES = [
    pytest.param(lambda r: None, (), id="empty-response"),
    pytest.param(lambda r: r.message("Thanks, got it"), (Message(body="Thanks, got it"),), id="plain-message"),
    pytest.param(
        lambda r: r.message(
            "Hi", to="+15551230000", from_="+15559870000", action="/sms/next?step=2", method="GET",
            status_callback="https://cb.example.com/status",
        ),
        (Message(body="Hi", to="+15551230000", from_="+15559870000", action="/sms/next?step=2", method="GET",
                 status_callback="https://cb.example.com/status"),),
        id="all-attributes",
    ),
    pytest.param(
        _message_with_children,
        (Message(body="Hello from a Body child", to="+15551230000",
                 media=("https://example.com/a.png", "https://example.com/b.jpg")),),
        id="body-and-media-children",
    ),
    pytest.param(_text_then_media, (Message(body="Text before media", media=("https://example.com/a.png",)),),
                 id="text-then-media"),
    pytest.param(_body_and_text, (Message(body="the Body wins"),), id="body-child-beats-own-text"),
    pytest.param(lambda r: r.message("AT&T <rocks> \"quoted\" 'single'"),
                 (Message(body="AT&T <rocks> \"quoted\" 'single'"),), id="escaped-characters"),
    pytest.param(lambda r: r.message("  \n  padded\n  two lines \t\n"), (Message(body="padded\n  two lines"),),
                 id="outer-whitespace-trimmed-inner-kept"),
    pytest.param(lambda r: r.message("Ünïcödé ✓ 😀 \u00a0nbsp\u00a0"), (Message(body="Ünïcödé ✓ 😀 \u00a0nbsp\u00a0"),),
                 id="unicode-and-nbsp-kept"),
    pytest.param(lambda r: r.message(), (Message(body=""),), id="empty-message"),
    pytest.param(lambda r: (r.message("one"), r.message("two"), r.message("three")),
                 (Message(body="one"), Message(body="two"), Message(body="three")), id="order-kept"),
    pytest.param(lambda r: (r.message("first"), r.redirect("https://example.com/next", method="GET")),
                 (Message(body="first"), Redirect(url="https://example.com/next", method="GET")), id="redirect"),
    pytest.param(lambda r: r.redirect("/relative.xml"), (Redirect(url="/relative.xml", method="POST"),),
                 id="redirect-default-method"),
]


@pytest.mark.parametrize(("build", "expected"), TWILIO_CASES)
def test_twilio_generator_documents(build: Callable[[MessagingResponse], object], expected: tuple) -> None:
    document = _twiml(build)
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    for data in (document, document.encode("utf-8")):
        result = parse_rcml(data)
        assert result.verbs == expected
        assert result.warnings == ()


def test_twilio_generator_invalid_method_becomes_post_with_warning() -> None:
    result = parse_rcml(_twiml(lambda r: (r.message("a"), r.message("b", method="PUT"))))
    assert result.verbs == (Message(body="a"), Message(body="b", method="POST"))
    assert result.warnings == (
        RcmlWarning(Code.INVALID_SMS_METHOD, "Invalid method 'PUT' on <Message>, using POST", 1, "Message",
                    "method", "PUT"),
    )
    assert result.warnings_for(1) == result.warnings
    assert result.warnings_for(0) == ()


# --------------------------------------------------------------------------------------------
# Hand-written RCML
# --------------------------------------------------------------------------------------------

RCML_CASES = [
    ("<Response><Sms>Thanks</Sms></Response>", (Sms(body="Thanks"),)),
    ('<Response><Sms to="+15551230000" from="+15559870000" action="/sms/next" method="GET" '
     'statusCallback="/cb">Copy</Sms></Response>',
     (Sms(body="Copy", to="+15551230000", from_="+15559870000", action="/sms/next", method="GET",
          status_callback="/cb"),)),
    ('<Response><Sms method="get">x</Sms><Sms method="Post">y</Sms><Sms method="">z</Sms></Response>',
     (Sms(body="x", method="GET"), Sms(body="y"), Sms(body="z"))),
    ('<Response><Sms to="  +1555  " action="  ">x</Sms></Response>', (Sms(body="x", to="+1555"),)),
    ("<Response><Sms>AT&T &amp; co</Sms></Response>", (Sms(body="AT&T & co"),)),
    ("<Response><Sms>&#65;&#x42;&lt;&gt;&quot;&apos;</Sms></Response>", (Sms(body="AB<>\"'"),)),
    ("<Response><Sms>a & b &c d</Sms></Response>", (Sms(body="a & b &c d"),)),
    ("<Response><Sms><![CDATA[a < b && c &amp;]]></Sms></Response>", (Sms(body="a < b && c &amp;"),)),
    ("<Response><Sms>x & <![CDATA[&]]> & <!-- & --></Sms></Response>", (Sms(body="x & & &"),)),
    ("<Response><Sms>Hello <!-- note --> world</Sms></Response>", (Sms(body="Hello  world"),)),
    ("<Response><Sms>Hi <b>bold</b> there</Sms></Response>", (Sms(body="Hi  there"),)),
    ("<Response><Sms>line1\r\nline2\rline3</Sms></Response>", (Sms(body="line1\nline2\nline3"),)),
    ("<Response><Sms/></Response>", (Sms(body=""),)),
    ("\n\n  <?xml version='1.0'?>\n<Response>\n  <Sms>x</Sms>\n</Response>\n", (Sms(body="x"),)),
    ('<Response xmlns="urn:example:twiml"><Sms>ns</Sms></Response>', (Sms(body="ns"),)),
    ('<t:Response xmlns:t="urn:t"><t:Sms>prefixed</t:Sms></t:Response>', (Sms(body="prefixed"),)),
    ("<Response><Redirect>  https://example.com/next.xml  </Redirect></Response>",
     (Redirect(url="https://example.com/next.xml"),)),
    ("<Response><Redirect/></Response>", (Redirect(url=""),)),
    ('<Response><Email to="a@x.org" from="app@x.org" cc="b@x.org, c@x.org,, " bcc="d@x.org" '
     'subject="Hi">Body text</Email></Response>',
     (Email(to="a@x.org", from_="app@x.org", body="Body text", subject="Hi", cc=("b@x.org", "c@x.org"),
            bcc=("d@x.org",)),)),
    ('<Response><Email from="app@x.org" Subject="ignored" Bcc="ignored">b</Email></Response>',
     (Email(to=None, from_="app@x.org", body="b"),)),
    ("<Response><Say>hi</Say><Dial>+1</Dial><sms>lower</sms><Foo/></Response>",
     (Unsupported("Say"), Unsupported("Dial"), Unsupported("sms"), Unsupported("Foo"))),
    # Restcomm ran verbs found inside unknown elements; we do not.
    ("<Response><Pay><Prompt><Sms>hidden</Sms></Prompt></Pay><Sms>shown</Sms></Response>",
     (Unsupported("Pay"), Sms(body="shown"))),
    ("<Response>stray text<Sms>x</Sms>more</Response>", (Sms(body="x"),)),
    ("<Response><Message><Body>a </Body><Body> b</Body><Media>  </Media></Message></Response>",
     (Message(body="a  b"),)),
    ("<Response><Message>own<Body/></Message></Response>", (Message(body=""),)),
]


@pytest.mark.parametrize(("document", "expected"), RCML_CASES)
def test_rcml_documents(document: str, expected: tuple) -> None:
    assert parse_rcml(document).verbs == expected
    assert parse_rcml(document.encode("utf-8")).verbs == expected


WARNING_CASES = [
    ('<Response><Sms method="PUT">x</Sms></Response>', [(Code.INVALID_SMS_METHOD, 0, "Sms", "PUT")]),
    ('<Response><Sms>ok</Sms><Redirect method="delete">/x</Redirect></Response>',
     [(Code.INVALID_REDIRECT_METHOD, 1, "Redirect", "delete")]),
    ('<Response><Message method="FETCH">x</Message><Sms method="poſt">y</Sms></Response>',
     [(Code.INVALID_SMS_METHOD, 0, "Message", "FETCH"), (Code.INVALID_SMS_METHOD, 1, "Sms", "poſt")]),
    ('<Response><Sms method="GET">x</Sms><Redirect method="post">/y</Redirect></Response>', []),
]


@pytest.mark.parametrize(("document", "expected"), WARNING_CASES)
def test_attribute_warnings(document: str, expected: list[tuple[int, int, str, str]]) -> None:
    result = parse_rcml(document)
    assert [(w.code, w.verb_index, w.verb, w.value) for w in result.warnings] == expected
    assert all(result.verbs[w.verb_index].method == "POST" for w in result.warnings)


def test_email_defaults_and_sendable() -> None:
    (email,) = parse_rcml('<Response><Email to="a@x.org" from="b@x.org">hi</Email></Response>').verbs
    assert email == Email(to="a@x.org", from_="b@x.org", body="hi", subject="Restcomm Email Service")
    assert email.is_sendable
    (missing,) = parse_rcml('<Response><Email to="a@x.org">hi</Email></Response>').verbs
    assert not missing.is_sendable


# --------------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------------

_DOC = "<Response><Sms>café ✓</Sms></Response>"

ENCODING_CASES = [
    pytest.param(_DOC.encode("utf-8"), None, id="utf8-no-declaration"),
    pytest.param(codecs.BOM_UTF8 + _DOC.encode("utf-8"), None, id="utf8-bom"),
    pytest.param(_DOC.encode("utf-16"), None, id="utf16-bom"),
    pytest.param(("<?xml version='1.0' encoding='utf-16'?>" + _DOC).encode("utf-16"), None, id="utf16-declared"),
    pytest.param(("<?xml version='1.0' encoding='utf-32'?>" + _DOC).encode("utf-32"), None, id="utf32-bom"),
    pytest.param("<?xml version='1.0' encoding='ISO-8859-1'?><Response><Sms>café &#x2713;</Sms></Response>"
                 .encode("latin-1"), None, id="latin1-declared"),
    pytest.param("<Response><Sms>café &#x2713;</Sms></Response>".encode("latin-1"), "ISO-8859-1",
                 id="latin1-http-charset"),
    pytest.param(("<?xml version='1.0' encoding='ISO-8859-1'?>" + _DOC).encode("utf-8"), "utf-8",
                 id="http-charset-beats-declaration"),
    pytest.param(_DOC.encode("utf-8"), "no-such-charset", id="unknown-http-charset-ignored"),
    pytest.param("\ufeff" + _DOC, None, id="str-with-bom"),
]


@pytest.mark.parametrize(("data", "charset"), ENCODING_CASES)
def test_encodings(data: bytes | str, charset: str | None) -> None:
    assert parse_rcml(data, charset=charset).verbs == (Sms(body="café ✓"),)


# --------------------------------------------------------------------------------------------
# Refused documents
# --------------------------------------------------------------------------------------------

XXE = """<?xml version="1.0"?>
<!DOCTYPE Response [<!ENTITY xxe SYSTEM "file://{secret}">]>
<Response><Sms>&xxe;</Sms></Response>"""

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]><Response><Sms>&lol9;</Sms></Response>"
)

QUADRATIC = '<!DOCTYPE r [<!ENTITY a "' + "x" * 50_000 + '">]><Response><Sms>' + "&a;" * 2000 + "</Sms></Response>"

EXTERNAL_DTD = '<?xml version="1.0"?><!DOCTYPE Response SYSTEM "file://{secret}"><Response><Sms>x</Sms></Response>'

PARAMETER_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE Response [<!ENTITY % ext SYSTEM "file://{secret}"> %ext;]>'
    "<Response><Sms>x</Sms></Response>"
)

REFUSED_CASES = [
    pytest.param("", Code.DOCUMENT_PARSE_FAILURE, id="empty"),
    pytest.param(" \n\t ", Code.DOCUMENT_PARSE_FAILURE, id="whitespace"),
    pytest.param("Thanks, got it", Code.DOCUMENT_PARSE_FAILURE, id="plain-text"),
    pytest.param("<html><body>Not Found</body>", Code.DOCUMENT_PARSE_FAILURE, id="html-error-page"),
    pytest.param("<Response><Sms>x</Response>", Code.DOCUMENT_PARSE_FAILURE, id="mismatched-tag"),
    pytest.param("<Response><Sms>x</Sms>", Code.DOCUMENT_PARSE_FAILURE, id="unclosed-root"),
    pytest.param("<Response/><Response/>", Code.DOCUMENT_PARSE_FAILURE, id="two-roots"),
    pytest.param("<Response><Sms to=+1>x</Sms></Response>", Code.DOCUMENT_PARSE_FAILURE, id="unquoted-attribute"),
    pytest.param('<Response><Sms to="a" to="b">x</Sms></Response>', Code.DOCUMENT_PARSE_FAILURE,
                 id="duplicate-attribute"),
    pytest.param("<Response><Sms>&foo;</Sms></Response>", Code.DOCUMENT_PARSE_FAILURE, id="unknown-entity"),
    pytest.param("<Response><Sms>\x01</Sms></Response>", Code.DOCUMENT_PARSE_FAILURE, id="control-character"),
    pytest.param(b"<Response><Sms>\xff\xfe\xfd</Sms></Response>", Code.DOCUMENT_PARSE_FAILURE, id="bad-utf8"),
    pytest.param(b"<?xml version='1.0' encoding='x-nope'?><Response/>", Code.DOCUMENT_PARSE_FAILURE,
                 id="unknown-declared-encoding"),
    pytest.param(codecs.BOM_UTF16_LE + b"\x00\xd8<\x00", Code.DOCUMENT_PARSE_FAILURE, id="bad-utf16"),
    pytest.param("<!DOCTYPE Response><Response><Sms>x</Sms></Response>", Code.DOCUMENT_PARSE_FAILURE,
                 id="harmless-doctype-still-refused"),
    pytest.param(BILLION_LAUGHS, Code.DOCUMENT_PARSE_FAILURE, id="billion-laughs"),
    pytest.param(QUADRATIC, Code.DOCUMENT_PARSE_FAILURE, id="quadratic-blowup"),
    pytest.param("<Sms>x</Sms>", Code.ROOT_MUST_BE_RESPONSE, id="verb-as-root"),
    pytest.param("<response><Sms>x</Sms></response>", Code.ROOT_MUST_BE_RESPONSE, id="lowercase-root"),
    pytest.param("<Responses/>", Code.ROOT_MUST_BE_RESPONSE, id="misspelled-root"),
    pytest.param("<html><body>oops</body></html>", Code.ROOT_MUST_BE_RESPONSE, id="html-root"),
    pytest.param("<Response>" + "x" * MAX_DOCUMENT_BYTES + "</Response>", Code.RESPONSE_BODY_TOO_LARGE,
                 id="too-large-str"),
    pytest.param(b"<Response>" + b"x" * MAX_DOCUMENT_BYTES + b"</Response>", Code.RESPONSE_BODY_TOO_LARGE,
                 id="too-large-bytes"),
    pytest.param("<Response><Sms>" + "é" * (MAX_DOCUMENT_BYTES // 2) + "</Sms></Response>",
                 Code.RESPONSE_BODY_TOO_LARGE, id="too-large-counted-in-utf8-bytes"),
]


@pytest.mark.parametrize(("document", "code"), REFUSED_CASES)
def test_refused_documents(document: str | bytes, code: int) -> None:
    with pytest.raises(RcmlParseError) as info:
        parse_rcml(document)
    assert info.value.code == code


@pytest.mark.parametrize("template", [XXE, EXTERNAL_DTD, PARAMETER_ENTITY], ids=["xxe", "external-dtd", "param-entity"])
def test_external_references_are_never_read(template: str, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-CONTENT")
    document = template.format(secret=secret)
    with pytest.raises(RcmlParseError) as info:
        parse_rcml(document)
    assert info.value.code == Code.DOCUMENT_PARSE_FAILURE
    # The refusal must come from the DTD ban, not from a lucky later failure.
    assert "DTDForbidden" in info.value.message
    assert "TOPSECRET" not in info.value.message


def test_parse_error_is_catchable_as_rcml_error_only() -> None:
    with pytest.raises(RcmlParseError) as info:
        parse_rcml("<nope")
    assert not isinstance(info.value, ValueError | SyntaxError)
    assert info.value.level == 0


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    depth = 50_000
    document = "<Response><Message><Body>x" + "<a>" * depth + "</a>" * depth + "y</Body></Message></Response>"
    result = parse_rcml(document, max_bytes=len(document))
    assert result.verbs == (Message(body="xy"),)


def test_size_cap_is_inclusive() -> None:
    document = "<Response><Sms>ok</Sms></Response>"
    assert parse_rcml(document, max_bytes=len(document)).verbs == (Sms(body="ok"),)
    with pytest.raises(RcmlParseError) as info:
        parse_rcml(document, max_bytes=len(document) - 1)
    assert info.value.code == Code.RESPONSE_BODY_TOO_LARGE


def test_custom_verb_table() -> None:
    result = parse_rcml("<Response><Sms>x</Sms><Redirect>/y</Redirect></Response>", verbs={})
    assert result.verbs == (Unsupported("Sms"), Unsupported("Redirect"))


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


def _xml_char(c: str) -> bool:
    o = ord(c)
    return o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


xml_text = st.text(st.characters(exclude_categories=("Cs",)).filter(_xml_char), max_size=200)


def _parses_or_refuses(data: str | bytes) -> None:
    try:
        result = parse_rcml(data)
    except RcmlParseError as exc:
        assert exc.code in (Code.DOCUMENT_PARSE_FAILURE, Code.ROOT_MUST_BE_RESPONSE, Code.RESPONSE_BODY_TOO_LARGE)
    else:
        assert isinstance(result, ParsedRcml)


@settings(max_examples=300)
@given(st.text())
def test_any_text_parses_or_raises_rcml_parse_error(data: str) -> None:
    _parses_or_refuses(data)


@settings(max_examples=300)
@given(st.binary())
def test_any_bytes_parse_or_raise_rcml_parse_error(data: bytes) -> None:
    _parses_or_refuses(data)


FRAGMENTS = [
    "<Response>", "</Response>", "<Sms", ">", "</Sms>", "<Message>", "</Message>", "<Body>", "</Body>",
    "<Media/>", "<Redirect method='PUT'>", "</Redirect>", "<Email to='a' from='b'>", "</Email>",
    '<?xml version="1.0" encoding="UTF-8"?>', "<!DOCTYPE Response>", "<!ENTITY x 'y'>", "&", "&amp;",
    "&x;", "&#0;", "&#x110000;", "<![CDATA[", "]]>", "<!--", "-->", "<?pi?>", " method=", "'GET'", '"',
    "\r\n", "\t", "é", "\ufeff", "\x00", "xmlns='urn:x'", "<a:b xmlns:a='u'>", "</a:b>",
]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(FRAGMENTS) | xml_text, max_size=30), st.booleans())
def test_xml_like_noise_parses_or_raises_rcml_parse_error(parts: list[str], as_bytes: bool) -> None:
    document = "".join(parts)
    _parses_or_refuses(document.encode("utf-8", "surrogatepass") if as_bytes else document)


def _twilio_trim(text: str) -> str:
    # The XML parser normalises line ends before we see the text; then outer XML whitespace goes.
    return text.replace("\r\n", "\n").replace("\r", "\n").strip(" \t\n")


@settings(max_examples=300)
@given(
    body=xml_text,
    to=st.none() | st.from_regex(r"\+[0-9]{1,15}", fullmatch=True),
    action=st.none() | xml_text,
    method=st.sampled_from([None, "GET", "POST", "get", "post"]),
    media=st.lists(st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9/]{0,20}", fullmatch=True), max_size=3),
    use_body_child=st.booleans(),
)
def test_generator_round_trip(
    body: str, to: str | None, action: str | None, method: str | None, media: list[str], use_body_child: bool
) -> None:
    response = MessagingResponse()
    message = TwimlMessage(to=to, action=action, method=method)
    if use_body_child:
        message.body(body)
    elif body:
        message.append(body)
    for url in media:
        message.media(url)
    response.append(message)

    result = parse_rcml(response.to_xml())
    (parsed,) = result.verbs
    assert isinstance(parsed, Message)
    assert parsed.body == _twilio_trim(body)
    assert parsed.to == to
    expected_action = action.strip(" \t\r\n") if action else None
    # Attribute values are normalised by XML (tab/newline become spaces) before trimming.
    if expected_action is not None and not any(c in action for c in "\t\r\n"):
        assert parsed.action == (expected_action or None)
    assert parsed.method == (method or "POST").upper()
    assert parsed.media == tuple(media)
    assert result.warnings == ()


# --------------------------------------------------------------------------------------------
# Relative URLs
# --------------------------------------------------------------------------------------------

BASE = "https://app.example.com:8443/sms/incoming.xml?step=1"

RESOLVE_CASES = [
    ("next.xml", "https://app.example.com:8443/sms/next.xml"),
    ("/other", "https://app.example.com:8443/other"),
    ("/next?step=2", "https://app.example.com:8443/next?step=2"),
    ("?step=2", "https://app.example.com:8443/sms/incoming.xml?step=2"),
    ("../up.xml", "https://app.example.com:8443/up.xml"),
    ("./same-dir", "https://app.example.com:8443/sms/same-dir"),
    ("//cdn.example.net/x", "https://cdn.example.net/x"),
    ("http://elsewhere.example/a?b=c", "http://elsewhere.example/a?b=c"),
    ("  next.xml \n", "https://app.example.com:8443/sms/next.xml"),
    (BASE, BASE),
    ("#frag", BASE + "#frag"),
]


@pytest.mark.parametrize(("relative", "expected"), RESOLVE_CASES)
def test_resolve_url(relative: str, expected: str) -> None:
    assert resolve_url(BASE, relative) == expected


@pytest.mark.parametrize(
    "relative",
    ["", "   ", "ftp://example.com/x", "mailto:a@example.com", "javascript:alert(1)", "http://",
     "http://example.com:99999/", "http://example.com:port/", "http://[::1/", "/a b", "/tab\there", "/nul\x00"],
)
def test_resolve_url_invalid(relative: str) -> None:
    with pytest.raises(RcmlUrlError) as info:
        resolve_url(BASE, relative)
    assert info.value.code == Code.INVALID_URL


def test_resolve_url_needs_an_absolute_base() -> None:
    with pytest.raises(RcmlUrlError):
        resolve_url("/relative/base.xml", "next.xml")


# --------------------------------------------------------------------------------------------
# Notification code table
# --------------------------------------------------------------------------------------------

LEVELS = [
    (11100, LogLevel.ERROR, "restcomm"),
    (11200, LogLevel.ERROR, "twilio"),
    (11205, LogLevel.ERROR, "restcomm"),
    (11206, LogLevel.ERROR, "restcomm"),
    (11215, LogLevel.ERROR, "twilio"),
    (11750, LogLevel.ERROR, "twilio"),
    (12100, LogLevel.ERROR, "twilio"),
    (12102, LogLevel.ERROR, "twilio"),
    (12300, LogLevel.WARNING, "restcomm"),
    (13710, LogLevel.WARNING, "restcomm"),
    (14101, LogLevel.ERROR, "restcomm"),
    (14102, LogLevel.ERROR, "restcomm"),
    (14103, LogLevel.ERROR, "restcomm"),
    (14104, LogLevel.WARNING, "restcomm"),
    (14110, LogLevel.WARNING, "restcomm"),
]


@pytest.mark.parametrize(("code", "level", "origin"), LEVELS)
def test_notification_levels_follow_the_reference(code: int, level: LogLevel, origin: str) -> None:
    row = notification_code(code)
    assert (row.code, row.level, row.origin) == (code, level, origin)
    assert row.message and row.when


def test_every_named_code_has_a_row_and_log_values_match_restcomm() -> None:
    assert set(SMS_NOTIFICATION_CODES) == {int(c) for c in Code}
    assert (int(LogLevel.ERROR), int(LogLevel.WARNING)) == (0, 1)
    with pytest.raises(KeyError):
        notification_code(99999)


def test_more_info_url() -> None:
    assert more_info_url("https://h/restcomm/errors/", Code.INVALID_CONTENT_TYPE) == "https://h/restcomm/errors/12300.html"


def test_exceptions_carry_code_and_level() -> None:
    error = RcmlParseError(Code.ROOT_MUST_BE_RESPONSE, "x")
    assert (error.code, error.level, str(error)) == (12102, LogLevel.ERROR, "x")
    url_error = RcmlUrlError("bad")
    assert url_error.code == 11100 and isinstance(url_error, ValueError)
