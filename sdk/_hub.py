"""Function hubs in MLRun's format: `hub://[source/]name[:version]`, listing, showing, publishing.

A hub source is any fsspec URL (a local folder, `s3://`, `https://`, `github://`) holding one of
MLRun's two layouts:

    published (what MLRun's `hub://` reads, e.g. https://mlrun.github.io/marketplace):
        functions/<channel>/catalog.json
        functions/<channel>/<name>/<version|latest>/src/{item.yaml, <spec.filename>, function.yaml}
    source (the mlrun/functions repository):
        functions/src/<name>/{item.yaml, <spec.filename>}

Hub content is untrusted input. Names, versions, file names and handlers are validated before
any path is built from them; every read is bounded; YAML is read with a safe loader that refuses
aliases; nothing here imports or executes hub code (`show` reads the signature with `ast`). The
resolved source's hash is recorded with the run (`FunctionRef.code_hash`), and the run's code
snapshot is those very bytes, so `reproduce` never asks the hub again.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provgraph._code import Handler, load_from_file
from provgraph.events.artifacts import sha256_bytes, storage_options
from provgraph.events.atomic import write_atomic
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets import FunctionRef
from provgraph.events.settings import Settings

HUB_PREFIX = "hub://"
DEFAULT_CHANNEL = "master"
MAX_CATALOG_BYTES = 32 << 20
MAX_ITEM_BYTES = 1 << 20
MAX_SOURCE_BYTES = 8 << 20
MAX_SOURCES = 64

SOURCE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
ITEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\.py")
KINDS = ("job", "local", "")
"""Item kinds provgraph runs: a Python handler in a batch job. Serving and Nuclio kinds are listed, not run."""


def _checked(pattern: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise ConfigError(f"invalid {what} {str(value)[:80]!r} (allowed: {pattern.pattern}, no '..')")
    return value


def normalize_name(name: str) -> str:
    """MLRun's item identity: lower case with hyphens (`auto_trainer` and `auto-trainer` are one item)."""
    return _checked(ITEM_NAME, name, "hub item name").lower().replace("_", "-")


def folder_name(name: str) -> str:
    """The item's folder: MLRun's hub build writes underscores where the name has hyphens."""
    return normalize_name(name).replace("-", "_")


@dataclass(frozen=True)
class HubUri:
    source: str | None
    name: str
    version: str

    def __str__(self) -> str:
        return HUB_PREFIX + (f"{self.source}/" if self.source else "") + f"{self.name}:{self.version}"


def parse_hub_uri(uri: str) -> HubUri:
    """`hub://[source/]name[:version]` (version default `latest`), every part validated."""
    if not uri.startswith(HUB_PREFIX):
        raise ConfigError(f"{uri!r} is not a hub URI (hub://[source/]name[:version])")
    rest = uri[len(HUB_PREFIX) :]
    rest, _, version = rest.partition(":")
    source, sep, name = rest.rpartition("/")
    if sep and not source:
        raise ConfigError(f"bad hub URI {uri!r}: empty source name")
    return HubUri(
        _checked(SOURCE_NAME, source, "hub source name") if sep else None,
        normalize_name(name),
        _checked(VERSION, version or "latest", "hub item version"),
    )


@dataclass(frozen=True)
class HubItem:
    """An `item.yaml`: what MLRun's hub and provgraph's both read."""

    name: str
    version: str
    description: str
    categories: list[str]
    filename: str
    handler: str
    requirements: list[str]
    image: str | None
    kind: str
    folder: str
    """fsspec URL of the folder holding item.yaml and the source file."""
    doc: str = ""

    @classmethod
    def parse(cls, raw: bytes, folder: str) -> HubItem:
        body = _load_yaml(raw, f"{folder}/item.yaml")
        if not isinstance(body, dict):
            raise ConfigError(f"{folder}/item.yaml is not a mapping")
        spec = body.get("spec") or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"{folder}/item.yaml: spec is not a mapping")
        categories = body.get("categories") or []
        requirements = spec.get("requirements") or []
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise ConfigError(f"{folder}/item.yaml: categories must be a list of strings")
        if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
            raise ConfigError(f"{folder}/item.yaml: spec.requirements must be a list of strings")
        handler = spec.get("handler") or ""
        kind = str(spec.get("kind") or "")
        if not isinstance(handler, str) or not (handler.isidentifier() or (not handler and kind not in KINDS)):
            raise ConfigError(f"{folder}/item.yaml: spec.handler {str(handler)[:80]!r} is not a function name")
        image = spec.get("image")
        return cls(
            name=normalize_name(str(body.get("name", ""))),
            version=_checked(VERSION, str(body.get("version", "")), "hub item version"),
            description=str(body.get("description") or ""),
            categories=categories,
            filename=_checked(FILE_NAME, spec.get("filename"), "spec.filename"),
            handler=handler,
            requirements=requirements,  # checked before anything installs them (`check_requirement`)
            image=str(image) if image else None,
            kind=kind,
            folder=folder,
            doc=str(body.get("doc") or ""),
        )


