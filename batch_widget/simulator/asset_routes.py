"""The assets endpoints of the simulator: their route table, form parsing and handlers.

Routes (base path ``/v1.3``; every request needs ``x-api-key`` except the storage ``PUT``)::

    POST   /v1.3/assets                                         asset_create   → 201 (multipart/form-data)
    GET    /v1.3/assets                                         asset_list     → 200
    GET    /v1.3/assets/{id}                                    asset_get      → 200
    DELETE /v1.3/assets/{id}                                    asset_delete   → 204
    POST   /v1.3/assets/multipart-uploads                       upload_create  → 201
    GET    /v1.3/assets/multipart-uploads                       upload_list    → 200
    GET    /v1.3/assets/multipart-uploads/{id}                  upload_status  → 200
    POST   /v1.3/assets/multipart-uploads/{id}                  upload_report  → 200
    POST   /v1.3/assets/multipart-uploads/{id}/presigned-urls   upload_urls    → 200
    PUT    /_storage/{upload_id}/{chunk}?token=...              chunk          → 200 + ETag

Errors of these endpoints have the flat body ``{"code", "message"}`` (spec §1), unlike the
batch endpoints. The fault plan knows each endpoint name above (e.g. ``chunk:drop`` cuts an
upload, ``asset_create:rate_limit=5`` plays a 429).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .assets import AssetStore
from .errors import ApiError, int_param, json_body

__all__ = ["ASSET_ENDPOINTS", "asset_route", "handle_asset", "parse_form"]

ASSET_ENDPOINTS = (
    "asset_create", "asset_list", "asset_get", "asset_delete", "upload_create", "upload_list",
    "upload_status", "upload_report", "upload_urls", "chunk",
)  # fmt: skip

_ASSET = re.compile(r"^/v1\.3/assets/([^/]+)/?$")
_UPLOAD = re.compile(r"^/v1\.3/assets/multipart-uploads/([^/]+)(/presigned-urls)?/?$")
_STORAGE = re.compile(r"^/_storage/([^/]+)/(\d+)/?$")


def asset_route(method: str, path: str) -> tuple[str, str | None, dict[str, str]] | None:
    """``(endpoint, resource id, {method: endpoint})`` for an assets path, or None for another path."""
    p = path.rstrip("/")
    if p == "/v1.3/assets":
        table = {"POST": "asset_create", "GET": "asset_list"}
        return table.get(method, "asset_create"), None, table
    if p == "/v1.3/assets/multipart-uploads":
        table = {"POST": "upload_create", "GET": "upload_list"}
        return table.get(method, "upload_create"), None, table
    m = _UPLOAD.match(path)
    if m:
        table = {"POST": "upload_urls"} if m.group(2) else {"GET": "upload_status", "POST": "upload_report"}
        return table.get(method, next(iter(table.values()))), m.group(1), table
    m = _ASSET.match(path)
    if m:
        table = {"GET": "asset_get", "DELETE": "asset_delete"}
        return table.get(method, "asset_get"), m.group(1), table
    m = _STORAGE.match(path)
    if m:
        return "chunk", m.group(1), {"PUT": "chunk"}
    return None


def parse_form(content_type: str, raw: bytes) -> dict[str, Any]:
    """A ``multipart/form-data`` body: text fields as ``str``, file parts as ``(filename, bytes)``."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(400, "parameter_invalid", "Content-Type: must be multipart/form-data")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        raise ApiError(400, "parameter_invalid", "body: malformed multipart/form-data")
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        form[name] = (filename or "upload.mp4", data) if filename is not None else data.decode("utf-8", "replace")
    return form


def _multi(query: Mapping[str, list[str]], name: str) -> list[str]:
    # repeated keys (form/explode), or comma-separated values
    return [v for raw in query.get(name, []) + query.get(name + "[]", []) for v in raw.split(",") if v]


def handle_asset(
    store: AssetStore, endpoint: str, rid: str | None, target: str, api_key: str, raw: bytes, content_type: str
) -> tuple[int, Any]:
    """Answer an authenticated assets request: ``(status, JSON body or None)``; raises :class:`ApiError`."""
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    if endpoint == "asset_create":
        return 201, store.create(api_key, parse_form(content_type, raw))
    if endpoint == "asset_list":
        name = query.get("filename", [""])[-1] or None
        return 200, store.list(
            api_key, page=int_param(query, "page", 1), page_limit=int_param(query, "page_limit", 10),
            asset_ids=_multi(query, "asset_ids"), asset_types=_multi(query, "asset_types"), filename=name,
        )  # fmt: skip
    if endpoint == "upload_create":
        return 201, store.create_upload(api_key, json_body(raw))
    if endpoint == "upload_list":
        return 200, store.incomplete(api_key, int_param(query, "page", 1), int_param(query, "page_limit", 10))
    assert rid is not None
    if endpoint == "asset_get":
        return 200, store.get(api_key, rid)
    if endpoint == "asset_delete":
        store.delete(api_key, rid)
        return 204, None
    if endpoint == "upload_status":
        return 200, store.upload_status(api_key, rid, int_param(query, "page", 1), int_param(query, "page_limit", 10))
    if endpoint == "upload_report":
        return 200, store.report(api_key, rid, json_body(raw))
    return 200, store.presigned_urls(api_key, rid, json_body(raw))  # upload_urls


def handle_chunk(store: AssetStore, rid: str, target: str, raw: bytes) -> str:
    """A storage ``PUT`` (no API key: the token in the URL is the credential). Returns the ETag."""
    parts = urlsplit(target)
    m = _STORAGE.match(parts.path)
    token = parse_qs(parts.query).get("token", [""])[-1]
    index = int(m.group(2)) if m else 0
    return store.put_chunk(rid, index, token, raw)
