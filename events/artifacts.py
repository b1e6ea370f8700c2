"""Content-addressed artifact store over fsspec: outputs and code snapshots, keyed by sha256.

Layout: `<root>/objects/sha256/<first 2 hex>/<hex>`. Writing the same bytes twice is a no-op, so
a path names its content forever and `reproduce` can fetch exactly what a run used or made.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from provgraph.events.atomic import write_atomic
from provgraph.events.errors import ConfigError

CHUNK = 1 << 20
INCOMING = "incoming"
"""Beside `sha256/`: files being copied in (`put_file`), renamed to their object once hashed."""
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
"""The only artifact names there are: `sha256:` and 64 lowercase hex digits."""


def check_digest(digest: str) -> str:
    """`digest` if it is a well-formed artifact name, else `ConfigError`. Names come from the graph,
    which any producer can write to, so one is checked before it becomes part of a path."""
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise ConfigError(f"not an artifact name: {str(digest)[:100]!r} (expected sha256: and 64 lowercase hex digits)")
    return digest


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_stream(stream: IO[bytes]) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def storage_options(url: str, s3_endpoint_url: str | None) -> dict[str, Any]:
    """fsspec options for a URL: the S3 endpoint applies to s3:// URLs only."""
    if url.startswith(("s3://", "s3a://")) and s3_endpoint_url:
        return {"client_kwargs": {"endpoint_url": s3_endpoint_url}}
    return {}


def plain_local_path(url: str) -> str | None:
    """`url` itself when fsspec's `url_to_fs` would name the local file system and resolve the path to
    `url` unchanged (absolute, no protocol, no `::` chain, no trailing `/`), else None. Such a path is
    read and checked with the standard library, which answers as `LocalFileSystem` does: a first run in
    a fresh process then does not import fsspec (~140M instructions: asyncio, its entry-point scan)."""
    if url.startswith("/") and not url.endswith("/") and "://" not in url and "::" not in url:
        return url
    return None


