"""Who may ask: the bearer token, and the same-origin rule for requests that change things.

A browser sends a cross-origin POST of a form (multipart, urlencoded, text/plain) without a
preflight, and `fetch(..., {mode: "no-cors"})` does the same: the page never reads the answer,
but the server has already acted. So every request but GET, HEAD and OPTIONS must come from
the server's own origin, as browsers say in `Sec-Fetch-Site` and `Origin`. Clients that are
not browsers (curl, httpx, scripts) send neither header and are served as before.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import urlsplit

# Paths a client may read without the token: the web UI's page and the API's schema (they
# describe the API, they hold no data). The interactive docs are not served: they load
# their scripts from elsewhere.
PUBLIC_PATHS = ("/", "/openapi.json")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What a browser says of a request made by a page of this origin, or typed by the person.
_OWN_FETCH_SITES = (b"same-origin", b"none")


async def send_json(send, status: int, detail: str, headers: tuple = ()) -> None:
    """Answer from a middleware: `{"detail": ...}` with `status`, nothing else read."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *headers]})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """ASGI middleware: API requests need `Authorization: Bearer TOKEN`, compared in constant
    time; checked before the body is read, so a stranger cannot make the server spool one."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS or \
                scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.expected):
            await self.app(scope, receive, send)
            return
        reason = "wrong bearer token" if scheme.lower() == b"bearer" else \
            "this server needs Authorization: Bearer TOKEN"
        await send_json(send, 401, reason, ((b"www-authenticate", b"Bearer"),))


class SameOrigin:
    """ASGI middleware: a request that may change something (any method but GET, HEAD,
    OPTIONS) is refused with 403 when a browser says it comes from another site's page:
    `Sec-Fetch-Site` other than same-origin or none, or (with `check_origin`) an `Origin`
    other than the server's own scheme://host:port. Checked before the body is read.

    `check_origin` is off behind a token: a proxy in front may rewrite the Host or the
    scheme, so the Origin a browser sends would not match what this server sees, while
    `Sec-Fetch-Site` is the browser's own verdict. (A page elsewhere cannot send the token
    anyway: it is a header, not a cookie.)"""

    def __init__(self, app, check_origin: bool = True) -> None:
        self.app = app
        self.check_origin = check_origin

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            reason = cross_site(scope, self.check_origin)
            if reason is not None:
                await send_json(send, 403, reason)
                return
        await self.app(scope, receive, send)


def cross_site(scope: dict, check_origin: bool = True) -> str | None:
    """Why the request comes from another site's page, or None if nothing says it does."""
    headers = scope.get("headers") or ()
    for site in (v for k, v in headers if k == b"sec-fetch-site"):
        if site.strip().lower() not in _OWN_FETCH_SITES:
            return (f"cross-site request refused (Sec-Fetch-Site: "
                    f"{site.decode('latin-1')[:40]}): this server acts only on requests "
                    "from its own pages or from clients that are not browsers")
    if not check_origin:
        return None
    own = _own_origin(scope)
    for origin in (v for k, v in headers if k == b"origin"):
        if own is None or _origin(origin.decode("latin-1")) != own:
            return (f"cross-origin request refused (Origin: {origin.decode('latin-1')[:100]}"
                    "): this server acts only on requests from its own pages")
    return None


def _origin(text: str) -> tuple[str, str, int] | None:
    """("http", "127.0.0.1", 8765) of "http://127.0.0.1:8765"; None for "null" or junk."""
    try:
        parts = urlsplit(text.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # a port that is not a number, a bracket left open
        return None
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/") or \
            parts.query or parts.fragment or parts.username is not None:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def _own_origin(scope: dict) -> tuple[str, str, int] | None:
    """This server's origin as the request addressed it: its scheme, and its Host header
    (or the socket's address when there is none)."""
    host = dict(scope.get("headers") or ()).get(b"host")
    if host is None:
        server = scope.get("server")
        if not server:
            return None
        name, port = server
        host = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    else:
        host = host.decode("latin-1")
    if not host or any(c in host for c in "/?#@\\ "):
        return None
    return _origin(f"{scope.get('scheme', 'http')}://{host}")
