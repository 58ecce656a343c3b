"""The HTTP side of ``swinir serve``: the request handler, the server and its safety checks.

:class:`WebServer` serves one :class:`~swinir.serve.app.WebApp` with one thread per connection.
The handler reads uploads as raw request bodies (refused above the app's limit from
``Content-Length`` before anything is read), answers JSON, serves the page from
``swinir/serve/web/``, refuses requests whose ``Host`` is not the address the server listens on
(DNS rebinding) and requires an ``X-SwinIR`` header on every POST/DELETE (cross-site forms cannot
send it without a CORS preflight, which is never granted).  A missing, negative or non-numeric
``Content-Length`` (or a chunked body) is refused before anything is read, a client that stalls
is dropped after the app's ``read_timeout``, every refusal is a 4xx with a one-line JSON message,
and a client that hangs up costs a debug line, never a traceback.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import re
import socket
import sys
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from swinir.core.errors import SwinIRError
from swinir.serve.app import WebApp
from swinir.serve.guards import RequestError, megabytes
from swinir.serve.jobs import safe_name

__all__ = ["WebServer", "make_server", "is_loopback", "STATIC_FILES"]

log = logging.getLogger(__name__)

STATIC_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
                "/index.html": ("index.html", "text/html; charset=utf-8"),
                "/app.js": ("app.js", "text/javascript; charset=utf-8"),
                "/app.css": ("app.css", "text/css; charset=utf-8")}
_CHUNK = 1 << 20


def _static(name: str) -> bytes:
    return (resources.files("swinir.serve") / "web" / name).read_bytes()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (any case), the empty host and loopback IP addresses."""
    host = host.lower().rstrip(".")  # host names are case-insensitive; "localhost." is absolute
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.1"
    server_version = "swinir"

    # ---- plumbing ------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.app.read_timeout)  # reads and writes: no thread held forever

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, headers: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """Errors found by :mod:`http.server` itself (malformed request line or headers, unknown
        method, unsupported version) as our one-line JSON, and always a 4xx: a request this
        server does not implement is the client's error."""
        mapped = {HTTPStatus.NOT_IMPLEMENTED: HTTPStatus.METHOD_NOT_ALLOWED,
                  HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: HTTPStatus.BAD_REQUEST}.get(HTTPStatus(code), HTTPStatus(code))
        if self.request_version == "HTTP/0.9":  # unparsable request line: still answer with a status line
            self.request_version = "HTTP/1.0"
        text = " ".join(str(message or mapped.phrase).split())
        self._answer_error(int(mapped), "method not allowed" if mapped == HTTPStatus.METHOD_NOT_ALLOWED else text,
                           close=True)

    def _answer_error(self, status: int, message: str, *, close: bool = False) -> None:
        """Send an error; a client that already hung up is only worth a debug line."""
        try:
            self._error(status, message, close=close or self.close_connection)
        except OSError as exc:
            log.debug("%s: could not send %d (%s)", self.address_string(), status, exc)
            self.close_connection = True

    def _json(self, data: Any, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: int, message: str, *, close: bool = False) -> None:
        if close:
            self.close_connection = True
        self._send(status, json.dumps({"error": message}).encode(), "application/json",
                   {"Connection": "close"} if close else None)

    def _file(self, path: Path, content_type: str, download: Optional[str] = None) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            raise RequestError("the file is gone (the job was removed)", HTTPStatus.NOT_FOUND) from None
        headers = {}
        if download:
            ascii_name = download.encode("ascii", "replace").decode().replace("?", "_")
            headers["Content-Disposition"] = (f"attachment; filename=\"{ascii_name}\"; "
                                              f"filename*=UTF-8''{urllib.parse.quote(download)}")
        self._send(HTTPStatus.OK, data, content_type, headers)

    def _host_allowed(self) -> bool:
        """Refuse other Host names when listening on loopback (protects against DNS rebinding)."""
        if not is_loopback(self.server.host):
            return True
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name.strip("[]"))

    def _body(self, limit: int, what: str, filename: str) -> bytes:
        # a refusal before the body is read leaves the connection unusable: close it
        if self.headers.get("Transfer-Encoding") is not None:
            self.close_connection = True
            raise RequestError("chunked uploads are not supported: send a Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            raise RequestError("the upload has no Content-Length", HTTPStatus.LENGTH_REQUIRED)
        if len(self.headers.get_all("Content-Length", [])) != 1 or not re.fullmatch(r"[0-9]{1,15}", length_text):
            self.close_connection = True
            raise RequestError("invalid Content-Length")
        length = int(length_text)
        if length > limit:
            self._drain(length)
            flag = "--max-upload-mb" if what == "image" else "--max-model-mb"
            raise RequestError(f"{filename} is {megabytes(length)}; the limit for an {what} is "
                               f"{megabytes(limit)} (start the app with {flag} to change it)",
                               HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        if length == 0:
            raise RequestError(f"{filename} is empty")
        chunks, left = [], length
        while left:
            try:
                chunk = self.rfile.read(min(_CHUNK, left))
            except TimeoutError:
                self.close_connection = True
                raise RequestError(f"the upload stalled for {self.server.app.read_timeout:g} s and was dropped",
                                   HTTPStatus.REQUEST_TIMEOUT) from None
            if not chunk:
                self.close_connection = True
                raise RequestError("the upload was interrupted")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _drain(self, length: int) -> None:
        """Read and drop a refused body (up to 256 MB) so the browser receives our answer."""
        if length > 256_000_000:
            self.close_connection = True
            return
        left = length
        with contextlib.suppress(OSError):  # resets and timeouts included
            while left:
                chunk = self.rfile.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)

    # ---- routing -------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        try:
            if not self._host_allowed():
                raise RequestError("unexpected Host header", HTTPStatus.FORBIDDEN)
            url = urllib.parse.urlsplit(self.path)
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            if method in ("POST", "DELETE") and self.headers.get("X-SwinIR") != "1":
                raise RequestError("missing X-SwinIR header", HTTPStatus.FORBIDDEN)
            self._route(method, url.path, params)
        except RequestError as exc:
            self._answer_error(exc.status, self.server.app.public_message(str(exc)))
        except OSError as exc:  # the client went away (reset, broken pipe, timeout)
            log.debug("%s %s: connection lost (%s)", method, self.path, exc)
            self.close_connection = True
        except Exception as exc:
            log.warning("%s %s failed", method, self.path, exc_info=True)
            self._answer_error(HTTPStatus.INTERNAL_SERVER_ERROR,
                               self.server.app.public_message(f"{type(exc).__name__}: {exc}"))

    def _route(self, method: str, path: str, params: dict[str, str]) -> None:
        app = self.server.app
        if method in ("GET", "HEAD") and path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            self._send(HTTPStatus.OK, _static(name), content_type,
                       {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:"})
            return
        if method == "GET" and path == "/api/config":
            self._json(app.config())
            return
        if method == "GET" and path == "/api/jobs":
            self._json([app.job_payload(job) for job in app.jobs()])
            return
        if method == "POST" and path == "/api/jobs":
            name = safe_name(params.get("name", "image"))
            job = app.submit(name, self._body(app.max_upload, "image", name), params)
            self._json(app.job_payload(job), HTTPStatus.ACCEPTED)
            return
        if method == "POST" and path == "/api/models":
            name = safe_name(params.get("name", "model.pth"), "model.pth")
            option = app.upload_model(name, self._body(app.max_model, "model", name))
            self._json(option.public(), HTTPStatus.CREATED)
            return
        match = re.fullmatch(r"/api/jobs/([0-9a-f]{16})(?:/(input\.png|result\.png|download))?", path)
        if match:
            job = app.job(match.group(1))
            part = match.group(2)
            if method == "DELETE" and part is None:
                self._json(app.job_payload(app.cancel(job.id)))
            elif method in ("GET", "HEAD") and part is None:
                self._json(app.job_payload(job))
            elif method in ("GET", "HEAD") and part == "input.png":
                self._file(job.preview_path, "image/png")
            elif method in ("GET", "HEAD") and job.state != "done":
                raise RequestError(f"{job.name} is not restored yet ({job.state})", HTTPStatus.CONFLICT)
            elif method in ("GET", "HEAD"):
                self._file(job.result_path, "image/png", job.download_name if part == "download" else None)
            else:
                raise RequestError("method not allowed", HTTPStatus.METHOD_NOT_ALLOWED)
            return
        raise RequestError("not found", HTTPStatus.NOT_FOUND)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class WebServer(ThreadingHTTPServer):
    """:class:`ThreadingHTTPServer` serving one :class:`WebApp` (one thread per connection)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 32

    def __init__(self, app: WebApp, host: str, port: int) -> None:
        self.app = app
        self.host = host
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors (client resets, timeouts) are routine: a debug line, no traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("%s: connection error %s", client_address, exc)
            return
        log.warning("error while serving %s", client_address, exc_info=exc)

    @property
    def url(self) -> str:
        """``http://host:port/`` with the actual port (also when 0 was asked for)."""
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}/"


def make_server(app: WebApp, host: str = "127.0.0.1", port: int = 7860) -> WebServer:
    """Bind the app's server (``port=0``: any free port).

    Raises:
        SwinIRError: the address cannot be bound (port in use, unknown host).
    """
    try:
        return WebServer(app, host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SwinIRError(f"cannot listen on {host}:{port}: {reason} (choose another port or host)") from None
