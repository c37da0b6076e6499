"""What the API routes share: the picture upload's OpenAPI body, headers, compact JSON answers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response

IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The picture: a multipart field `image`, or the raw image bytes.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"}},
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
# Answers about an uploaded picture: a shared cache must not keep them.
NO_STORE = {"Cache-Control": "no-store"}


def compact_json(body: Any, headers: dict[str, str] | None = None) -> Response:
    """``body`` as JSON without spaces (the picture atlases make these answers large)."""
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json", headers=headers)