def _load_yaml(raw: bytes, what: str) -> Any:
    """`safe_load`, refusing aliases (a few bytes of anchors can expand to gigabytes once walked)."""
    try:
        import yaml
    except ImportError as exc:
        raise ConfigError("reading a hub needs PyYAML: pip install 'provgraph[hub]'") from exc

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~20x faster
    try:
        text = raw.decode("utf-8")
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=loader)):
            raise yaml.YAMLError("aliases are not allowed in hub files")
        return yaml.load(text, Loader=loader)  # a safe loader: plain data only
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} is not valid YAML: {exc}") from exc


def check_requirement(text: str) -> str:
    """A PEP 508 requirement from a registry (no URL, no installer option): what `--isolated` may install."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError as exc:
        raise ConfigError("reading requirements needs packaging: pip install 'provgraph[hub]'") from exc
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise ConfigError(f"invalid requirement {text[:120]!r}: {exc}") from exc
    if req.url:
        raise ConfigError(f"requirement {text[:120]!r} names a URL; only packages from the index are allowed")
    return str(req)


@dataclass(frozen=True)
class HubSource:
    name: str
    url: str
    channel: str = DEFAULT_CHANNEL
    s3_endpoint_url: str | None = field(default=None, compare=False)

    def _fs(self) -> tuple[Any, str]:
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.url.rstrip("/"), **storage_options(self.url, self.s3_endpoint_url))
        return fs, str(root).rstrip("/")

    def _read(self, relative: str, limit: int) -> bytes | None:
        """The file at `relative` (built from validated names only), at most `limit` bytes; None if absent."""
        fs, root = self._fs()
        path = f"{root}/{relative}"
        _stays_inside(fs, root, path)
        try:
            with fs.open(path, "rb") as f:
                data: bytes = f.read(limit + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        if len(data) > limit:
            raise ConfigError(f"{self.url}/{relative} is larger than {limit} bytes; refused")
        return data

    def url_of(self, relative: str) -> str:
        return f"{self.url.rstrip('/')}/{relative}"

    def published_dir(self, name: str, version: str) -> str:
        return f"functions/{self.channel}/{folder_name(name)}/{version}/src"

    def item(self, name: str, version: str = "latest") -> HubItem | None:
        """The item, from the published layout, else (for `latest` or its own version) the source layout."""
        published = self.published_dir(name, version)
        for relative in (published, f"functions/src/{folder_name(name)}"):
            raw = self._read(f"{relative}/item.yaml", MAX_ITEM_BYTES)
            if raw is None:
                continue
            item = HubItem.parse(raw, self.url_of(relative))
            if item.name != normalize_name(name):
                raise ConfigError(f"{item.folder}/item.yaml names {item.name!r}, not {normalize_name(name)!r}")
            if version in ("latest", item.version):
                return item
            if relative == published:  # a version's own folder saying another version: the hub is wrong
                raise ConfigError(f"{item.folder}/item.yaml says version {item.version!r}, not {version!r}")
        return None

    def source_of(self, item: HubItem) -> bytes:
        relative = item.folder.removeprefix(self.url.rstrip("/") + "/")
        data = self._read(f"{relative}/{item.filename}", MAX_SOURCE_BYTES)
        if data is None:
            raise NotFound(f"{item.folder}/{item.filename} (the source of hub item {item.name}) is missing")
        return data

    def published_catalog(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The channel's catalog.json (MLRun's published layout), or {} when there is none."""
        relative = f"functions/{self.channel}/catalog.json"
        raw = self._read(relative, MAX_CATALOG_BYTES)
        if raw is None:
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{self.url_of(relative)} is not JSON") from exc
        if not isinstance(body, dict):
            raise ConfigError(f"{self.url_of(relative)} is not a JSON object")
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for name, versions in body.items():  # an untrusted file: entries of another shape are left out
            if not (isinstance(versions, dict) and ITEM_NAME.fullmatch(str(name))):
                continue
            kept = {
                str(v): fields
                for v, fields in versions.items()
                if isinstance(fields, dict) and isinstance(fields.get("spec") or {}, dict)
            }
            if kept:
                found[str(name)] = kept
        return found

    def catalog(self) -> dict[str, dict[str, dict[str, Any]]]:
        """folder name -> version ("latest", "1.2.0" …) -> item fields, as MLRun's catalog.json holds
        them, plus the items of the source layout (`functions/src/*/item.yaml`) it does not list."""
        found = self.published_catalog()
        fs, root = self._fs()
        try:
            paths = sorted(fs.glob(f"{root}/functions/src/*/item.yaml"))[:10_000]
        except (NotImplementedError, OSError, ValueError):  # e.g. https:// cannot list
            paths = []
        for path in paths:
            folder = str(path).rsplit("/", 2)[-2]
            if folder in found or not ITEM_NAME.fullmatch(folder):
                continue
            try:
                item = self.item(folder)
            except ConfigError:
                continue
            if item is not None:
                entry = _item_fields(item)
                found[folder] = {"latest": entry, item.version: entry}
        return found


