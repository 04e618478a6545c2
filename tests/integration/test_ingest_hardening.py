"""`lookalike ingest` against hostile or broken input, on a real HTTP server on 127.0.0.1
(image_server.py): a CSV quote left open is an error naming its line, not 97 rows lost;
loopback, private and other non-public addresses are refused (after DNS, at every redirect
hop) unless allowed; malformed URLs are rows with a reason, never a traceback; a Retry-After
over the limit fails the row for a later run instead of asking sooner; every numeric option
is checked at the CLI and in the library."""

from __future__ import annotations

import csv
import json
import re
import time
import urllib.parse
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lookalike.cli.main import app
from lookalike.errors import BoundError, SourceError
from lookalike.sources.download import DownloadOptions, Job, download
from lookalike.sources.ingest import ingest
from lookalike.sources.urls import read_urls

from .image_server import ImageServer, image_bytes

QUICK = {"concurrency": 4, "per_host": 4, "timeout": 1.0, "total_timeout": 3.0, "retries": 1,
         "backoff": 0.01, "max_backoff": 0.02, "max_retry_after": 2.0, "max_bytes": 100_000}
HINT = "pass --allow-private to fetch it"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def server():
    with ImageServer() as running:
        yield running


def write_csv(path: Path, urls: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "url"])
        writer.writerows([f"r{n}", url] for n, url in enumerate(urls, 1))
    return path


def reasons(summary) -> list[tuple[str, str]]:
    return [(r.status, r.reason) for r in summary.rows]


# --- 1. broken quoting ----------------------------------------------------------------------

