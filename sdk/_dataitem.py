"""`DataItem`: a handler's view of one input, over any fsspec URL, with tracked access.

The first access (get, open, local, as_df) computes the content hash and size and reports them to
the run, which records a READ of that exact dataset version. Nothing is recorded for an input
the handler never touches until the run ends, when untouched inputs are recorded too, so a run's
provenance always lists everything it was given.

A pinned input (an artifact `store://…@sha256:…`, a snapshot, an input of a reproduction) has an
`expected` hash: the bytes are verified against it before they are handed out. Paths under
provgraph's own folder are refused (`ProtectedFiles`): opening and closing a database file in a
process that has it open drops SQLite's POSIX locks, and its secrets are no input.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, overload

from provgraph._artifacts import manifest_bytes
from provgraph._naming import dataset_identity, is_store_uri, normalise
from provgraph.events.artifacts import (
    CorruptArtifact,
    plain_local_path,
    sha256_bytes,
    sha256_stream,
    storage_options,
)
from provgraph.events.errors import ConfigError, NotFound

if TYPE_CHECKING:
    import pandas

    from provgraph.events.settings import Settings

Recorder = Callable[["DataItem"], None]
log = logging.getLogger("provgraph")


@dataclass(frozen=True)
class ProtectedFiles:
    """provgraph's own folder and database files, which no input may name (by path, symlink or hard link)."""

    home: Path
    files: tuple[Path, ...]

    @classmethod
    def of(cls, settings: Settings) -> ProtectedFiles:
        return _protected(settings.home, (settings.events_db, settings.graph_db, settings.tokens_db))

    def check(self, key: str, url: str) -> None:
        """`ConfigError` when `url` (or any local part of a chained `a::b` URL) is one of these files."""
        for part in url.split("::"):
            if is_store_uri(part) or ("://" in part and not part.startswith("file://")):
                continue
            real = os.path.realpath(normalise(part))
            home = self._real_home
            if real == home or real.startswith(home.rstrip(os.sep) + os.sep) or self._same_file(real):
                raise ConfigError(
                    f"input {key!r}: {url!r} is inside provgraph's own folder {self.home} (or one of its"
                    " database files); provgraph never reads its own state as an input"
                )

    @functools.cached_property
    def _real_home(self) -> str:
        """The folder's real path, resolved once (checked twice per run otherwise)."""
        return os.path.realpath(self.home)

    def _same_file(self, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        for f in self._file_names:
            try:
                other = os.stat(f)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino):
                return True
        return False

    @functools.cached_property
    def _file_names(self) -> tuple[str, ...]:
        """`files` as strings, so each check stats them without building paths."""
        return tuple(map(str, self.files))


@functools.lru_cache(maxsize=16)
def _protected(home: Path, dbs: tuple[Path, ...]) -> ProtectedFiles:
    """Built once per home (twice per run otherwise); immutable, so shared."""
    return ProtectedFiles(home, tuple(Path(f"{db}{suffix}") for db in dbs for suffix in ("", "-wal", "-shm")))