def _item_fields(item: HubItem) -> dict[str, Any]:
    return {
        "name": item.name,
        "version": item.version,
        "description": item.description,
        "categories": item.categories,
        "spec": {
            "filename": item.filename,
            "handler": item.handler,
            "requirements": item.requirements,
            "image": item.image,
            "kind": item.kind,
        },
    }


# --- sources --------------------------------------------------------------------------------


def _sources_file(settings: Settings) -> Path:
    return settings.home / "hub" / "sources.json"


def list_sources(settings: Settings) -> list[HubSource]:
    """Configured sources, in the order `hub://name` searches them."""
    path = _sources_file(settings)
    try:
        body = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    entries = body.get("sources", []) if isinstance(body, dict) else None
    if not isinstance(entries, list) or not all(isinstance(s, dict) for s in entries):
        raise ConfigError(f"{path} is not a list of hub sources")
    return [
        HubSource(
            _checked(SOURCE_NAME, s.get("name"), "hub source name"),
            str(s.get("url")),
            _checked(CHANNEL, s.get("channel", DEFAULT_CHANNEL), "hub channel"),
            settings.s3_endpoint_url,
        )
        for s in entries
    ]


def _save_sources(settings: Settings, sources: list[HubSource]) -> None:
    path = _sources_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"sources": [{"name": s.name, "url": s.url, "channel": s.channel} for s in sources]}
    write_atomic(path, json.dumps(body, indent=2).encode())


def add_source(settings: Settings, name: str, url: str, channel: str = DEFAULT_CHANNEL) -> HubSource:
    _checked(SOURCE_NAME, name, "hub source name")
    _checked(CHANNEL, channel, "hub channel")
    if "://" not in url:
        url = str(Path(url).expanduser().resolve())
    sources = list_sources(settings)
    if any(s.name == name for s in sources):
        raise ConfigError(f"hub source {name!r} exists; remove it first (`provgraph hub sources remove {name}`)")
    if len(sources) >= MAX_SOURCES:
        raise ConfigError(f"at most {MAX_SOURCES} hub sources")
    source = HubSource(name, url.rstrip("/"), channel, settings.s3_endpoint_url)
    _save_sources(settings, [*sources, source])
    return source


def remove_source(settings: Settings, name: str) -> None:
    sources = list_sources(settings)
    if not any(s.name == name for s in sources):
        raise NotFound(f"no hub source {name!r}")
    _save_sources(settings, [s for s in sources if s.name != name])


def get_source(settings: Settings, name: str) -> HubSource:
    for source in list_sources(settings):
        if source.name == name:
            return source
    raise NotFound(f"no hub source {name!r} (add one: provgraph hub sources add NAME URL)")


# --- resolving ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """A hub item, its source bytes and where they were found."""

    uri: HubUri
    source: HubSource
    item: HubItem
    code: bytes

    @property
    def code_hash(self) -> str:
        return sha256_bytes(self.code)

    def ref(self, *, isolated: bool = False) -> FunctionRef:
        return FunctionRef(
            name=self.item.name,
            version=self.item.version,
            hub_source=self.source.name,
            hub_url=self.item.folder,
            code_hash=self.code_hash,
            requirements=self.item.requirements,
            isolated=isolated,
        )


