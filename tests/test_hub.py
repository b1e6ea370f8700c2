"""`hub://` functions in MLRun's hub format: resolve, list, show, run, publish, reproduce, on a local
folder and on S3 (the real moto server), from the SDK and the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

import provgraph as pg
from provgraph._hub import HubSource, add_source, list_sources, resolve, signature
from provgraph.events.errors import ConfigError, NotFound
from tests.hubkit import DESCRIBE, TABLE, build_hub

BIN = Path(sys.executable).parent / "provgraph"


def sha(data: bytes | str) -> str:
    return "sha256:" + hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@pytest.fixture
def hub(settings: pg.Settings, tmp_path: Path) -> Path:
    folder = tmp_path / "hub"
    build_hub(str(folder))
    add_source(settings, "local", str(folder))
    return folder


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "table.csv"
    path.write_bytes(TABLE)
    return path


def _check_hub_run(backend: pg.Backend, result: pg.RunResult, source: str, table_uri: str) -> dict[str, Any]:
    result.raise_for_state()
    assert result.job == "describe"
    assert result.results["rows"] == 3
    assert result.results["columns"] == ["a", "b", "label"]
    assert result.results["preview"] == [{"a": "1", "b": "2", "label": "x"}, {"a": "3", "b": "", "label": "y"}]
    summary = b"column,count\na,3\nb,2\nlabel,2\n"
    assert result.outputs == {"dataset-describe": f"store://default/dataset-describe@{sha(summary)}"}
    run = backend.graph().run(result.run_id)
    assert run is not None and run.job_version is not None
    function: dict[str, Any] = run.runtime["function"]
    assert function["name"] == "describe" and function["version"] == "1.5.0"
    assert function["hub_source"] == source
    assert function["code_hash"] == sha(DESCRIBE) == run.job_version.code_hash
    assert function["hub_url"].endswith("functions/src/describe")
    assert run.job_version.entrypoint == "describe.py:analyze"
    assert run.params == {"name": "dataset", "label_column": None, "sample": 2}
    assert [i.binding for i in run.inputs] == ["table"]
    assert run.inputs[0].version == sha(TABLE)
    assert table_uri.endswith(run.inputs[0].name)
    return function


def test_resolve_run_and_reproduce_a_hub_function_from_a_local_folder(
    backend: pg.Backend, hub: Path, table: Path
) -> None:
    result = pg.run("hub://describe", inputs={"table": str(table)}, backend=backend)
    function = _check_hub_run(backend, result, "local", str(table))

    again = pg.reproduce(result.run_id, backend=backend)
    assert again.verdict is not None
    assert again.verdict.verdict == "REPRODUCED", again.verdict.differences
    reproduction = backend.graph().run(again.run_id)
    assert reproduction is not None and reproduction.runtime["function"] == function
    # the hub may change or vanish: a reproduction runs the recorded snapshot, never the hub
    (hub / "functions/src/describe/describe.py").write_text("def analyze(context, table):\n    return 0\n")
    assert pg.reproduce(result.run_id, backend=backend).verdict.verdict == "REPRODUCED"  # type: ignore[union-attr]


def test_hub_uris_name_a_source_a_version_and_use_mlrun_name_forms(settings: pg.Settings, hub: Path) -> None:
    other = hub.parent / "other"
    build_hub(str(other))
    (other / "functions/src/describe/describe.py").write_text(DESCRIBE + "\n# other\n")
    add_source(settings, "other", str(other))
    assert [s.name for s in list_sources(settings)] == ["local", "other"]
    assert resolve("hub://describe", settings).source.name == "local"  # sources are searched in order
    assert resolve("hub://other/describe", settings).code.endswith(b"# other\n")
    assert resolve("hub://describe:1.5.0", settings).item.version == "1.5.0"
    assert resolve("hub://needs_req", settings).item.name == "needs-req"  # MLRun: _ and - name one item
    with pytest.raises(NotFound, match=r"hub://describe:9\.9\.9: no item 'describe' version '9\.9\.9'"):
        resolve("hub://describe:9.9.9", settings)
    # a published version's folder whose item.yaml says another version: the hub's mistake, named
    wrong = other / "functions/master/describe/3.0.0/src"
    wrong.mkdir(parents=True)
    (wrong / "item.yaml").write_text((other / "functions/src/describe/item.yaml").read_text())
    with pytest.raises(ConfigError, match=r"describe/3\.0\.0/src/item\.yaml says version '1\.5\.0', not '3\.0\.0'"):
        resolve("hub://other/describe:3.0.0", settings)
    with pytest.raises(NotFound, match="no hub source 'nope'"):
        resolve("hub://nope/describe", settings)
    with pytest.raises(ConfigError, match="kind 'serving' is not supported"):
        resolve("hub://model-server", settings)
    assert resolve("hub://model-server", settings, runnable=False).item.kind == "serving"  # shown, not run


def test_show_reads_params_from_the_signature_and_docstring_without_importing() -> None:
    summary, params = signature(DESCRIBE.encode() + b"\nraise SystemExit('imported!')\n", "analyze")
    assert summary == "Describe a table: row count, columns, and a summary artifact."
    assert [(p.name, p.annotation, p.default, p.doc) for p in params] == [
        ("context", None, None, "The function context"),
        ("table", None, None, "MLRun input pointing to a csv file"),
        ("name", "str", "'dataset'", "Key of dataset to database"),
        ("label_column", "str", "None", "Ground truth column label"),
        ("sample", "int", "2", "How many rows go into the preview result"),
    ]
    google = b'def f(x: int, *, y=3):\n    """Do.\n\n    Args:\n        x (int): the x\n        y: the y\n    """\n'
    assert [(p.name, p.default, p.doc) for p in signature(google, "f")[1]] == [
        ("x", None, "the x"),
        ("y", "3", "the y"),
    ]


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(tmp_path / "home"), COLUMNS="250", NO_COLOR="1")

    def run(*args: str, ok: bool = True, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN), *args],
            capture_output=True,
            text=True,
            env={**env, **(extra or {})},
            cwd=tmp_path,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        if ok:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    return run


def test_cli_sources_list_show_run_and_reproduce(cli, tmp_path: Path, table: Path) -> None:  # type: ignore[no-untyped-def]
    build_hub(str(tmp_path / "hub"))
    assert "hub source local ->" in cli("hub", "sources", "add", "local", "hub").stdout
    assert cli("hub", "sources", "add", "local", "x", ok=False).stderr.startswith("error: hub source 'local' exists")
    listed = [json.loads(line) for line in cli("hub", "list", "--json").stdout.splitlines()]
    assert [(i["name"], i["version"], i["kind"]) for i in listed] == [
        ("describe", "1.5.0", "job"),
        ("model-server", "2.0.0", "serving"),
        ("needs-req", "0.1.0", "job"),
    ]
    table_out = cli("hub", "list", "--category", "utilities").stdout
    assert "needs-req" in table_out and "describe" not in table_out
    shown = cli("hub", "show", "describe").stdout
    assert "describe 1.5.0" in shown and f"code          {sha(DESCRIBE)}" in shown
    assert "label_column: str = None  - Ground truth column label" in shown

    out = cli("run", "hub://local/describe:1.5.0", "-i", f"table={table}", "-p", "sample=1").stdout
    assert "result  rows = 3" in out and 'result  preview = [{"a": "1", "b": "2", "label": "x"}]' in out
    run_id = out.split()[1]
    shown_run = json.loads(cli("show", run_id, "--json").stdout)
    assert shown_run["runtime"]["function"]["hub_source"] == "local"
    assert shown_run["params"]["sample"] == 1
    assert "REPRODUCED" in cli("reproduce", run_id).stdout

    (tmp_path / "shout.py").write_text("def shout(context, text: str = 'hi'):\n    return {'loud': text.upper()}\n")
    published = cli("hub", "publish", "shout.py:shout", "--name", "shout", "--version", "0.1.0", "--to", "pub").stdout
    assert (
        published.startswith("published hub://shout:0.1.0 -> ") and "pub/functions/master/shout/0.1.0/src" in published
    )
    cli("hub", "sources", "add", "pub", "pub")
    assert 'result  loud = "HO"' in cli("run", "hub://pub/shout", "-p", "text=ho").stdout

    missing = cli("run", "hub://needs-req", ok=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "error: hub://needs-req needs inflection==0.5.1, not installed here: run it with --isolated"
        " (or set PROVGRAPH_ISOLATED=missing)"
    )


def test_publish_writes_mlrun_format_that_resolves_and_runs(backend: pg.Backend, tmp_path: Path) -> None:
    code = tmp_path / "shout.py"
    code.write_text('def shout(context, text: str = "hi"):\n    """Shout.\n\n    :param text: what\n    """\n'
                    '    return {"loud": text.upper()}\n')  # fmt: skip
    target = HubSource("mine", str(tmp_path / "pub"))
    from provgraph._hub import publish

    publish(code, "shout", target, name="shout_it", version="1.0.0", description="shouts", categories=["utilities"])
    base = tmp_path / "pub/functions/master"
    item = yaml.safe_load((base / "shout_it/1.0.0/src/item.yaml").read_text())
    assert item["name"] == "shout-it" and item["version"] == "1.0.0"
    assert item["spec"] == {
        "filename": "shout.py",
        "handler": "shout",
        "image": "mlrun/mlrun",
        "kind": "job",
        "requirements": [],
    }
    function = yaml.safe_load((base / "shout_it/latest/src/function.yaml").read_text())
    assert base64.b64decode(function["spec"]["build"]["functionSourceCode"]) == code.read_bytes()
    assert function["spec"]["default_handler"] == "shout"
    assert function["spec"]["entry_points"]["shout"]["parameters"] == [
        {"name": "context"},
        {"name": "text", "type": "str", "doc": "what", "default": "'hi'"},
    ]
    catalog = json.loads((base / "catalog.json").read_text())
    assert set(catalog) == {"shout_it"} and set(catalog["shout_it"]) == {"latest", "1.0.0"}
    assert catalog["shout_it"]["1.0.0"]["assets"] == {"source": "src/shout.py", "function": "src/function.yaml"}

    add_source(backend.settings, "mine", str(tmp_path / "pub"))
    result = pg.run("hub://mine/shout-it:1.0.0", params={"text": "x"}, backend=backend).raise_for_state()
    assert result.results == {"loud": "X"}
    # a catalog is untrusted: entries of another shape are left out, the good ones still listed
    broken = {**catalog, "yy": {"1.0": "str"}, "zz": {"1.0": {"spec": "x"}}, "ww": ["a"]}
    (base / "catalog.json").write_text(json.dumps(broken))
    assert set(HubSource("mine", str(tmp_path / "pub")).published_catalog()) == {"shout_it"}
    (base / "catalog.json").write_text(json.dumps(catalog))

    code.write_text("def shout(context):\n    return {'loud': 'changed'}\n")
    with pytest.raises(ConfigError, match=r"shout-it 1\.0\.0 is already published in mine with other code"):
        publish(code, "shout", target, name="shout-it", version="1.0.0")
    publish(code, "shout", target, name="shout-it", version="0.9.0")  # an older version: latest stays 1.0.0
    assert resolve("hub://mine/shout-it", backend.settings).item.version == "1.0.0"
    assert resolve("hub://mine/shout-it:0.9.0", backend.settings).code == code.read_bytes()
    publish(code, "shout", target, name="shout-it", version="1.1.0")
    assert resolve("hub://mine/shout-it", backend.settings).item.version == "1.1.0"
    assert set(json.loads((base / "catalog.json").read_text())["shout_it"]) == {"latest", "0.9.0", "1.0.0", "1.1.0"}
    publish(code, "shout", target, name="shout-it", version="1.1.0")  # the same again: a no-op
    with pytest.raises(ConfigError, match=r"shout-it 1\.1\.0 is already published in mine with another spec"):
        publish(code, "shout", target, name="shout-it", version="1.1.0", requirements=["evilpkg>=1"])
    with pytest.raises(ConfigError, match=r"version '0-old' is not a PEP 440 version"):
        publish(code, "shout", target, name="shout-it", version="0-old")  # it would take `latest` from 1.1.0


@pytest.mark.s3
def test_hub_on_s3_resolves_lists_shows_runs_publishes_and_reproduces(
    settings: pg.Settings, s3: str, table: Path, tmp_path: Path
) -> None:
    import boto3

    bucket = f"hub-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3).create_bucket(Bucket=bucket)
    opts = {"client_kwargs": {"endpoint_url": s3}}
    build_hub(f"s3://{bucket}/hub", opts)
    settings = settings.model_copy(update={"s3_endpoint_url": s3})
    add_source(settings, "s3hub", f"s3://{bucket}/hub")
    source = list_sources(settings)[0]
    assert sorted(source.catalog()) == ["describe", "model_server", "needs_req"]
    assert [p.name for p in signature(resolve("hub://describe", settings).code, "analyze")[1]][:2] == [
        "context",
        "table",
    ]
    backend = pg.Backend(settings)
    try:
        result = pg.run("hub://s3hub/describe", inputs={"table": str(table)}, backend=backend)
        _check_hub_run(backend, result, "s3hub", str(table))
        assert result.run_id and pg.reproduce(result.run_id, backend=backend).verdict.verdict == "REPRODUCED"  # type: ignore[union-attr]

        from provgraph._hub import publish

        code = tmp_path / "twice.py"
        code.write_text("def twice(context, n: int = 2):\n    return {'n': n * 2}\n")
        publish(code, "twice", source, name="twice", version="0.1.0")
        assert "twice" in source.catalog()  # the published catalog now lists it (and only it)
        ran = pg.run("hub://s3hub/twice:0.1.0", params={"n": "21"}, backend=backend).raise_for_state()
        assert ran.results == {"n": 42}
        assert pg.reproduce(ran.run_id, backend=backend).verdict.verdict == "REPRODUCED"  # type: ignore[union-attr]
    finally:
        backend.close()


@pytest.fixture
def http_root(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real HTTP server (stdlib, own thread) serving a folder: a hub on a web server, as MLRun's
    default hub is. The published layout is read over HTTP, with no directory listing."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_published_hub_is_read_over_http(backend: pg.Backend, http_root: tuple[Path, str], table: Path) -> None:
    from provgraph._hub import publish

    root, url = http_root
    code = root.parent / "describe.py"
    code.write_text(DESCRIBE)
    publish(code, "analyze", HubSource("w", str(root)), name="describe", version="1.5.0", categories=["data-analysis"])
    add_source(backend.settings, "web", url)
    web = list_sources(backend.settings)[0]
    assert sorted(web.catalog()) == ["describe"]  # from catalog.json: HTTP lists no folders
    result = pg.run("hub://web/describe:1.5.0", inputs={"table": str(table)}, backend=backend).raise_for_state()
    run = backend.graph().run(result.run_id)
    assert run is not None and run.runtime["function"]["hub_url"] == f"{url}/functions/master/describe/1.5.0/src"
    assert run.runtime["function"]["code_hash"] == sha(DESCRIBE)
    with pytest.raises(NotFound, match=r"hub://web/describe:2\.0\.0: no item"):
        resolve("hub://web/describe:2.0.0", backend.settings)
