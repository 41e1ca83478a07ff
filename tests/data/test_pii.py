"""PII scrubbing on tricky formats: what must be replaced, and what must not (versions, dates,
private addresses, times), with FineWeb's replacement values and per-kind counts."""

import ipaddress

import pytest

from scratchllm.data.pii import EMAIL_REPLACEMENTS, IP_REPLACEMENTS, parse_kinds, scrub
from scratchllm.errors import UserError

ALL = ("email", "ip", "phone")


@pytest.mark.parametrize("text", [
    "Python 3.12.1 was released on 2024-01-15 at 12:30:45.",
    "Dates: 15.01.2024, 2024.01.15, 01/15/2024, 1.1.2024.",
    "Versions v1.2.3.4, 1.2.3.4.5, release 2.0.0.1, section 6.4.4.2, Firefox/2.0.0.11.",
    "Private hosts 10.0.0.1, 192.168.1.20, 127.0.0.1, 172.16.0.3, 169.254.1.1 and 192.0.2.55 (docs).",
    "Not addresses: 256.1.1.1, 1.2.3, 999.999.999.999, 1.0.0.127.in-addr.arpa.",
    "Not e-mails: a@b, @handle, user@localhost, x@y.z1, name at example dot com.",
    "Numbers: ISBN 978-3-16-148410-0, order 12 345 678, pi 3.14159, 1,000,000.",
])
def test_no_false_hits(text):
    assert scrub(text, ALL) == (text, {"email": 0, "ip": 0, "phone": 0})


def test_emails_replaced_in_turn_with_example_addresses():
    text = "Write to jane.doe+news@mail.example.co.uk, or <bob_99@sub.host.org>; cc ann@x.io."
    out, counts = scrub(text, ("email",))
    assert counts == {"email": 3}
    assert out == ("Write to email@example.com, or <firstname.lastname@example.org>; cc email@example.com.")
    assert EMAIL_REPLACEMENTS == ("email@example.com", "firstname.lastname@example.org")  # FineWeb's


def test_public_ips_replaced_private_kept_and_sentence_stop_allowed():
    text = "Servers 8.8.8.8 and http://93.184.216.34/index; local 192.168.0.1. Last one: 1.1.1.1."
    out, counts = scrub(text, ("ip",))
    assert counts == {"ip": 3}
    assert out == (f"Servers {IP_REPLACEMENTS[0]} and http://{IP_REPLACEMENTS[1]}/index; local 192.168.0.1. "
                   f"Last one: {IP_REPLACEMENTS[2]}.")
    # oracle: every replaced address really is global by the standard library, every kept one is not
    assert all(ipaddress.ip_address(a).is_global for a in ("8.8.8.8", "93.184.216.34", "1.1.1.1"))
    assert not ipaddress.ip_address("192.168.0.1").is_global


def test_phones_only_when_asked():
    text = "Call (415) 555-2671, +44 20 7946 0958 or 030-1234-5678 today."
    assert scrub(text, ("email", "ip"))[0] == text
    out, counts = scrub(text, ("phone",))
    assert counts == {"phone": 3} and out == "Call 555-0100, 555-0100 or 555-0100 today."


def test_kinds_parse_and_unknown_kind_is_one_sentence():
    assert parse_kinds("email,ip") == ("email", "ip") and parse_kinds("none") == () and parse_kinds("") == ()
    with pytest.raises(UserError, match="unknown PII kind ssn"):
        parse_kinds("email,ssn")