def resolve(uri: str, settings: Settings, *, runnable: bool = True) -> Resolved:
    """Find `hub://[source/]name[:version]`: in that source, else in each source in order.
    `runnable`: refuse kinds provgraph does not run (serving, nuclio), which `hub show` still shows."""
    parsed = parse_hub_uri(uri)
    sources = [get_source(settings, parsed.source)] if parsed.source else list_sources(settings)
    if not sources:
        raise NotFound(f"{uri}: no hub sources configured (provgraph hub sources add NAME URL)")
    for source in sources:
        item = source.item(parsed.name, parsed.version)
        if item is None:
            continue
        if runnable and item.kind not in KINDS:
            raise ConfigError(f"{uri}: kind {item.kind!r} is not supported (provgraph runs job functions)")
        return Resolved(parsed, source, item, source.source_of(item))
    where = ", ".join(s.name for s in sources)
    raise NotFound(f"{uri}: no item {parsed.name!r} version {parsed.version!r} in hub source(s) {where}")


def materialise(resolved: Resolved, settings: Settings) -> Path:
    """The source written to `<home>/hub/code/<hash>/<file>` (what tracebacks and the snapshot read)."""
    path = settings.home / "hub" / "code" / resolved.code_hash.removeprefix("sha256:") / resolved.item.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_bytes() != resolved.code:
        write_atomic(path, resolved.code)
    return path


def load(resolved: Resolved, settings: Settings) -> Handler:
    """Import the item's source (the verified bytes, not whatever the cached file holds) and return its handler."""
    path = materialise(resolved, settings)
    return load_from_file(
        path, resolved.item.handler, str(resolved.uri), source=resolved.code, mlrun_compat=settings.mlrun_compat
    )


# --- showing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str | None
    default: str | None
    doc: str


