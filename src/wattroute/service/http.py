"""The HTTP server's protocol: requests whose head (request line and headers) runs over
:data:`MAX_HEAD_BYTES` unfinished are refused with 431 before the rest of it is read, so that
a megabyte of ``Authorization`` header costs the server a few tens of KiB, not a megabyte.

uvicorn's httptools protocol (``uvicorn[standard]``) buffers a request's head without bound;
:class:`BoundedHttpTools` counts the bytes that arrive while a head is being parsed and, when
more than the limit has arrived and the head is still not finished, answers 431 and closes the
connection. (A head that arrives whole in one read of the socket, at most 256 KiB, is parsed;
the routes refuse what is too long in it.)
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024


def _too_large() -> bytes:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request Header Fields Too Large",
            "status": 431,
            "detail": f"headers: the request line and headers are over {MAX_HEAD_BYTES} bytes",
            "instance": None,
            "errors": [
                {
                    "field": "headers",
                    "problem": f"the request line and headers are over {MAX_HEAD_BYTES} bytes",
                    "fix": "send shorter headers (a token is under 100 characters)",
                }
            ],
        }
    ).encode()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/problem+json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on the size of a request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: a chunk that also finished the head (and carries the start of
        # the body) is not counted against it.
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.transport.write(_too_large())
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()


def server_options() -> dict[str, Any]:
    """What uvicorn's ``Config`` takes to bound request heads."""
    return {"http": BoundedHttpTools}
