"""What the pipeline reads of a WSGI request, as werkzeug's Request reads it (werkzeug 3: PATH_INFO and
QUERY_STRING hold latin-1 decoded bytes)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from ..errors import BadRequest

_EMPTY: ImmutableMultiDict = ImmutableMultiDict()
_CHUNK = 65536


def path_of(environ: dict) -> str:
    return environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace") or "/"


def query_of(environ: dict) -> ImmutableMultiDict:
    raw = environ.get("QUERY_STRING", "")
    if not raw:
        return _EMPTY
    try:
        return ImmutableMultiDict(parse_qsl(raw.encode("latin-1").decode("utf-8", "replace"),
                                            keep_blank_values=True, errors="werkzeug.url_quote"))
    except (UnicodeError, ValueError) as exc:
        raise BadRequest("Bad Request - The query string cannot be read",
                         details=[{"location": "query", "message": str(exc)[:200]}]) from exc


def read_body(environ: dict, limit: int) -> bytes:
    """The request body, refused (413) over `limit` bytes. No operation takes a body, but an unread one would
    be taken for the next request on a kept-alive connection, and the journal shows what was sent."""
    stream = environ.get("wsgi.input")
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.strip():
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            raise BadRequest("Bad Request - Invalid Content-Length",
                             details=[{"location": "header", "name": "Content-Length",
                                       "message": "must be a whole number of bytes"}])
        if length > limit:
            raise RequestEntityTooLarge()
        return stream.read(length) if length and stream is not None else b""
    if environ.get("wsgi.input_terminated") and stream is not None:
        # A chunked body, de-chunked by the server. Counted here: it has no Content-Length to refuse early.
        chunks, received = [], 0
        while chunk := stream.read(_CHUNK):
            received += len(chunk)
            if received > limit:
                raise RequestEntityTooLarge()
            chunks.append(chunk)
        return b"".join(chunks)
    return b""
