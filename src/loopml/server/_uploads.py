"""Uploaded files: streamed to a private temporary file, then handed to a service by path.

The body limit middleware caps the size; the format comes from ``?format=``
or the ``Content-Type``; the file is deleted when the request is done.
"""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Request

from loopml.kernel.exceptions import ValidationError

__all__ = ["UPLOAD_BODY", "spooled_upload"]

_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}

#: The OpenAPI request body of an upload route.
UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


def _format(request: Request, explicit: str | None) -> str:
    if explicit:
        return explicit
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = _TYPES.get(ctype)
    if fmt is None:
        raise ValidationError(
            f"cannot tell the upload's format from Content-Type {ctype or '(none)'!r}: send text/csv or "
            "application/vnd.apache.parquet, or pass ?format=csv|parquet",
            field="format", rule="required",
        )
    return fmt


def _check_utf8(decoder: codecs.IncrementalDecoder, chunk: bytes, *, final: bool, offset: int) -> None:
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"the CSV upload is not UTF-8 text (bad byte near offset {offset + exc.start}): "
            "re-encode it as UTF-8, or upload Parquet",
            field="body", rule="utf8",
        ) from None


@asynccontextmanager
async def spooled_upload(request: Request, explicit_format: str | None) -> AsyncIterator[tuple[Path, str]]:
    """The request body in a temporary file ``upload.<format>``, and the format."""
    fmt = _format(request, explicit_format)
    with tempfile.TemporaryDirectory(prefix="loopml-upload-") as tmp:
        path = Path(tmp) / f"upload.{fmt}"
        size = 0
        # CSV uploads must be UTF-8 text: checked as they stream, so bad bytes are a 422 here.
        decoder = codecs.getincrementaldecoder("utf-8")() if fmt == "csv" else None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if decoder is not None:
                    _check_utf8(decoder, chunk, final=False, offset=size - len(chunk))
                out.write(chunk)
        if decoder is not None:
            _check_utf8(decoder, b"", final=True, offset=size)
        if size == 0:
            raise ValidationError("the upload is empty: send the file as the request body", field="body",
                                  rule="required")
        yield path, fmt
