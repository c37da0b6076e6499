"""Getting the upload out of a request, in memory only.

The image comes either as the multipart field ``image`` or as a raw ``image/*`` body.
The body is read with a byte cap (a lying or absent Content-Length cannot get past it),
and multipart is parsed here with python-multipart's streaming parser into memory:
Starlette's form parsing spools parts above 1 MiB to a temporary file, which we never want.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from app.errors import ProblemError
from app.imaging import ACCEPTED

FIELD = "image"


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)

    @property
    def name(self) -> str | None:
        _value, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        raw = params.get(b"name")
        return raw.decode("utf-8", "replace") if raw is not None else None


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, "body-too-large", f"The upload is larger than {limit} bytes.")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise ProblemError(413, "body-too-large", f"The upload is larger than {limit} bytes.")
    return bytes(chunks)


def parse_multipart(body: bytes, content_type: str) -> list[_Part]:
    _ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ProblemError(400, "bad-multipart", "The multipart body has no boundary.")
    parts: list[_Part] = []
    header_field = bytearray()
    header_value = bytearray()
    ended: list[bool] = []

    def on_end() -> None:
        ended.append(True)

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        parts[-1].headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_end": on_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise ProblemError(400, "bad-multipart", "The multipart body is malformed.") from None
    if not ended:
        raise ProblemError(400, "bad-multipart", "The multipart body is cut short (no closing boundary).")
    return parts


async def read_image_bytes(request: Request, limit: int) -> bytes:
    """The uploaded image's bytes, from a multipart field ``image`` or a raw image body."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    body = await read_body(request, limit)
    if media_type == "multipart/form-data":
        fields = parse_multipart(body, content_type)
        for part in fields:
            if part.name == FIELD:
                return bytes(part.data)
        # The field names the client sent are not echoed: no user string reaches a message.
        raise ProblemError(
            422, "missing-image-field", "The form has no field named 'image'; send the picture in it."
        )
    if media_type.startswith("image/") or media_type in ("application/octet-stream", ""):
        return body
    raise ProblemError(
        415,
        "unsupported-media-type",
        f"Send a {ACCEPTED} picture as multipart/form-data (field 'image') or as a raw image/* body.",
    )