def signature(source: bytes, handler: str) -> tuple[str, list[Param]]:
    """The handler's docstring summary and parameters, read from the source with `ast` (never imported)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ConfigError(f"the source does not parse: {exc}") from exc
    func = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == handler), None
    )
    if func is None:
        raise ConfigError(f"the source has no function {handler!r}")
    doc = ast.get_docstring(func) or ""
    docs = _param_docs(doc)
    args = [*func.args.posonlyargs, *func.args.args]
    defaults: list[ast.expr | None] = [None] * (len(args) - len(func.args.defaults)) + list(func.args.defaults)
    pairs = list(zip(args, defaults, strict=True))
    pairs += list(zip(func.args.kwonlyargs, func.args.kw_defaults, strict=True))
    params = [
        Param(
            a.arg,
            ast.unparse(a.annotation) if a.annotation else None,
            ast.unparse(d) if d is not None else None,
            docs.get(a.arg, ""),
        )
        for a, d in pairs
    ]
    summary = doc.split("\n\n", 1)[0].strip()
    return summary, params


_SPHINX = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_GOOGLE = re.compile(r"^\s{2,}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _param_docs(doc: str) -> dict[str, str]:
    """`:param name: text` (Sphinx, MLRun's hub) and `name (type): text` under `Args:` (Google)."""
    out: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in doc.splitlines():
        m = _SPHINX.match(line)
        g = _GOOGLE.match(line) if in_args else None
        if m or g:
            current = (m or g).group(1)  # type: ignore[union-attr]
            out[current] = (m or g).group(2).strip()  # type: ignore[union-attr]
        elif line.strip() in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
        elif current and line.strip() and not line.strip().startswith(":") and line.startswith((" ", "\t")):
            out[current] += " " + line.strip()
        else:
            current = None
    return out


# --- publishing -----------------------------------------------------------------------------


def item_yaml(item: HubItem, mlrun_version: str = "1.10.0") -> dict[str, Any]:
    """The fields MLRun's `item.yaml` has (see mlrun/functions), in its key order."""
    return {
        "apiVersion": "v1",
        "categories": item.categories,
        "description": item.description,
        "doc": item.doc,
        "example": "",
        "generationDate": "",
        "hidden": False,
        "icon": "",
        "labels": {"author": "provgraph"},
        "maintainers": [],
        "marketplaceType": "",
        "mlrunVersion": mlrun_version,
        "name": item.name,
        "platformVersion": "",
        "spec": {
            "filename": item.filename,
            "handler": item.handler,
            "image": item.image or "mlrun/mlrun",
            "kind": item.kind or "job",
            "requirements": item.requirements,
        },
        "url": "",
        "version": item.version,
    }


def function_yaml(item: HubItem, source: bytes) -> dict[str, Any]:
    """A job function as MLRun's `function.export()` writes it: what MLRun's `import_function("hub://…")`
    loads (the source travels base64-encoded in `spec.build.functionSourceCode`)."""
    summary, params = signature(source, item.handler)
    return {
        "kind": "job",
        "metadata": {"name": item.name, "tag": "", "categories": item.categories},
        "spec": {
            "command": "",
            "args": [],
            "image": item.image or "mlrun/mlrun",
            "build": {
                "functionSourceCode": base64.b64encode(source).decode(),
                "origin_filename": "",
                "code_origin": "",
                "requirements": item.requirements,
            },
            "description": item.description,
            "default_handler": item.handler,
            "disable_auto_mount": False,
            "entry_points": {
                item.handler: {
                    "name": item.handler,
                    "doc": summary,
                    "parameters": [
                        {k: v for k, v in (("name", p.name), ("type", p.annotation), ("doc", p.doc)) if v}
                        | ({"default": p.default} if p.default is not None else {})
                        for p in params
                    ],
                    "outputs": [],
                }
            },
        },
        "verbose": False,
    }


def _newer(a: str, b: str) -> bool:
    """Whether version `a` is newer than `b` (PEP 440 when both parse, else never: the new one wins)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) > Version(b)
    except InvalidVersion:
        return False


def _stays_inside(fs: Any, root: str, path: str) -> None:
    """On a local source, `path` (built from validated names) must resolve inside `root`, and name a
    regular file or a folder if anything: a symbolic link or a FIFO that a co-writer of a shared hub
    folder planted would otherwise make provgraph read or write elsewhere, or block."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol not in ("file", "local"):
        return
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise ConfigError(f"hub source {root}: {path} leads outside the source (a symbolic link); refused")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # absent: the caller answers as for any missing file
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ConfigError(f"hub source {root}: {path} is not a regular file; refused")


def publish(
    source_file: Path,
    handler: str,
    target: HubSource,
    *,
    name: str,
    version: str,
    description: str = "",
    categories: list[str] | None = None,
    requirements: list[str] | None = None,
    image: str | None = None,
) -> HubItem:
    """Write `source_file:handler` into `target` as item `name` `version` (and `latest`), in MLRun's
    published layout, and add it to the channel's catalog.json. A published version is immutable:
    publishing other code under an existing version is refused."""
    import yaml

    code = source_file.read_bytes()
    if len(code) > MAX_SOURCE_BYTES:
        raise ConfigError(f"{source_file} is larger than {MAX_SOURCE_BYTES} bytes")
    _checked(VERSION, version, "version")
    if version == "latest":
        raise ConfigError("'latest' is not a version; it always names the newest published one")
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:  # `latest` follows version order: one that has none would always win it
        raise ConfigError(
            f"version {version!r} is not a PEP 440 version (like 1.2.0): `latest` could not order it"
        ) from None
    signature(code, handler)  # the function must exist
    filename = _checked(FILE_NAME, source_file.name, "source file name")
    item = HubItem(
        name=normalize_name(name),
        version=version,
        description=description,
        categories=list(categories or []),
        filename=filename,
        handler=handler,
        requirements=[check_requirement(r) for r in requirements or []],
        image=image,
        kind="job",
        folder="",
    )
    existing = target.item(item.name, version)
    if existing is not None and existing.version == version:
        if target.source_of(existing) != code:
            raise ConfigError(f"{item.name} {version} is already published in {target.name} with other code")
        was, now = item_yaml(existing), item_yaml(item)
        changed = [k for k in now if was.get(k) != now[k]]
        if changed:
            raise ConfigError(
                f"{item.name} {version} is already published in {target.name} with another {changed[0]}:"
                " a published version is immutable, publish a new one"
            )
    fs, root = target._fs()
    files = {
        "item.yaml": yaml.safe_dump(item_yaml(item), sort_keys=False).encode(),
        filename: code,
        "function.yaml": yaml.safe_dump(function_yaml(item, code), sort_keys=False).encode(),
    }
    latest = target.item(item.name, "latest")
    tags = [version] if latest is not None and _newer(latest.version, version) else [version, "latest"]
    for tag in tags:
        folder = f"{root}/{target.published_dir(item.name, tag)}"
        _stays_inside(fs, root, folder)  # resolves the links of the part that exists
        fs.makedirs(folder, exist_ok=True)
        for file, data in files.items():
            _stays_inside(fs, root, f"{folder}/{file}")
            fs.pipe_file(f"{folder}/{file}", data)
    catalog_path = f"{root}/functions/{target.channel}/catalog.json"
    _stays_inside(fs, root, catalog_path)
    catalog = target.published_catalog()
    entry = item_yaml(item) | {"assets": {"source": f"src/{filename}", "function": "src/function.yaml"}}
    catalog.setdefault(folder_name(item.name), {}).update({tag: entry for tag in tags})
    fs.pipe_file(catalog_path, json.dumps(catalog, indent=1).encode())
    return HubItem(**{**item.__dict__, "folder": target.url_of(target.published_dir(item.name, version))})
