"""What the access routes read of a request (meter/access/views/exchange.py, routes.py, schemas.py), read
without werkzeug's request object and `ipaddress` on the hot path, must mean what those would say.
Each test holds the fast reading to its reference on inputs chosen to tell them apart."""

from __future__ import annotations

import ipaddress
import json
import socket

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from meter.access.views.exchange import Incoming, json_bytes
from meter.platform.schemas import AccessBody


def _first_values(multidict) -> dict[str, str]:
    """What werkzeug's `.get(name)` answers for each name it holds (a name's first value)."""
    return {name: multidict.get(name) for name in multidict}


QUERIES = [
    "",
    "lang=en",
    "lang=en&lang=id",  # the first wins, as request.args.get says
    "lang=&lang=id",
    "lang",
    "a=1&&b=2&",
    "next=https%3A%2F%2Ftempo.co%2Fa%3Fb%3Dc&lang=id",
    "q=a+b%20c",
    "bad=%zz%&ok=1",  # a bad escape is left as it is
    "utf=%E2%9C%93&latin=%E9",  # a byte that is not UTF-8
    "semi=a;b=c",
    "__amp_source_origin=https%3A%2F%2Ftempo.co&rid=AMP-1&url=https%3A%2F%2Ftempo.co%2F1",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_query_reads_as_werkzeugs_request_args(query):
    environ = EnvironBuilder(path="/amp/tempo/authorization", query_string=query).get_environ()
    assert Incoming(environ, b"").query == _first_values(Request(environ).args)


# The query's reading pinned to values, not only to werkzeug's: the reading re-quotes bytes that are
# not UTF-8 by its own codec error handler, and these hold it to what werkzeug's did.
PINNED_QUERIES = [
    ("a=%ff%FE", {"a": "%FF%FE"}),  # invalid bytes come back percent-encoded, in upper case
    ("latin=%E9", {"latin": "%E9"}),
    ("a=%e9%41", {"a": "%E9A"}),  # only the bad byte: the valid one after it is decoded
    ("a=%E2%9C", {"a": "%E2%9C"}),  # a truncated sequence
    ("a=%E2%9C%93%E2", {"a": "\u2713%E2"}),
    ("a=%ED%A0%80", {"a": "%ED%A0%80"}),  # an encoded surrogate is not UTF-8
    ("a=%C0%AF", {"a": "%C0%AF"}),  # an overlong form neither
    ("a=%F0%9F%98%80", {"a": "\U0001f600"}),
    ("k%ff=v", {"k%FF": "v"}),  # names as values
    ("x=\xc3\xa9", {"x": "\u00e9"}),  # raw UTF-8 bytes (WSGI hands them over as latin-1)
    ("a+b=c+d", {"a b": "c d"}),
    ("a=b c", {"a": "b c"}),
    ("q=%2B%20+", {"q": "+  "}),
    ("%=%%25", {"%": "%%"}),
    ("bad=%zz%&ok=1", {"bad": "%zz%", "ok": "1"}),
    ("a=%00", {"a": "\x00"}),
]


@pytest.mark.parametrize(("query", "expected"), PINNED_QUERIES)
def test_the_query_reads_to_pinned_values(query, expected):
    got = Incoming({"QUERY_STRING": query}, b"").query
    assert got == expected
    assert got == _first_values(Request({"QUERY_STRING": query}).args)


def test_a_raw_byte_that_is_not_utf8_fails_the_query_as_werkzeugs_args():
    """Raw (not percent-encoded) bytes that are not UTF-8 fail both readings alike (the app never
    hands them over: meter.platform.query_bytes escapes them first)."""
    with pytest.raises(UnicodeDecodeError):
        dict(Incoming({"QUERY_STRING": "x=\xe9"}, b"").query)
    with pytest.raises(UnicodeDecodeError):
        dict(Request({"QUERY_STRING": "x=\xe9"}).args)


COOKIES = [
    "",
    "meter_anon=mv-1",
    "meter_anon=mv-1; meter_anon=mv-2",  # the first wins, as request.cookies.get says
    'meter_r_tempo="quoted\\"value"; lang=en',
    "junk; meter_lang=id;;  other = x ",
    "meter_lang=%E2%9C%93",
]


@pytest.mark.parametrize("cookie", COOKIES)
def test_the_cookies_read_as_werkzeugs_request_cookies(cookie):
    environ = EnvironBuilder(path="/embed/tempo/access", headers={"Cookie": cookie} if cookie else {}).get_environ()
    got = Incoming(environ, b"").cookies
    assert got == _first_values(Request(environ).cookies)
    assert got.get("absent") is None


ADDRESSES = [
    "203.0.113.7",
    "0.0.0.0",
    "255.255.255.255",
    " 66.249.66.1 ",  # surrounding space is trimmed, as before
    "01.2.3.4",  # leading zeros: refused by both
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "1.2.3.-1",
    "0x1.2.3.4",
    "127.1",
    "1.2.3.4/8",
    "1.2.3.4\x00",
    "\u0661.2.3.4",  # a digit that is not ASCII (ARABIC-INDIC ONE)
    "2001:db8::1",
    "2001:DB8:0:0:0:0:0:1",  # written back as Python writes it
    "::ffff:66.249.66.1",
    "fe80::1%eth0",
    "not-an-address",
]


def _reference(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


@pytest.mark.parametrize("value", ADDRESSES)
def test_a_client_address_is_accepted_and_written_as_ipaddress_would(value):
    body = {"article": {"id": "tempo:1"}, "client": {"ip": value}}
    expected = _reference(value)
    if expected is None:
        with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
            AccessBody.model_validate(body)
    else:
        assert AccessBody.model_validate(body).client.ip == expected


def test_the_c_librarys_ipv4_check_refuses_what_ipaddress_refuses():
    """The premise of the fast check: every string inet_pton takes as IPv4 is one that `ipaddress`
    takes and writes back unchanged (checked over every shape of short dotted number)."""
    parts = ["0", "00", "01", "1", "9", "10", "099", "255", "256", "1000", "", "-1", "+1", " 1"]
    for a in parts:
        for b in parts:
            text = f"{a}.{b}.3.4"
            try:
                socket.inet_pton(socket.AF_INET, text)
            except OSError:
                continue
            assert _reference(text) == text


# What the answers hold: strings (any character, control characters, DEL, beyond ASCII, lone
# surrogates), integers of any size, booleans, null, lists and objects; never a float.
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.text(), _JSON_VALUES, max_size=6))
@example(payload={"wall": {"body": "lagi pada 1\u00a0Januari\u00a02027."}})  # a date's no-break spaces
@example(payload={"a": '\x00\x1f\x7f\b\f\n\r\t"\\/', "b": 2**70, "c": -(2**63), "d": [True, None]})
@example(payload={"surrogate": "\ud800"})
def test_an_answer_is_encoded_as_the_json_modules_compact_dumps(payload):
    """`json_bytes` writes what `json.dumps(..., separators=(",", ":"))` writes, byte for byte."""
    assert json_bytes(payload) == json.dumps(payload, separators=(",", ":")).encode()


# Queries of what a query string is made of, escapes good and bad among them (ASCII: raw bytes are
# escaped before anything reads a query, meter.platform.query_bytes).
_QUERY_PARTS = st.sampled_from(
    [
        "a",
        "b",
        "lang",
        "=",
        "&",
        "&&",
        "+",
        "%",
        "%2",
        "%20",
        "%2B",
        "%26",
        "%3D",
        "%E9",
        "%e2%9c%93",
        "%C3%A9",
        "%F0%9F%98%80",
        "%ED%A0%80",
        "%zz",
        ";",
        " ",
        "x y",
    ]
)


@settings(max_examples=500, deadline=None)
@given(query=st.lists(_QUERY_PARTS | st.text(st.characters(max_codepoint=127), max_size=3), max_size=12).map("".join))
def test_any_ascii_query_reads_as_werkzeugs_request_args(query):
    """The query's fast reading of an ASCII query (every query, behind EscapeRawQueryBytes) is what
    werkzeug's `request.args` reads, for any mix of names, values, separators and escapes."""
    environ = EnvironBuilder(path="/amp/tempo/authorization").get_environ()
    environ["QUERY_STRING"] = query
    assert Incoming(environ, b"").query == _first_values(Request(environ).args)
