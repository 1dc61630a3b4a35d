"""A paginated JSON REST API as a source: every page's records, in order, as one table.

    [data]
    source = {url = "https://api.example.com/v1/orders", records = "items", next = "next",
              token_env = "ORDERS_API_TOKEN"}

`records` is the dotted path to each page's list of records ("" when the page is the list);
`next` the dotted path to the next page's URL (absolute or relative; absent, null or "" ends the
walk); without `next`, a `Link: <...>; rel="next"` header is followed. `token_env` names the
environment variable holding a bearer token: the token itself is never in the config, a message
or the lineage.

The records land as NDJSON in the project's cache, keyed by their content, which is also the
fingerprint: an API gives no version for a whole collection, so it is walked to be fingerprinted.
Within one command the walk is reused for `REUSE_S` seconds (the pipeline asks for the
fingerprint several times in a row).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from mlwizard.core.ingest.remote import redact, request
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.hashing import hash_value

if TYPE_CHECKING:
    from mlwizard.core.kernel.workspace import Workspace

KEYS = ("records", "next", "token_env")
MAX_PAGES = 10_000
REUSE_S = 2.0
_walks: dict[str, tuple[float, Path, str]] = {}  # (url, settings) -> (when, file, hash)
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def check_settings(api: dict[str, str], where: str) -> None:
    unknown = sorted(set(api) - set(KEYS))
    if unknown:
        raise BadInputError(
            f"{where}: unknown key '{unknown[0]}' in the API source (known: url, {', '.join(KEYS)})"
        )


def fetch(ws: Workspace, url: str, api: dict[str, str]) -> tuple[Path, str]:
    """Every record as an NDJSON file in the cache, and the content's hash."""
    memo = hash_value([url, api, str(ws.root)])
    hit = _walks.get(memo)
    if hit and time.monotonic() - hit[0] < REUSE_S and hit[1].is_file():
        return hit[1], hit[2]
    lines = [json.dumps(r, sort_keys=True, ensure_ascii=False) for r in _walk(url, api)]
    if not lines:
        raise BadInputError(f"{redact(url)}: the API returned no records")
    body = ("\n".join(lines) + "\n").encode()
    digest = hash_value(body.decode())
    cache = ws.state_dir / "cache" / "sources"
    folder = cache / digest[:24]
    path = folder / "records.ndjson"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, path)
    for old in cache.iterdir():  # one version per project
        if old != folder and old.is_dir() and not old.name.startswith("."):
            import shutil

            shutil.rmtree(old, ignore_errors=True)
    _walks[memo] = (time.monotonic(), path, digest)
    return path, digest


def _walk(url: str, api: dict[str, str]) -> list[dict[str, Any]]:
    headers = {"Accept": "application/json"}
    token_env = api.get("token_env", "")
    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            raise BadInputError(
                f"[data] source: the API token variable {token_env} is not set in the environment"
            )
        headers["Authorization"] = f"Bearer {token}"
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    page_url: str | None = url
    while page_url:
        if page_url in seen:
            break  # a server pointing back at a page already read
        if len(seen) >= MAX_PAGES:
            raise BadInputError(f"{redact(url)}: more than {MAX_PAGES} pages; check `next`")
        seen.add(page_url)
        with request(page_url, headers=headers) as answer:
            link = answer.headers.get("Link", "")
            try:
                body = json.loads(answer.read())
            except ValueError:
                raise BadInputError(f"{redact(page_url)}: the API did not answer JSON") from None
        page = _dig(body, api.get("records", ""))
        if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
            where = f"'{api.get('records')}'" if api.get("records") else "the page"
            raise BadInputError(
                f"{redact(page_url)}: {where} is not a list of records; set `records` to the "
                "key that holds them"
            )
        records.extend(page)
        following = _dig(body, api["next"]) if api.get("next") else _link_next(link)
        page_url = (
            urljoin(page_url, following) if isinstance(following, str) and following else None
        )
    return records


def _dig(body: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        body = body.get(part) if isinstance(body, dict) else None
    return body


def _link_next(header: str) -> str | None:
    found = _LINK_NEXT.search(header)
    return found.group(1) if found else None
