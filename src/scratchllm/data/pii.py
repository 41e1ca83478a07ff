"""PII scrubbing: e-mail addresses and public IP addresses replaced the way FineWeb does it
(Penedo et al. 2024, datatrove's PIIFormatter), phone numbers as an option.

Replacements are plausible but fake values used in turn, not `<EMAIL>` tags, so the model
does not learn a placeholder token that never occurs in real text:
  * e-mail -> email@example.com / firstname.lastname@example.org (example domains, RFC 2606);
  * IPv4   -> one of FineWeb's six stand-in addresses, only when `ipaddress` calls the
              address global: 127.0.0.1, 10.x, 192.168.x and documentation ranges stay;
  * phone  -> 555-0100 (the range North American numbering reserves for fiction).

False hits matter as much as misses on web text full of versions and dates: an IPv4 needs
four dot-separated numbers <= 255 with no fifth part and no letter or dot glued on, and
no "version"/"section"/... just before it, so "3.12.1", "v1.2.3.4", "1.2.3.4.5", "2024.01.15"
and "section 6.4.4.2" are left alone (a bare four-part version, "zlib 1.2.0.1", is still
taken for an address); a phone number needs
10-15 digits in groups, so "2024-01-15" and "12:30:45" are too.

This module knows nothing of documents or files: text in, text and counts out.

>>> scrub("Mail bob@mail.org from 8.8.8.8, not 10.0.0.1; Python 3.12.1.", ("email", "ip"))
('Mail email@example.com from 22.214.171.124, not 10.0.0.1; Python 3.12.1.', {'email': 1, 'ip': 1})
"""

from __future__ import annotations

import ipaddress
import re
from itertools import cycle

from scratchllm.errors import UserError

KINDS = ("email", "ip", "phone")
EMAIL_REPLACEMENTS = ("email@example.com", "firstname.lastname@example.org")
IP_REPLACEMENTS = ("22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11",
                   "18.104.22.168")
PHONE_REPLACEMENT = "555-0100"

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?![\w-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# subtle: the look-arounds refuse a fifth part ("1.2.3.4.5", "1.0.0.127.in-addr.arpa"), a glued
# letter ("v1.2.3.4") and a product/version slash ("Firefox/2.0.0.11"); a sentence's full stop
# after the address is still allowed.
_IPV4 = re.compile(rf"(?<![\w.])(?<!\w/){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\w)")
# four-part version and section numbers look like addresses: the word before tells them apart
_VERSION_WORDS = re.compile(r"(?:version|versions|release|section|sections|chapter|build|revision|rev|ver|"
                            r"patch|update|firmware|v)\W{0,2}$", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\w+.:-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w.:-]\d|\w)")


def parse_kinds(spec: str) -> tuple[str, ...]:
    """'email,ip' -> ('email', 'ip'); 'none' -> (); unknown kinds are one clear error."""
    if spec.strip().lower() in ("", "none"):
        return ()
    kinds = tuple(k.strip().lower() for k in spec.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise UserError(f"unknown PII kind {', '.join(bad)}; use a comma list of {', '.join(KINDS)}, or none")
    return kinds


def _is_public_address(m: re.Match) -> bool:
    before = m.string[max(0, m.start() - 16) : m.start()]
    return ipaddress.ip_address(m.group()).is_global and not _VERSION_WORDS.search(before)


def scrub(text: str, kinds: tuple[str, ...] | list[str]) -> tuple[str, dict[str, int]]:
    """Replace each enabled kind of PII; returns the new text and how many of each were replaced."""
    counts: dict[str, int] = {}
    if "email" in kinds:
        emails = cycle(EMAIL_REPLACEMENTS)
        text, counts["email"] = _EMAIL.subn(lambda m: next(emails), text)
    if "ip" in kinds:
        ips = cycle(IP_REPLACEMENTS)
        text, counts["ip"] = _sub_if(_IPV4, _is_public_address, lambda: next(ips), text)
    if "phone" in kinds:
        # 10-15 digits: shorter groups are codes and counts, longer ones ids
        text, counts["phone"] = _sub_if(_PHONE, lambda m: 10 <= sum(c.isdigit() for c in m.group()) <= 15,
                                        lambda: PHONE_REPLACEMENT, text)
    return text, counts


def _sub_if(pattern: re.Pattern, accept, replacement, text: str) -> tuple[str, int]:
    """`pattern.subn`, but only for matches that `accept`; returns (text, replaced)."""
    n = 0

    def _one(m: re.Match) -> str:
        nonlocal n
        if not accept(m):
            return m.group()
        n += 1
        return replacement()

    return pattern.sub(_one, text), n