class ArtifactStore:
    def __init__(self, url: str, s3_endpoint_url: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._options = storage_options(self.url, s3_endpoint_url)
        self._fs: Any = None
        plain = plain_local_path(self.url)
        self._plain = plain is not None
        self.root: str = plain if plain is not None else self._url_to_fs()
        self._local = self._plain or self.fs.protocol in ("file", ("file", "local")) or "file" in self.fs.protocol

    def _url_to_fs(self) -> str:
        import fsspec  # lazy: keeps `import provgraph` and a local run fast

        try:
            self._fs, root = fsspec.core.url_to_fs(self.url, **self._options)
        except (ValueError, ImportError) as exc:  # an unknown protocol, or its package is not installed
            raise ConfigError(f"artifact store {self.url!r}: {exc}") from None
        return str(root)

    @property
    def fs(self) -> Any:
        """The fsspec file system (imported on first use when the store is a plain local path)."""
        if self._fs is None:
            self._url_to_fs()
        return self._fs

    def _path(self, digest: str) -> str:
        hexd = check_digest(digest).removeprefix("sha256:")
        return f"{self.root}/objects/sha256/{hexd[:2]}/{hexd}"

    def uri(self, digest: str) -> str:
        """The fsspec URL of a stored object (what DataItems and `provgraph exec` open)."""
        path = self._path(digest)
        return path if self._local else self.fs.unstrip_protocol(path)

    def exists(self, digest: str) -> bool:
        return self._exists(self._path(digest))

    def _exists(self, path: str) -> bool:
        """fsspec's answer; on a local store `os.path.exists` (the same answer, symlinks followed)
        without fsspec's ~30 µs of wrapping: asked for every output and code snapshot of every run."""
        return os.path.exists(path) if self._local else bool(self.fs.exists(path))

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        digest = sha256_bytes(data)
        path = self._path(digest)
        if not self._holds(path, len(data)):
            if self._local:
                _atomic_local_write(Path(path), data)
            else:
                self.fs.pipe_file(path, data)
        return digest, len(data)

    def put_file(self, local_path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file under the hash of the very bytes stored: it is copied once, hashed as it is
        copied, into a temporary file that is then renamed to (or uploaded as) its object. A file still
        being written cannot leave bytes under a name they do not hash to; memory stays one chunk."""
        staging = Path(self.root) / "objects" / INCOMING if self._local else Path(tempfile.gettempdir())
        staging.mkdir(parents=True, exist_ok=True)
        tmp = staging / f".{uuid.uuid4().hex}.tmp"
        try:
            h, size = hashlib.sha256(), 0
            with open(local_path, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
            digest = "sha256:" + h.hexdigest()
            path = self._path(digest)
            if not self._holds(path, size):
                if self._local:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, path)
                else:
                    self.fs.put_file(str(tmp), path)
        finally:
            tmp.unlink(missing_ok=True)
        return digest, size

    def _holds(self, path: str, size: int) -> bool:
        """Whether the object is stored whole (its size; a damaged one of another size is written
        again). A local object being reused is touched, so `gc` judges it by this use, not its first."""
        if not self._local:
            try:
                return int(self.fs.size(path)) == size
            except FileNotFoundError:
                return False
        try:
            if os.stat(path).st_size != size:
                return False
            os.utime(path)
        except FileNotFoundError:
            return False
        return True

    def modified(self, digest: str) -> datetime | None:
        """When the object was last written or reused (None: not stored)."""
        try:
            return _modified(self.fs.info(self._path(digest)))
        except FileNotFoundError:
            return None

    def stale_uploads(self, before: datetime) -> Iterator[Path]:
        """Temporary files of uploads that never finished (a process killed mid-copy), older than `before`."""
        if not self._local:
            return
        objects = Path(self.root) / "objects"
        for tmp in (*objects.glob(f"{INCOMING}/.*.tmp"), *objects.glob("sha256/*/.*.tmp")):
            with contextlib.suppress(FileNotFoundError):
                if datetime.fromtimestamp(tmp.stat().st_mtime, UTC) < before:
                    yield tmp

    def get_bytes(self, digest: str) -> bytes:
        """The object's bytes, verified against its name (`CorruptArtifact` if they do not hash to it)."""
        path = self._path(digest)
        data: bytes = Path(path).read_bytes() if self._plain else self.fs.cat_file(path)
        verify(data, digest, f"artifact {digest} in {self.url}")
        return data

    def get_chunk(self, digest: str, size: int) -> bytes:
        """`get_bytes` of an object that must be `size` bytes long (a log chunk as its event declares
        it); FileNotFoundError, without reading it, when the stored object is another size."""
        path = self._path(digest)
        stored = os.stat(path).st_size if self._plain else int(self.fs.size(path))
        if stored != size:
            raise FileNotFoundError(f"{digest}: {stored} bytes, not {size}")
        return self.get_bytes(digest)

    def objects(self) -> Iterator[StoredObject]:
        """Every stored object (what `provgraph gc` weighs); files that are not objects are skipped."""
        base = f"{self.root}/objects/sha256"
        if not self.fs.exists(base):
            return
        for path, info in self.fs.find(base, detail=True).items():
            folder, hexd = path.rstrip("/").rsplit("/", 2)[-2:]
            name = f"sha256:{hexd}"
            if DIGEST.fullmatch(name) and folder == hexd[:2]:
                yield StoredObject(name, int(info.get("size") or 0), _modified(info))

    def remove(self, digest: str) -> None:
        """Delete an object's bytes (only `provgraph gc` does, for objects nothing live references)."""
        self.fs.rm_file(self._path(digest))


class StoredObject(NamedTuple):
    digest: str
    size: int
    modified: datetime | None


def _modified(info: dict[str, Any]) -> datetime | None:
    """When an object was written: local files give `mtime` (seconds), S3 `LastModified` (a datetime)."""
    value = info.get("mtime", info.get("LastModified"))
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


class CorruptArtifact(ConfigError):
    """Stored bytes do not hash to the name they were read under: tampered with or damaged."""


def verify(data: bytes, expected: str, what: str) -> None:
    actual = sha256_bytes(data)
    if actual != expected:
        raise CorruptArtifact(f"{what} is corrupt: its bytes hash to {actual}, not {expected}")


def _atomic_local_write(path: Path, data: bytes) -> None:
    """Write then rename, so a reader never sees half an object under its final name (and a failed
    write leaves no partial file behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
