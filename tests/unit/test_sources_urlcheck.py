"""url_problem (sources/urlcheck.py) accepts the URLs real lists hold and names what is wrong
with the others; the malformed ones that used to fail deep in the HTTP client are in
tests/integration/test_ingest_hardening.py."""

from __future__ import annotations

import pytest

from lookalike.sources.urlcheck import url_problem


@pytest.mark.parametrize("url", [
    "http://example.com/a.jpg", "HTTPS://Example.COM/A.JPG", "http://example.com:8080/x",
    "http://example.com:/x", "http://example.com./x", "http://user:pw@example.com/x",
    "https://m\u00fcnchen.example/bild.jpg", "http://xn--mnchen-3ya.example/x",
    "http://a_b.example.com/x", "http://[2001:db8::1]:8080/x", "http://[::1]/x",
    "http://10.0.0.5/x",  # well-formed: whether it may be fetched is the guard's call
    "http://example.com/a b.jpg", "http://example.com/\u00e9t\u00e9.jpg?w=1#top",
    "http://example.com:65535/x", "http://example.com:1/x",
])
def test_well_formed_urls(url):
    assert url_problem(url) is None


@pytest.mark.parametrize("url, reason", [
    ("", "no URL"),
    ("http://example.com/" + "a" * 9000, "URL too long (9,019 characters > 8,192)"),
    ("http://example.com:65536/x", "malformed URL: port 65536 is out of range (1-65535)"),
    ("http://example.com:-1/x", "malformed URL: port '-1' is not a number"),
    ("http://[::1]:99999/x", "malformed URL: port 99999 is out of range (1-65535)"),
    ("http://example.com\t/x", "malformed URL: control character U+0009 at position 19"),
    ("http://a" + ".b" * 130 + "/", "malformed URL: host name too long (261 characters > 253)"),
    ("http://-\u00fc-..example/", "not a valid internationalised name"),
    ("http://exa%41mple.com/", "malformed URL: character '%' in host name 'exa%41mple.com'"),
    ("mailto:someone@example.com", "scheme not allowed: mailto:// (only http and https)"),
])
def test_malformed_urls_say_why(url, reason):
    assert reason in (url_problem(url) or "")
