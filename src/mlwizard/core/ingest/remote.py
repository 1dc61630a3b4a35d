"""Files in object storage (`s3://bucket/key`, globs such as `s3://bucket/data/*.parquet`) and on
the web (`https://host/file.csv`), fetched into the project's cache and read like local files.

DuckDB's `httpfs` extension downloads at run time, so mlwizard fetches the bytes itself: S3 through
pyarrow's S3 filesystem (credentials and region from the standard AWS variables and files; the
endpoint from `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`), HTTP with the standard library.

The fingerprint is the server's word on a version (ETag, Last-Modified, size) without downloading;
a server that gives none is downloaded and hashed. A download lands under
`.mlwizard/cache/sources/<fingerprint>/`, so an unchanged object is fetched once. Labels never show
credentials: user info and secret-looking query values (tokens, signatures) are masked.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.hashing import hash_value

if TYPE_CHECKING:
    from mlwizard.core.kernel.workspace import Workspace

SCHEMES = ("s3", "http", "https")
TIMEOUT_S = 30
SECRET_PARAMS = ("token", "key", "secret", "password", "signature", "sig", "credential", "auth")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """One object: where it is, its version, and the name it keeps in the cache."""

    url: str
    version: Any  # JSON-able: what the server says identifies this version
    name: str


def redact(url: str) -> str:
    """The URL without its user info and with secret-looking query values masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if "@" in parts.netloc:
        netloc = "***@" + netloc
    query = urlencode(
        [
            (
                k,
                "***"
                if any(s in k.lower() for s in SECRET_PARAMS) or k.startswith("X-Amz-")
                else v,
            )
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scheme(url: str) -> str:
    return url.split("://", 1)[0].lower()


# -- listing and versions ------------------------------------------------------------------------


def list_objects(url: str) -> list[Remote]:
    """The objects `url` names (one, or those a glob matches, sorted), with their versions."""
    if scheme(url) == "s3":
        return _s3_objects(url)
    return [_http_object(url)]


def _s3() -> Any:
    from pyarrow import fs

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    options: dict[str, Any] = {"connect_timeout": 10, "request_timeout": TIMEOUT_S}
    if endpoint:
        options["endpoint_override"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return fs.S3FileSystem(**options)


def _s3_objects(url: str) -> list[Remote]:
    from pyarrow import fs

    path = url[len("s3://") :]
    bucket = path.split("/", 1)[0]
    if not bucket or path == bucket:
        raise BadInputError(f"{redact(url)}: name an object or a glob: s3://bucket/key")
    s3 = _s3()
    try:
        if any(c in path for c in "*?["):
            prefix = path[: min(path.find(c) for c in "*?[" if c in path)].rsplit("/", 1)[0]
            selector = fs.FileSelector(prefix, recursive=True, allow_not_found=True)
            infos = s3.get_file_info(selector)
            infos = [i for i in infos if i.is_file and _glob_match(i.path, path)]
            if not infos:
                raise BadInputError(f"{redact(url)}: no objects match; check [data] source")
        else:
            info = s3.get_file_info(path)
            if info.type != fs.FileType.File:
                raise BadInputError(f"{redact(url)}: no such object; check [data] source")
            infos = [info]
    except OSError as exc:
        raise BadInputError(f"{redact(url)}: cannot reach S3 ({_first(exc)})") from None
    objects = []
    for info in sorted(infos, key=lambda i: i.path):
        mtime = info.mtime.isoformat() if info.mtime else None
        name = PurePosixPath(info.path).name
        objects.append(Remote(f"s3://{info.path}", {"size": info.size, "mtime": mtime}, name))
    return objects


def _glob_match(path: str, pattern: str) -> bool:
    """`*` stays within a folder, `**` crosses folders (as for local globs)."""
    if "**" in pattern:
        return fnmatch.fnmatchcase(path, pattern.replace("**/", "*").replace("**", "*"))
    return fnmatch.fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")


def request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    """An open HTTP(S) answer; errors as one line that names the URL without its secrets."""
    outgoing = urllib.request.Request(url, method=method, headers=headers or {})
    outgoing.add_header("User-Agent", "mlwizard")
    try:
        return urllib.request.urlopen(outgoing, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise BadInputError(f"{redact(url)}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BadInputError(f"{redact(url)}: cannot reach the server ({reason})") from None


def _http_object(url: str) -> Remote:
    name = PurePosixPath(urlsplit(url).path).name or "download"
    with request(url, "HEAD") as answer:
        headers = answer.headers
        version = {
            k: headers.get(k) for k in ("ETag", "Last-Modified", "Content-Length") if headers.get(k)
        }
    if not ("ETag" in version or "Last-Modified" in version):
        version = {"sha256": _download_hash(url)}  # no version from the server: the content's
    return Remote(url, version, name)


def _download_hash(url: str) -> str:
    digest = hashlib.sha256()
    with request(url) as answer:
        while chunk := answer.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(url: str) -> str:
    return hash_value([[o.url, o.version] for o in list_objects(url)])


# -- fetching ------------------------------------------------------------------------------------


def fetch(ws: Workspace, url: str) -> list[Path]:
    """The objects as local files in the project's cache (downloaded unless already there)."""
    objects = list_objects(url)
    version = hash_value([[o.url, o.version] for o in objects])
    cache = ws.state_dir / "cache" / "sources"
    folder = cache / version[:24]
    names = [f"{i:04d}-{o.name}" if len(objects) > 1 else o.name for i, o in enumerate(objects)]
    if not all((folder / n).is_file() for n in names):
        staging = cache / f".{uuid.uuid4().hex}.tmp"
        staging.mkdir(parents=True)
        try:
            for remote, name in zip(objects, names, strict=True):
                _download(remote.url, staging / name)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _prune(cache, keep=folder)
    return [folder / n for n in names]


def _download(url: str, into: Path) -> None:
    if scheme(url) == "s3":
        try:
            with _s3().open_input_stream(url[len("s3://") :]) as source, open(into, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
        except OSError as exc:
            raise BadInputError(f"{redact(url)}: cannot read the object ({_first(exc)})") from None
        return
    with request(url) as answer, open(into, "wb") as out:
        shutil.copyfileobj(answer, out, CHUNK)


def _prune(cache: Path, keep: Path) -> None:
    """One version per project is kept: the source's older downloads go."""
    for path in cache.iterdir():
        if path != keep and path.is_dir() and not path.name.startswith("."):
            shutil.rmtree(path, ignore_errors=True)


def _first(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
