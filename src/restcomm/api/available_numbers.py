"""AvailablePhoneNumbers: search the operator's number inventory for numbers nobody holds yet.

There is no provider to buy from: the operator lists the numbers this server may hand out in the
TOML file, one ``[[available_phone_numbers]]`` table each::

    [[available_phone_numbers]]
    phone_number = "+15105550100"     # required; normalized to E.164
    friendly_name = "(510) 555-0100"  # default: the national format
    iso_country = "US"                # default: the number's country
    type = "local"                    # local | tollfree | mobile (default local)
    region = "CA"
    postal_code = "94612"
    rate_center = "OKLD"
    lata = 722
    latitude = 37.8
    longitude = -122.27
    cost = "1.00"
    capabilities = ["voice", "sms"]   # or a table {voice = true, sms = true, mms = false}
                                      # default: voice and SMS

A search returns the inventory of the country and type, minus the numbers provisioned as
IncomingPhoneNumbers (in any account), filtered by the query. Like Restcomm the JSON answer is a
bare array of camelCase objects (the provider objects Restcomm serialises).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from starlette.responses import Response

from restcomm.api.errors import ApiError
from restcomm.api.framework import Call, Param, operation
from restcomm.api.shapes import Shape, col, computed
from restcomm.config import Settings
from restcomm.phone import contains_regex, has_area_code, iso_country, national_format, to_e164
from restcomm.store.compiled import Query
from restcomm.store.schema import incoming_phone_numbers

log = logging.getLogger("restcomm.numbers")

TAG = "AvailablePhoneNumbers"
NUMBER_TYPES = {"Local": "local", "TollFree": "tollfree", "Mobile": "mobile"}
CAPABILITIES = ("voice", "sms", "mms", "fax", "ussd")
DEFAULT_CAPABILITIES = frozenset({"voice", "sms"})


@dataclass(frozen=True)
class InventoryNumber:
    phone_number: str
    friendly_name: str
    iso_country: str | None
    type: str
    region: str | None = None
    postal_code: str | None = None
    rate_center: str | None = None
    lata: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    cost: str | None = None
    capabilities: frozenset[str] = DEFAULT_CAPABILITIES

    def capable(self, what: str) -> bool:
        return what in self.capabilities

    def as_row(self) -> dict[str, Any]:
        row = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "capabilities"}
        for c in CAPABILITIES:
            row[f"{c}_capable"] = c in self.capabilities
        return row


def number_type(text: str) -> str:
    """"Toll-Free", "toll_free", "TollFree" -> "tollfree"."""
    return "".join(ch for ch in str(text).lower() if ch.isalnum())


def _capabilities(entry: Mapping[str, Any]) -> frozenset[str]:
    raw = entry.get("capabilities")
    if isinstance(raw, list | tuple):
        return frozenset(str(c).lower() for c in raw)
    if isinstance(raw, Mapping):
        return frozenset(str(k).lower() for k, v in raw.items() if v)
    flat = {c for c in CAPABILITIES if f"{c}_capable" in entry}
    if flat:
        return frozenset(c for c in CAPABILITIES if entry.get(f"{c}_capable", c in DEFAULT_CAPABILITIES))
    return DEFAULT_CAPABILITIES


def _optional(value: Any, kind: type) -> Any:
    if value is None or value == "":
        return None
    return kind(value)


def parse_inventory(entries: Iterable[Mapping[str, Any]]) -> tuple[InventoryNumber, ...]:
    """The configured inventory, normalized; malformed entries are logged and skipped."""
    out: list[InventoryNumber] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, Mapping) or not entry.get("phone_number"):
                raise ValueError("phone_number is required")
            raw = str(entry["phone_number"])
            e164 = to_e164(raw)
            if e164 is None:
                raise ValueError(f"{raw!r} is not a phone number")
            kind = number_type(entry.get("type", "local"))
            if kind not in NUMBER_TYPES.values():
                raise ValueError(f"type must be local, tollfree or mobile, not {entry.get('type')!r}")
            country = entry.get("iso_country") or iso_country(e164)
            item = InventoryNumber(
                phone_number=e164,
                friendly_name=str(entry.get("friendly_name") or national_format(e164)),
                iso_country=str(country).upper() if country else None,
                type=kind,
                region=_optional(entry.get("region"), str),
                postal_code=_optional(entry.get("postal_code"), str),
                rate_center=_optional(entry.get("rate_center"), str),
                lata=_optional(entry.get("lata"), int),
                latitude=_optional(entry.get("latitude"), float),
                longitude=_optional(entry.get("longitude"), float),
                cost=_optional(entry.get("cost"), str),
                capabilities=_capabilities(entry),
            )
        except (TypeError, ValueError) as exc:
            log.warning("available_phone_numbers entry %d ignored: %s", i + 1, exc)
            continue
        if item.phone_number in seen:
            log.warning("available_phone_numbers entry %d ignored: %s is listed twice", i + 1, item.phone_number)
            continue
        seen.add(item.phone_number)
        out.append(item)
    return tuple(out)


_CACHE: dict[int, tuple[object, tuple[InventoryNumber, ...], dict[str, InventoryNumber]]] = {}


def _parsed(settings: Settings) -> tuple[object, tuple[InventoryNumber, ...], dict[str, InventoryNumber]]:
    entries = settings.available_phone_numbers
    cached = _CACHE.get(id(entries))
    if cached is None or cached[0] is not entries:
        items = parse_inventory(entries or ())
        cached = (entries, items, {n.phone_number: n for n in items})
        _CACHE[id(entries)] = cached
    return cached


def inventory(settings: Settings) -> tuple[InventoryNumber, ...]:
    """The parsed inventory of these settings (parsed once per settings object)."""
    return _parsed(settings)[1]


def inventory_entry(settings: Settings, e164: str) -> InventoryNumber | None:
    return _parsed(settings)[2].get(e164)


@dataclass(frozen=True)
class Search:
    iso_country: str | None = None
    type: str | None = None
    area_code: str | None = None
    contains: str | None = None
    in_region: str | None = None
    in_postal_code: str | None = None
    in_rate_center: str | None = None
    in_lata: str | None = None
    capabilities: tuple[tuple[str, bool], ...] = ()

    def matches(self, n: InventoryNumber) -> bool:
        if self.iso_country is not None and (n.iso_country or "") != self.iso_country.upper():
            return False
        if self.type is not None and n.type != self.type:
            return False
        if self.area_code is not None and not has_area_code(n.phone_number, self.area_code):
            return False
        if self.contains is not None and not contains_regex(self.contains).search(n.phone_number):
            return False
        if self.in_region is not None and (n.region or "").lower() != self.in_region.lower():
            return False
        if self.in_postal_code is not None and (n.postal_code or "") != self.in_postal_code:
            return False
        if self.in_rate_center is not None and (n.rate_center or "").lower() != self.in_rate_center.lower():
            return False
        if self.in_lata is not None and str(n.lata) != self.in_lata:
            return False
        return all(n.capable(c) == wanted for c, wanted in self.capabilities)


def search(items: Iterable[InventoryNumber], query: Search, taken: set[str], limit: int) -> list[InventoryNumber]:
    """Inventory numbers that match and nobody holds, in phone-number order, at most ``limit``."""
    found = sorted((n for n in items if n.phone_number not in taken and query.matches(n)), key=lambda n: n.phone_number)
    return found[:limit]


_PROVISIONED = Query(select(incoming_phone_numbers.c.phone_number)
                     .where(incoming_phone_numbers.c.phone_number.in_(bindparam("numbers", expanding=True))))


async def provisioned(call: Call, phone_numbers: Iterable[str]) -> set[str]:
    """Which of these numbers are already IncomingPhoneNumbers (of any account)."""
    wanted = list(phone_numbers)
    taken: set[str] = set()
    for i in range(0, len(wanted), 500):
        rows = await call.fetch_all(_PROVISIONED, {"numbers": wanted[i : i + 500]})
        taken.update(r["phone_number"] for r in rows)
    return taken


# ---------------------------------------------------------------------------------------------
# Wire shapes. JSON is flat camelCase with nulls omitted; XML nests the capabilities and writes
# every element (empty when unknown), as Restcomm's converter does.

AVAILABLE_NUMBER = Shape(
    name="AvailablePhoneNumber",
    list_name="AvailablePhoneNumbers",
    items_key="available_phone_numbers",
    fields=(
        col("friendlyName", "FriendlyName", column="friendly_name"),
        col("phoneNumber", "PhoneNumber", column="phone_number"),
        col("lata", "Lata", type="integer"),
        col("rateCenter", "RateCenter", column="rate_center"),
        col("latitude", "Latitude", type="number"),
        col("longitude", "Longitude", type="number"),
        col("region", "Region"),
        col("postalCode", "PostalCode", column="postal_code"),
        col("isoCountry", "IsoCountry", column="iso_country"),
        col("cost", "Cost"),
        col("voiceCapable", "VoiceCapable", type="boolean", column="voice_capable"),
        col("smsCapable", "SmsCapable", type="boolean", column="sms_capable"),
        col("mmsCapable", "MmsCapable", type="boolean", column="mms_capable"),
        col("faxCapable", "FaxCapable", type="boolean", column="fax_capable"),
        col("ussdCapable", "UssdCapable", type="boolean", column="ussd_capable"),
    ),
)

_XML_CAPABILITIES = Shape(
    name="Capabilities",
    list_name="",
    items_key="",
    fields=(
        col("voice", "Voice", type="boolean", column="voice_capable"),
        col("sms", "Sms", type="boolean", column="sms_capable"),
        col("mms", "Mms", type="boolean", column="mms_capable"),
        col("fax", "Fax", type="boolean", column="fax_capable"),
    ),
)

AVAILABLE_NUMBER_XML = Shape(
    name="AvailablePhoneNumber",
    list_name="AvailablePhoneNumbers",
    items_key="available_phone_numbers",
    fields=(
        col("friendly_name", "FriendlyName", xml_empty_when_null=True),
        col("phone_number", "PhoneNumber", xml_empty_when_null=True),
        col("lata", "Lata", xml_empty_when_null=True),
        col("rate_center", "RateCenter", xml_empty_when_null=True),
        col("latitude", "Latitude", xml_empty_when_null=True),
        col("longitude", "Longitude", xml_empty_when_null=True),
        col("region", "Region", xml_empty_when_null=True),
        col("postal_code", "PostalCode", xml_empty_when_null=True),
        col("iso_country", "IsoCountry", xml_empty_when_null=True),
        computed("capabilities", "Capabilities", lambda r: r, type="object", nested=_XML_CAPABILITIES),
    ),
)

SEARCH_QUERY = (
    Param("AreaCode", max_length=3, code=21401,
          description="3-digit North American area code (numbers starting +1 and these digits)"),
    Param("Contains", max_length=32,
          description="digits and keypad letters; '*' is any one digit; matched anywhere in the number"),
    Param("InRegion", max_length=64, description="region (state or province), case-insensitive"),
    Param("InPostalCode", max_length=16),
    Param("InRateCenter", max_length=64),
    Param("InLata", max_length=8),
    Param("SmsEnabled", "boolean"),
    Param("MmsEnabled", "boolean"),
    Param("VoiceEnabled", "boolean"),
    Param("FaxEnabled", "boolean"),
    Param("UssdEnabled", "boolean"),
    Param("PageSize", "integer", minimum=1, maximum=1000, code=20007, description="at most this many numbers (50)"),
)


def check_area_code(value: str) -> str:
    if len(value) != 3 or not value.isascii() or not value.isdigit():
        raise ApiError(400, 21401, "Invalid parameter AreaCode: must be 3 digits")
    return value


def _search_from(call: Call, iso: str, kind: str) -> Search:
    q = call.query
    area = q.get("AreaCode")
    contains = q.get("Contains")
    if contains:
        try:
            contains_regex(contains)
        except ValueError as exc:
            raise ApiError(400, 20001, f"Invalid parameter Contains: {exc}") from None
    caps = tuple(
        (c, q[f"{c.capitalize()}Enabled"]) for c in CAPABILITIES if q.get(f"{c.capitalize()}Enabled") is not None
    )
    return Search(
        iso_country=iso,
        type=kind,
        area_code=check_area_code(area) if area else None,
        contains=contains or None,
        in_region=q.get("InRegion") or None,
        in_postal_code=q.get("InPostalCode") or None,
        in_rate_center=q.get("InRateCenter") or None,
        in_lata=q.get("InLata") or None,
        capabilities=caps,
    )


def _register(path_type: str, kind: str) -> None:
    @operation(
        "GET",
        f"/Accounts/{{AccountSid}}/AvailablePhoneNumbers/{{IsoCountryCode}}/{path_type}",
        summary=f"Search the inventory for {path_type} numbers nobody holds (an unknown country: empty list)",
        tag=TAG,
        query=SEARCH_QUERY,
        shape=AVAILABLE_NUMBER,
        kind="list",
    )
    async def search_numbers(call: Call) -> Response:
        await call.account()
        query = _search_from(call, call.path["IsoCountryCode"].strip(), kind)
        limit = call.query.get("PageSize", call.settings.default_page_size)
        matching = [n for n in inventory(call.settings) if query.matches(n)]
        taken = await provisioned(call, (n.phone_number for n in matching))
        rows = [n.as_row() for n in search(matching, query, taken, limit)]
        return call.bare_list(AVAILABLE_NUMBER if call.fmt == "json" else AVAILABLE_NUMBER_XML, rows)

    search_numbers.__name__ = f"search_{kind}_numbers"


for _path_type, _kind in NUMBER_TYPES.items():
    _register(_path_type, _kind)