def hundred_rows(tmp_path: Path, third_note: str) -> Path:
    lines = ["id,image_url,note"] + [
        f"{n},http://example.com/{n}.jpg,{third_note if n == 3 else 'fine'}"
        for n in range(1, 101)]
    path = tmp_path / "products.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_unclosed_quote_is_an_error_naming_its_line(tmp_path):
    source = hundred_rows(tmp_path, '"6 inch screen')
    with pytest.raises(SourceError) as caught:
        read_urls(source, "image_url")
    message = str(caught.value)
    assert "line 4" in message and "never closed" in message and "line 101" in message
    result = CliRunner().invoke(app, ["ingest", str(source), "--url-column", "image_url",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "line 4" in result.stderr and "ok 3" not in result.stdout
    assert not (tmp_path / "out").exists()  # nothing started


def test_a_quote_closed_rows_later_is_an_error_too(tmp_path):
    text = ("id,image_url,note\n1,http://a.example/1.jpg,fine\n"
            '2,http://a.example/2.jpg,"6 inch\n3,http://a.example/3.jpg,fine\n'
            '4,http://a.example/4.jpg,x"\n5,http://a.example/5.jpg,fine\n')
    (tmp_path / "a.csv").write_text(text)
    with pytest.raises(SourceError, match=r"line 3 runs to line 5 and holds whole rows"):
        read_urls(tmp_path / "a.csv", "image_url")
    (tmp_path / "b.csv").write_text(text.replace('x"\n', '"10 inch" screen\n'))
    with pytest.raises(SourceError, match=r"begins on line 3 breaks on line 5"):
        read_urls(tmp_path / "b.csv", "image_url")
    # Found by the fuzz test: a quote opened in the header swallowed every row into the
    # name of a column, and the file read as 0 rows.
    (tmp_path / "h.csv").write_text('id,image_url,"note\n1,http://a.example/1.jpg,\n'
                                    '2,http://a.example/2.jpg,a"\n')
    with pytest.raises(SourceError, match=r"the header that begins on line 1 runs to line 3"):
        read_urls(tmp_path / "h.csv", "image_url")
    (tmp_path / "c.csv").write_text('id,image_url\n1,"http://a.example/1.jpg"x\n')
    with pytest.raises(SourceError, match=r"c.csv line 2: ',' expected after '\"'"):
        read_urls(tmp_path / "c.csv", "image_url")


def test_legal_multiline_fields_and_line_accounting(tmp_path):
    text = ('\nid,image_url,address\n1,http://a.example/1.jpg,"Main St. 1\nSpringfield, 12345"'
            '\n\n2,http://a.example/2.jpg,"one ""quoted"" word"\n3,http://a.example/3.jpg,\n')
    (tmp_path / "a.csv").write_text(text)
    table = read_urls(tmp_path / "a.csv", "image_url", keep_columns=["address"])
    assert [(r.row, r.line) for r in table.rows] == [(1, 3), (2, 6), (3, 7)]
    assert table.rows[0].meta["address"] == "Main St. 1\nSpringfield, 12345"
    assert table.rows[1].meta["address"] == 'one "quoted" word'
    assert table.lines == 7  # blank, header, two lines of row 1, blank, rows 2 and 3


def test_a_column_read_twice_is_an_error(tmp_path):
    (tmp_path / "a.csv").write_text("url,id,url\nhttp://a.example/1.jpg,1,http://b/\n")
    with pytest.raises(SourceError, match="column 'url' appears twice"):
        read_urls(tmp_path / "a.csv", "url")


def test_plain_list_of_urls_and_utf16(tmp_path):
    (tmp_path / "list.txt").write_text("# exported\nhttp://a.example/1.jpg\n\n"
                                       "http://a.example:99999/2.jpg\n")
    table = read_urls(tmp_path / "list.txt", "url")
    assert table.kind == "text" and table.lines == 4
    assert [(r.line, r.problem) for r in table.rows] == [
        (2, None), (4, "malformed URL: port 99999 is out of range (1-65535)")]
    (tmp_path / "u16.csv").write_bytes("id,url\n1,http://a.example/\u00e9.jpg\n"
                                       .encode("utf-16"))
    table = read_urls(tmp_path / "u16.csv", "url")
    assert table.encoding == "utf-16" and table.rows[0].url.endswith("\u00e9.jpg")


# --- 2. private addresses -------------------------------------------------------------------

def test_loopback_is_refused_by_default_and_never_asked(server, tmp_path):
    port = server.port
    urls = [f"http://127.0.0.1:{port}/img/201.jpg", f"http://localhost:{port}/img/202.jpg",
            f"http://[::ffff:127.0.0.1]:{port}/img/203.jpg", f"http://0x7f.1:{port}/img/204.jpg",
            f"http://2130706433:{port}/img/205.jpg", "http://10.0.0.5/x.jpg",
            "http://169.254.169.254/latest/meta-data/", f"http://0.0.0.0:{port}/img/206.jpg",
            f"http://[::1]:{port}/img/207.jpg"]
    source = write_csv(tmp_path / "urls.csv", urls)
    summary = ingest(source, "url", tmp_path / "out", options=DownloadOptions(**QUICK))
    got = reasons(summary)
    assert all(status == "failed" and reason.startswith("refused: ") and reason.endswith(HINT)
               for status, reason in got), got
    assert got[0][1] == f"refused: 127.0.0.1 is a loopback address; {HINT}"
    assert got[1][1].startswith("refused: localhost resolves to ")
    assert "IPv4-mapped form of 127.0.0.1, a loopback address" in got[2][1]
    assert "0x7f.1 resolves to 127.0.0.1" in got[3][1]
    assert got[5][1] == f"refused: 10.0.0.5 is a private address; {HINT}"
    assert "169.254.169.254 is a link-local address" in got[6][1]
    assert "0.0.0.0 is an unspecified address" in got[7][1]
    assert [r.attempts for r in summary.rows] == [1] * len(urls)  # not retried in the run
    assert not any(r.permanent for r in summary.rows)  # a re-run may allow them
    assert not any(path.startswith("/img/20") for path in server.hits)  # nothing was asked
    allowed = ingest(source, "url", tmp_path / "out",
                     options=DownloadOptions(**QUICK, allow_private=True))
    assert [r.status for r in allowed.rows][:5] == ["ok"] * 5  # the re-run fetched them


def test_redirect_hops_are_checked(server, tmp_path):
    port = server.port
    to = lambda target: server.url("/location/" + urllib.parse.quote(target, safe=""))
    urls = [server.url("/redirect-host/127.0.0.2/211.jpg"),
            to("http://10.0.0.5/secret"), to(f"http://[::ffff:127.0.0.2]:{port}/x"),
            server.url("/redirect-host/localhost/212.jpg"),  # localhost is 127.0.0.1: allowed
            server.url("/redirect/2/213.jpg")]
    source = write_csv(tmp_path / "urls.csv", urls)
    options = DownloadOptions(**QUICK, allow_networks=("127.0.0.1/32",))
    got = reasons(ingest(source, "url", tmp_path / "out", id_column="id", options=options))
    assert got[0] == ("failed", (f"redirect to http://127.0.0.2:{port}/img/211.jpg: refused: "
                                 f"127.0.0.2 is a loopback address; {HINT}"))
    assert got[1] == ("failed", ("redirect to http://10.0.0.5/secret: refused: 10.0.0.5 is a "
                                 f"private address; {HINT}"))
    assert "IPv4-mapped form of 127.0.0.2" in got[2][1]
    assert got[3] == ("ok", "downloaded") and got[4] == ("ok", "downloaded")
    assert (tmp_path / "out" / "r4.jpg").read_bytes() == image_bytes(212)


def test_a_proxy_from_the_environment_does_not_bypass_the_check(monkeypatch, tmp_path):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    jobs = [Job(1, "http://10.0.0.5/x.jpg", "a")]
    refused = download(jobs, tmp_path, DownloadOptions(**QUICK))
    assert refused[0].reason == f"refused: 10.0.0.5 is a private address; {HINT}"
    allowed = download(jobs, tmp_path, DownloadOptions(**QUICK, allow_private=True))
    assert allowed[0].reason.startswith("cannot connect")  # it went to the proxy


def test_cli_refuses_and_explains(server, tmp_path):
    source = write_csv(tmp_path / "urls.csv", [server.url("/img/221.jpg")])
    argv = ["ingest", str(source), "--out", str(tmp_path / "out"), "--retries", "0",
            "--strict"]
    refused = CliRunner().invoke(app, argv)
    assert refused.exit_code == 3, refused.output
    assert (f"refused: 127.0.0.1 is a loopback address; {HINT}"
            in " ".join(refused.stderr.split()))
    allowed = CliRunner().invoke(app, argv + ["--allow-private"])
    assert allowed.exit_code == 0, allowed.output
    network = CliRunner().invoke(app, argv + ["--allow-network", "127.0.0.0/8"])
    assert network.exit_code == 0, network.output


# --- 3. malformed URLs ----------------------------------------------------------------------

MALFORMED = {
    "http://127.0.0.1:99999/x.jpg": "port 99999 is out of range",
    "http://example.com:0/x.jpg": "port 0 is out of range",
    "http://example.com:80:80/x.jpg": "port '80:80' is not a number",
    "http://example.com:８０/x.jpg": "is not a number",
    "http:///x.jpg": "no host",
    "http://user@/x.jpg": "no host",
    "gopher://example.com/": "scheme not allowed",
    "example.com/x.jpg": "scheme not allowed: no scheme",
    "http://exa mple.com/x.jpg": "character ' ' in host name",
    "http://a..b/x.jpg": "empty label",
    "http://xn--a.com/x.jpg": "not a valid internationalised label",
    "http://\u2488.com/x.jpg": "not a valid internationalised name",
    "http://[::1/x.jpg": "Invalid IPv6 URL",
    "http://[zz]/x.jpg": "does not appear to be an IPv4 or IPv6 address",
    "http://example.com/a\nb.jpg": "control character U+000A",
    "http://exa\x00mple.com/": "control character U+0000",
    "http://example.com/a\x85b.jpg": "control character U+0085",
    "http://" + "a" * 64 + ".com/": "longer than 63",
}


def test_malformed_urls_are_rows_with_a_reason_and_no_traceback(server, tmp_path):
    urls = list(MALFORMED) + [server.url("/img/231.jpg")]
    source = tmp_path / "urls.jsonl"  # JSON Lines: a URL may hold any character
    source.write_text("".join(json.dumps({"url": url}) + "\n" for url in urls))
    result = CliRunner().invoke(app, ["ingest", str(source), "--out", str(tmp_path / "out"),
                                      "--allow-private", "--format", "json", "--strict"])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and "ExceptionGroup" not in result.output
    report = json.loads(result.stdout)
    assert report["statuses"] == {"invalid": len(MALFORMED), "ok": 1}
    for failure, (url, words) in zip(report["failures"], MALFORMED.items()):
        assert failure["url"] == url and words in failure["reason"], failure


def test_the_downloader_checks_urls_it_is_given_and_redirected_to(server, tmp_path):
    port = server.port
    to = lambda target: server.url("/location/" + urllib.parse.quote(target, safe=""))
    jobs = [Job(1, f"http://127.0.0.1:{port + 70000}/x.jpg", "a"),
            Job(2, to("http://127.0.0.1:99999/x.jpg"), "b"),
            Job(3, to("http://xn--a.com/x.jpg"), "c"),
            Job(4, to("http://[::1/x"), "d")]
    results = download(jobs, tmp_path, DownloadOptions(**QUICK, allow_private=True))
    assert "port" in results[0].reason and "out of range" in results[0].reason
    assert results[1].reason == ("redirect to a URL not fetched (malformed URL: port 99999 "
                                 "is out of range (1-65535))")
    assert results[2].reason.startswith("redirect to a malformed URL (Codepoint U+0080")
    assert results[3].reason.startswith("redirect to a")
    assert not any("unexpected" in r.reason for r in results)


# --- 4. Retry-After over the limit ----------------------------------------------------------

def test_a_long_retry_after_fails_the_row_for_a_later_run(server, tmp_path):
    source = write_csv(tmp_path / "urls.csv", [server.url("/ratelimit/3600/241.jpg")])
    began = time.monotonic()
    first = ingest(source, "url", tmp_path / "out",
                   options=DownloadOptions(**QUICK, allow_private=True))
    assert time.monotonic() - began < 2.0  # neither an hour nor the 2 s cap
    row = first.rows[0]
    assert row.status == "failed" and row.attempts == 1 and not row.permanent
    assert row.reason == ("HTTP 429 Too Many Requests: the server asked to wait 3,600 s, "
                          "longer than the 2 s allowed (--max-retry-wait); a re-run will "
                          "try again")
    second = ingest(source, "url", tmp_path / "out",
                    options=DownloadOptions(**QUICK, allow_private=True))
    assert reasons(second) == [("ok", "downloaded")]  # the server lets it through now


def test_readme_documents_every_download_option():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Ingest"):]
    section = section[:section.index("\n### ", 4)]
    for flag in ("--concurrency", "--per-host", "--timeout", "--total-timeout", "--retries",
                 "--backoff", "--max-retry-wait", "--max-bytes", "--max-redirects",
                 "--allow-private", "--allow-network"):
        assert flag in section, flag
    assert re.search(r"--max-retry-wait` \(120 s\)", section)


# --- 5. bounds ------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, words", [
    ("--concurrency", "0", "--concurrency"), ("--concurrency", "5000", "1024"),
    ("--per-host", "0", "--per-host"), ("--timeout", "0", "--timeout"),
    ("--timeout", "nan", "--timeout"), ("--total-timeout", "1e9", "86400"),
    ("--retries", "-1", "--retries"), ("--retries", "1000", "--retries"),
    ("--backoff", "-0.5", "--backoff"), ("--max-retry-wait", "100000", "--max-retry-wait"),
    ("--max-bytes", "0", "--max-bytes: max_bytes must be an integer from 1"),
    ("--max-bytes", "2TB", "--max-bytes"), ("--max-bytes", "lots", "not a size"),
    ("--max-redirects", "51", "--max-redirects"), ("--workers", "0", "--workers"),
    ("--allow-network", "10.0.0.0/33", "not a network"),
])
def test_cli_bounds(tmp_path, flag, value, words):
    source = write_csv(tmp_path / "urls.csv", ["http://example.com/1.jpg"])
    result = CliRunner().invoke(app, ["ingest", str(source), "--out", str(tmp_path / "out"),
                                      flag, value])
    assert result.exit_code == 2, result.output
    assert words in " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value", [
    ("concurrency", 0), ("concurrency", 1025), ("concurrency", 2.5), ("concurrency", True),
    ("per_host", -1), ("timeout", 0.0), ("timeout", float("inf")), ("total_timeout", -1.0),
    ("retries", 101), ("backoff", float("nan")), ("max_backoff", 1e9),
    ("max_retry_after", -1), ("max_bytes", 0), ("max_bytes", 1 << 41),
    ("max_redirects", 51), ("timeout", "30"), ("allow_networks", ("not a network",)),
    ("user_agent", "a\r\nInjected: yes"),
])
def test_library_bounds(option, value):
    with pytest.raises(BoundError, match=option.rstrip("s") if option != "allow_networks"
                       else "not a network"):
        DownloadOptions(**{option: value})


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for the name "localhost" (not for 127.0.0.1)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_checks_the_name_while_connecting_to_the_checked_address(certificate, monkeypatch,
                                                                    tmp_path):
    options = DownloadOptions(**QUICK, allow_networks=("127.0.0.1/32",))
    with ImageServer(tls=certificate) as tls:
        jobs = [Job(1, f"https://localhost:{tls.port}/img/251.jpg", "by_name"),
                Job(2, f"https://127.0.0.1:{tls.port}/img/252.jpg", "by_address")]
        untrusted = download(jobs[:1], tmp_path, options)
        monkeypatch.setenv("SSL_CERT_FILE", certificate[0])  # now trust the certificate
        trusted = download(jobs, tmp_path, options)
    assert "certificate verify failed" in untrusted[0].reason
    assert trusted[0].ok and (tmp_path / "by_name.jpg").read_bytes() == image_bytes(251)
    assert "certificate verify failed" in trusted[1].reason  # issued to localhost only
    assert tls.hits["/img/251.jpg"] == 1 and "/img/252.jpg" not in tls.hits
