"""Hub sources are untrusted input: names and versions are validated before any path is built,
hub files are bounded and read with a safe YAML loader, requirements may not name URLs or
installer options, hub code is never imported to be shown, and a reproduction refuses a run whose
recorded function does not match its code snapshot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import provgraph as pg
from provgraph._code import CodeSnapshot
from provgraph._execution import effective_params, execute
from provgraph._hub import MAX_SOURCE_BYTES, HubSource, add_source, check_requirement, parse_hub_uri, resolve
from provgraph._run import new_run_id
from provgraph.events.errors import ConfigError, NotFound, ReproduceRefused
from provgraph.events.facets import FunctionRef
from provgraph.events.request import RunRequest
from provgraph.runtimes.local import code_facet
from tests.hubkit import DESCRIBE, build_hub, item


@pytest.mark.parametrize(
    ("uri", "what"),
    [
        ("hub://../etc", "hub source name"),
        ("hub://a/../x", "hub source name"),
        ("hub://../x/describe", "hub source name"),
        ("hub://a/b/c", "hub source name"),
        ("hub://describe:../../v", "hub item version"),
        ("hub://describe:1..2", "hub item version"),
        ("hub://.hidden", "hub item name"),
        ("hub://..", "hub item name"),
        ("hub://Upper/describe", "hub source name"),
        ("hub:///describe", "empty source name"),
        ("hub://describe\x00:1", "hub item name"),
    ],
)
def test_malformed_hub_uris_are_refused_before_any_path_is_built(uri: str, what: str) -> None:
    with pytest.raises(ConfigError, match=what):
        parse_hub_uri(uri)


@pytest.fixture
def source(tmp_path: Path, settings: pg.Settings) -> HubSource:
    build_hub(str(tmp_path / "hub"))
    return add_source(settings, "local", str(tmp_path / "hub"))


def _hostile(
    source: HubSource, folder: str, body: dict[str, object] | str, code: bytes = b"def f(c):\n  pass\n"
) -> None:
    import fsspec

    fs, root = fsspec.core.url_to_fs(source.url)
    base = f"{root}/functions/src/{folder}"
    fs.makedirs(base, exist_ok=True)
    fs.pipe_file(f"{base}/item.yaml", body.encode() if isinstance(body, str) else yaml.safe_dump(body).encode())
    fs.pipe_file(f"{base}/evil.py", code)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"filename": "../../../../etc/passwd"}, "invalid spec.filename"),
        ({"filename": "sub/evil.py"}, "invalid spec.filename"),
        ({"filename": "evil.sh"}, "invalid spec.filename"),
        ({"handler": "os.system"}, "spec.handler 'os.system' is not a function name"),
        ({"requirements": "pandas"}, "spec.requirements must be a list of strings"),
    ],
)
def test_hostile_item_fields_are_refused(
    source: HubSource, settings: pg.Settings, spec: dict[str, object], message: str
) -> None:
    body = item("evil", "1.0.0", "evil.py", "f")
    body["spec"].update(spec)
    _hostile(source, "evil", body)
    with pytest.raises(ConfigError, match=message):
        resolve("hub://evil", settings)


@pytest.mark.parametrize(
    ("requirement", "isolated", "message"),
    [
        ("evil @ https://example.invalid/evil.whl", True, "names a URL; only packages from the index are allowed"),
        (
            "evil @ https://example.invalid/evil.whl",
            False,
            "needs evil @ https://example.invalid/evil.whl, not installed",
        ),
        ("--index-url=https://example.invalid/simple", True, "invalid requirement '--index-url="),
        ("--index-url=https://example.invalid/simple", False, "invalid requirement '--index-url="),
    ],
)
def test_hub_requirements_never_reach_the_installer_as_urls_or_options(
    source: HubSource, settings: pg.Settings, requirement: str, isolated: bool, message: str
) -> None:
    body = item("evil", "1.0.0", "evil.py", "f", requirements=[requirement])
    _hostile(source, "evil", body)
    assert resolve("hub://evil", settings).item.requirements == [requirement]  # listed and shown as they are
    backend = pg.Backend(settings.model_copy(update={"uv": Path("/nonexistent/uv")}))
    with pytest.raises(ConfigError, match=re.escape(message)):
        pg.run("hub://evil", backend=backend, isolated=isolated)
    assert not (settings.home / "envs").exists()  # refused before any environment was made


def test_an_item_must_be_what_its_folder_names(source: HubSource, settings: pg.Settings) -> None:
    _hostile(source, "evil", item("describe", "1.0.0", "evil.py", "f"))
    with pytest.raises(ConfigError, match=r"evil/item\.yaml names 'describe', not 'evil'"):
        resolve("hub://evil", settings)


def test_yaml_aliases_and_tags_are_refused(source: HubSource, settings: pg.Settings) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b]\n"
    _hostile(source, "evil", bomb)
    with pytest.raises(ConfigError, match="aliases are not allowed in hub files"):
        resolve("hub://evil", settings)
    _hostile(source, "evil", "!!python/object/apply:os.system ['touch /tmp/pwned']\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        resolve("hub://evil", settings)


def test_oversized_hub_files_are_refused(source: HubSource, settings: pg.Settings) -> None:
    _hostile(source, "evil", item("evil", "1.0.0", "evil.py", "f"), b"#" * (MAX_SOURCE_BYTES + 1))
    with pytest.raises(ConfigError, match=f"evil.py is larger than {MAX_SOURCE_BYTES} bytes; refused"):
        resolve("hub://evil", settings)


def test_a_missing_source_file_is_not_found(source: HubSource, settings: pg.Settings, tmp_path: Path) -> None:
    (tmp_path / "hub/functions/src/describe/describe.py").unlink()
    with pytest.raises(NotFound, match=r"describe\.py \(the source of hub item describe\) is missing"):
        resolve("hub://describe", settings)


def test_requirements_are_registry_packages_only() -> None:
    assert check_requirement("inflection == 0.5.1") == "inflection==0.5.1"
    for bad in ("-r other.txt", "pkg; os.system('x')", "git+https://x/y.git", "pkg @ file:///etc/passwd"):
        with pytest.raises(ConfigError):
            check_requirement(bad)


def test_reproduce_refuses_a_run_whose_function_does_not_match_its_code(backend: pg.Backend, tmp_path: Path) -> None:
    """A graph any producer writes to may claim a hub function the snapshot is not."""
    source = DESCRIBE.encode()
    path = tmp_path / "describe.py"
    path.write_bytes(source)
    from provgraph._code import load_from_file

    handler = load_from_file(path, "analyze")
    code = code_facet(CodeSnapshot(source, "sha256:" + "0" * 64, "describe.py:analyze", None, None, None), backend)
    table = tmp_path / "t.csv"
    table.write_text("a\n1\n")
    request = RunRequest(
        run_id=new_run_id(),
        project="default",
        job="describe",
        entrypoint="describe.py:analyze",
        code_hash=code.code_hash,
        params=effective_params(handler, {}, {"table": str(table)}),
        inputs={"table": str(table)},
        function=FunctionRef(name="describe", version="1.5.0", hub_source="local", code_hash="sha256:" + "1" * 64),
    )
    execute(request, handler, code, backend).raise_for_state()
    with pytest.raises(
        ReproduceRefused,
        match=f"describe 1.5.0 resolved to code sha256:1{{64}}, but the run's code snapshot is {code.code_hash}",
    ):
        pg.reproduce(request.run_id, backend=backend)


def test_a_malformed_sources_file_is_one_clear_error(settings: pg.Settings) -> None:
    path = settings.home / "hub" / "sources.json"
    path.parent.mkdir(parents=True)
    for body, message in (
        ('{"sources": "x"}', "is not a list of hub sources"),
        ("[1]", "is not a list of hub sources"),
        ('{"sources": [{"name": "../x", "url": "/tmp"}]}', "invalid hub source name"),
        ("{", "is not valid JSON"),
    ):
        path.write_text(body)
        with pytest.raises(ConfigError, match=message):
            resolve("hub://describe", settings)


def test_a_hub_source_cannot_lead_outside_itself(
    source: HubSource, settings: pg.Settings, tmp_path: Path, backend: pg.Backend
) -> None:
    """A co-writer of a shared hub folder plants a symbolic link (to provgraph's own event log, to a
    folder elsewhere) or a FIFO: reads and publishes refuse them instead of following or blocking."""
    import os

    from provgraph._hub import publish

    _hostile(source, "leak", item("leak", "1.0.0", "leak.py", "f"))
    (tmp_path / "hub/functions/src/leak/leak.py").symlink_to(settings.events_db)
    with pytest.raises(ConfigError, match="leads outside the source"):
        resolve("hub://leak", settings)
    fifo = tmp_path / "hub/functions/src/fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "item.yaml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        resolve("hub://fifo", settings)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "pub/functions/master/shout").mkdir(parents=True)
    (tmp_path / "pub/functions/master/shout/latest").symlink_to(outside)
    add_source(settings, "pub", str(tmp_path / "pub"))
    code = tmp_path / "shout.py"
    code.write_text("def shout(context):\n    return {}\n")
    target = HubSource("pub", str(tmp_path / "pub"))
    with pytest.raises(ConfigError, match="leads outside the source"):
        publish(code, "shout", target, name="shout", version="1.0.0")
    assert list(outside.iterdir()) == []