class DataItem:
    """One input: `key` is the handler's name for it, `url` what the user passed."""

    def __init__(
        self,
        key: str,
        url: str,
        *,
        physical_url: str | None = None,
        s3_endpoint_url: str | None = None,
        recorder: Recorder | None = None,
        expected: str | None = None,
        protected: ProtectedFiles | None = None,
    ) -> None:
        """`expected`: the content hash the bytes must have (pinned inputs); `protected`: what to refuse."""
        if protected is not None:
            protected.check(key, url)
        self.key = key
        self.url = url
        self._expected = expected
        self.namespace, self.name = dataset_identity(url)
        self._physical = physical_url or url
        self._options = storage_options(self._physical, s3_endpoint_url)
        self._plain = plain_local_path(self._physical)
        """The path itself when the bytes are a plain local file path: read without fsspec."""
        self._recorder = recorder
        self._hash: str | None = None
        self._size: int | None = None
        self._recorded = False
        self._format: str | None = None
        self._local_copies: list[str] = []
        self.is_directory = False
        """A folder input (known once hashed): versioned by the manifest of its files' hashes."""

    def __repr__(self) -> str:
        return f"DataItem(key={self.key!r}, url={self.url!r})"

    @property
    def _fs_path(self) -> tuple[Any, str]:
        import fsspec  # lazy: keeps `import provgraph` fast

        try:
            fs_path: tuple[Any, str] = fsspec.core.url_to_fs(self._physical, **self._options)
            return fs_path
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"input {self.key!r}: cannot open {self.url!r}: {exc}") from exc

    @property
    def hash(self) -> str:
        """`sha256:<hex>` of the content (read once, then cached)."""
        self._ensure_hashed()
        assert self._hash is not None
        return self._hash

    @property
    def size(self) -> int:
        self._ensure_hashed()
        assert self._size is not None
        return self._size

    def _ensure_hashed(self, data: bytes | None = None) -> None:
        """Hash (once; pinned bytes every time they are read), verify, then report the read."""
        if data is not None and (self._hash is None or self._expected is not None):
            self._set_hash(sha256_bytes(data), len(data))
        elif self._hash is None:
            try:
                if self._plain is not None and not os.path.isdir(self._plain):
                    with open(self._plain, "rb") as f:  # a plain local file: what `LocalFileSystem.open` reads
                        self._set_hash(*sha256_stream(f))
                else:
                    fs, path = self._fs_path
                    if fs.isdir(path):
                        self.is_directory = True
                        self._set_hash(*_directory_hash(fs, path))
                    else:
                        with fs.open(path, "rb") as f:
                            self._set_hash(*sha256_stream(f))
            except FileNotFoundError as exc:
                raise NotFound(f"input {self.key!r}: no data at {self.url!r}") from exc
        if not self._recorded and self._recorder is not None:
            self._recorded = True
            self._recorder(self)

    def _set_hash(self, digest: str, size: int) -> None:
        if self._expected is not None and digest != self._expected:
            raise CorruptArtifact(
                f"input {self.key!r}: the bytes at {self.url!r} hash to {digest}, not the pinned {self._expected}"
            )
        self._hash, self._size = digest, size

    @overload
    def get(self, size: int | None = None, offset: int = 0, encoding: None = None) -> bytes: ...

    @overload
    def get(self, size: int | None = None, offset: int = 0, *, encoding: str) -> str: ...

    def get(self, size: int | None = None, offset: int = 0, encoding: str | None = None) -> bytes | str:
        """The content (or `size` bytes from `offset`), as text with `encoding`. The whole content is
        hashed and recorded even for a partial read; a pinned input is verified before it is returned."""
        try:
            if size is None and offset == 0:
                data = self._read_all()
                self._ensure_hashed(data)
            else:
                fs, path = self._fs_path
                self._ensure_hashed()
                data = fs.cat_file(path, start=offset, end=None if size is None else offset + size)
        except FileNotFoundError as exc:
            raise NotFound(f"input {self.key!r}: no data at {self.url!r}") from exc
        return data.decode(encoding) if encoding else data

    def _read_all(self) -> bytes:
        if self._plain is not None:
            return Path(self._plain).read_bytes()
        fs, path = self._fs_path
        data: bytes = fs.cat_file(path)
        return data

    def open(self, mode: str = "rb") -> IO[Any]:
        """A file object; read-only, since inputs are pinned by content."""
        if any(c in mode for c in "wax+"):
            raise ConfigError(f"input {self.key!r} is read-only (mode {mode!r}); log outputs with ctx.log_artifact")
        self._ensure_hashed()
        fs, path = self._fs_path
        f: IO[Any] = fs.open(path, mode)
        return f

    # -- MLRun's DataItem surface ------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The storage kind: `file`, `s3`, `memory`, `https` … (of the bytes' actual location)."""
        fs, _ = self._fs_path
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        return "file" if protocol in ("file", "local") else str(protocol)

    @property
    def artifact_url(self) -> str:
        """The pinned `store://…@sha256:…` URI for artifacts (once read), else the URL."""
        if is_store_uri(self.url) and self._hash is not None:
            return f"{self.url.partition('@')[0]}@{self._hash}"
        return self.url

    @property
    def meta(self) -> dict[str, Any] | None:
        """For artifacts: key, version and format (MLRun: the artifact object); None for plain URLs."""
        if not is_store_uri(self.url):
            return None
        return {"key": self.name, "uri": self.artifact_url, "version": self._expected, "format": self.format}

    @property
    def format(self) -> str | None:
        """The data format: the name's suffix, else (artifacts are stored by hash, without one) the
        content's signature (parquet, zip, gzip)."""
        suffix = Path(self.name).suffix.lower().lstrip(".")
        if suffix:
            return suffix
        if self._format is None:
            try:
                with self.open() as f:
                    head: bytes = f.read(4)
            except IsADirectoryError:  # a folder input has no format of its own
                head = b""
            self._format = next((fmt for magic, fmt in MAGIC if head.startswith(magic)), "")
        return self._format or None

    @property
    def suffix(self) -> str:
        """`.csv`, `.parquet` …, as MLRun's (from the format for artifacts); empty when unknown."""
        return f".{self.format}" if self.format else ""

    def stat(self) -> FileStats:
        fs, path = self._fs_path
        info = fs.info(path)
        modified = info.get("mtime") or info.get("LastModified") or info.get("created")
        return FileStats(size=int(info.get("size") or 0), modified=modified, content_type=info.get("ContentType"))

    def listdir(self) -> list[str]:
        """Names under a folder input (nothing is read, so nothing is recorded)."""
        fs, path = self._fs_path
        base = path.rstrip("/")
        return sorted(str(p)[len(base) + 1 :] for p in fs.find(base) if str(p).startswith(base + "/"))

    ls = listdir

    def download(self, target_path: str) -> None:
        """Copy the (verified) content to `target_path`."""
        Path(target_path).write_bytes(self.get())

    def show(self, format: str | None = None) -> None:
        """Display in Jupyter (IPython); elsewhere a warning, as MLRun."""
        try:
            from IPython import display  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            log.warning("show() displays only inside Jupyter (IPython is not installed)")
            return
        suffix = f".{format}" if format else self.suffix
        if suffix in (".png", ".jpg", ".gif"):
            display.display(display.Image(self.get(), format=suffix[1:]))
        elif suffix in (".html", ".htm"):
            display.display(display.HTML(self.get(encoding="utf-8")))
        elif suffix in (".csv", ".parquet", ".pq"):
            display.display(self.as_df())
        else:
            display.display(display.Pretty(self.get(encoding="utf-8")))

    def local(self) -> str:
        """A local file path with the content and the right suffix: the file itself when it is local
        and named with its suffix, else a private temp copy (what gets hashed and verified)."""
        fs, path = self._fs_path
        suffix = self.suffix
        if ("file" in fs.protocol or "local" in fs.protocol) and Path(path).suffix.lower() == suffix:
            self._ensure_hashed()
            return str(path)
        fd, tmp = tempfile.mkstemp(prefix="provgraph-", suffix=suffix)
        os.close(fd)
        self._local_copies.append(tmp)
        fs.get_file(path, tmp)
        if self._hash is None or self._expected is not None:
            with open(tmp, "rb") as f:
                self._set_hash(*sha256_stream(f))
        self._ensure_hashed()
        return tmp

    @property
    def special_file(self) -> bool:
        """A local path that is neither a regular file nor a folder: a FIFO, a device, a socket."""
        try:
            mode = os.stat(self._plain).st_mode if self._plain is not None else None
        except (OSError, ValueError):
            return False
        return mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))

    def remove_local(self) -> None:
        """Delete the copies `local()` made (MLRun: the downloaded copy); the input itself stays."""
        while self._local_copies:
            Path(self._local_copies.pop()).unlink(missing_ok=True)

    def as_df(
        self, columns: list[str] | None = None, df_module: Any = None, format: str = "", **kwargs: Any
    ) -> pandas.DataFrame:
        """A DataFrame by `format`, else the input's format (suffix, or an artifact's content: a parquet
        artifact is read as parquet); csv, parquet, json/jsonl. Needs `provgraph[pandas]`."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ConfigError("as_df() needs pandas: pip install 'provgraph[pandas]'") from exc
        module = df_module or pd
        fmt = (format or self.format or "csv").lower()
        with self.open() as f:
            if fmt in ("parquet", "pq"):
                df = module.read_parquet(f, columns=columns, **kwargs)
            elif fmt in ("json", "jsonl"):
                df = module.read_json(f, lines=fmt == "jsonl", **kwargs)
            elif fmt in ("csv", "txt", "tsv"):
                df = module.read_csv(f, usecols=columns, **({"sep": "\t"} if fmt == "tsv" else {}) | kwargs)
                columns = None
            else:
                raise ConfigError(f"input {self.key!r}: as_df cannot read format {fmt!r} (csv, parquet, json)")
        return df[columns] if columns is not None else df

    def __str__(self) -> str:
        return self.url


def _directory_hash(fs: Any, path: str) -> tuple[str, int]:
    """A folder input's version: the hash of the manifest of its files' hashes (as a logged DirArtifact)."""
    base = path.rstrip("/")
    files: dict[str, str] = {}
    for name in sorted(fs.find(base)):
        with fs.open(name, "rb") as f:
            files[str(name)[len(base) + 1 :]] = sha256_stream(f)[0]
    body = manifest_bytes(files)
    return sha256_bytes(body), len(body)


MAGIC = ((b"PAR1", "parquet"), (b"PK\x03\x04", "zip"), (b"\x1f\x8b", "gz"))
"""Content signatures for artifacts, which are stored by hash without a file name."""


@dataclass(frozen=True)
class FileStats:
    """MLRun's `FileStats`."""

    size: int
    modified: Any = None
    content_type: str | None = None
