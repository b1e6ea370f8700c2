"""`provgraph delete run|artifact|project`, `--include-deleted` and `provgraph gc`, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provgraph.events.artifacts import sha256_bytes
from tests.test_cli import cli  # noqa: F401  (the CLI fixture)

JOBS = """\
def train(ctx, body: str = "w1"):
    ctx.log_model("model", body=body.encode(), framework="none")

def serve(ctx, model):
    ctx.log_result("read", model.get().decode())
"""


@pytest.mark.slow
def test_delete_hides_marks_and_gc_frees(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    (tmp_path / "job.py").write_text(JOBS)
    cli("run", "job.py:train")
    cli("run", "job.py:train", "-p", "body=w2")
    v1, v2 = sha256_bytes(b"w1"), sha256_bytes(b"w2")
    train1, train2 = [json.loads(line)["run_id"] for line in cli("runs", "--json").stdout.splitlines()][::-1]
    gone = json.loads(cli("delete", "artifact", "store://default/model:latest", "--reason", "bad", "--json").stdout)
    assert (gone["kind"], gone["target"], gone["project"], gone["reason"]) == (
        "artifact",
        f"store://default/model@{v2}",
        "default",
        "bad",
    )  # `:latest`: that one version, not the artifact
    assert cli("get", "store://default/model").stdout == "w1"  # the newest live version
    listed = json.loads(cli("artifacts", "list", "--json").stdout)
    assert [(a["uri"], a["versions"]) for a in listed] == [("store://default/model", 1)]
    everything = json.loads(cli("artifacts", "list", "--include-deleted", "--json").stdout)
    assert [a["versions"] for a in everything] == [2]

    cli("run", "job.py:serve", "-i", f"model=store://default/model@{v1}")
    cli("delete", "run", train1)
    runs = [json.loads(line) for line in cli("runs", "--json").stdout.splitlines()]
    assert train1 not in [r["run_id"] for r in runs] and train2 in [r["run_id"] for r in runs]
    shown = cli("runs", "--include-deleted", "--json").stdout.splitlines()
    marked = {r["run_id"]: r.get("deleted") for r in map(json.loads, shown)}
    assert marked[train1] is not None and marked[train2] is None
    assert cli("show", train1, ok=False).returncode == 1
    assert "deleted" in cli("show", train1, "--include-deleted").stdout
    tree = cli("lineage", f"store://default/model@{v1}").stdout
    assert f"run {train1}" in tree and "(deleted " in tree

    dry = json.loads(cli("gc", "--dry-run", "--min-age", "0", "--json").stdout)
    assert [o["digest"] for o in dry["removed"]] == [v2] and dry["freed"] == 2
    assert cli("gc", "--min-age", "0").stdout.splitlines()[0] == f"removed {v2} (2 bytes)"
    assert json.loads(cli("gc", "--min-age", "0", "--json").stdout)["removed"] == []

    refused = cli("delete", "project", "default", ok=False)
    assert (refused.returncode, refused.stderr) == (
        2,
        "error: deleting a project asks for confirmation, but stdin is not a terminal; pass --yes\n",
    )
    cli("delete", "project", "default", "--yes")
    assert cli("runs", "--project", "default", "--json").stdout == ""
    missing = cli("delete", "run", "no-such-run", ok=False)
    assert (missing.returncode, missing.stderr) == (1, "error: no run 'no-such-run'\n")


def test_get_writes_through_what_is_not_a_regular_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """`get -o` replaces a regular file whole, writes a symlink's target, and writes through a FIFO
    or a device: renaming over them (as root: `-o /dev/null`) broke them for every process. Bytes
    gone from the store are one line that says so."""
    import os
    import stat
    import threading

    (tmp_path / "job.py").write_text(JOBS)
    cli("run", "job.py:train")
    (tmp_path / "target.txt").write_text("old")
    (tmp_path / "link").symlink_to(tmp_path / "target.txt")
    cli("get", "store://default/model", "-o", "link")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "target.txt").read_text() == "w1"
    os.mkfifo(tmp_path / "fifo")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append((tmp_path / "fifo").read_bytes()))
    reader.start()
    cli("get", "store://default/model", "-o", "fifo")
    reader.join(timeout=30)
    assert got == [b"w1"] and not (tmp_path / "fifo").is_file()
    (
        tmp_path / "home" / "artifacts" / "objects" / "sha256" / sha256_bytes(b"w1")[7:9] / sha256_bytes(b"w1")[7:]
    ).unlink()
    missing = cli("get", "store://default/model", ok=False)
    assert missing.returncode == 1 and "its bytes are not in the artifact store" in missing.stderr
    assert missing.stderr.count("\n") == 1
    cli("run", "job.py:train")  # the same bytes logged again: stored again
    # a device of the test's own (the null device's numbers), never the machine's /dev/null: a
    # regression would replace that for every process
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device needs root (CAP_MKNOD)")
    cli("get", "store://default/model", "-o", "null")
    assert device.is_char_device()


def test_a_deletion_covers_what_existed_then_not_what_is_made_later_under_its_name(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Deleting an artifact or a project is not a black hole: a version logged, or a run made, under
    the same name afterwards is listed, resolved, read, and its bytes are kept by `gc`."""
    (tmp_path / "job.py").write_text(JOBS)
    cli("run", "job.py:train")
    cli("delete", "artifact", "store://default/model", "--reason", "bad")
    assert cli("get", "store://default/model", ok=False).returncode == 1
    assert cli("doctor").stdout.startswith("every run is complete")  # a deletion's run is one event by design
    cli("run", "job.py:train", "-p", "body=w3")  # logged again under the deleted name
    assert cli("get", "store://default/model").stdout == "w3"
    assert [a["versions"] for a in json.loads(cli("artifacts", "list", "--json").stdout)] == [1]
    assert json.loads(cli("run", "job.py:serve", "-i", "model=store://default/model", "--json").stdout)["results"] == {
        "read": "w3"
    }
    cli("delete", "project", "default", "--yes")
    assert cli("runs", "--json").stdout == ""
    fresh = json.loads(cli("run", "job.py:train", "-p", "body=w4", "--json").stdout)
    listed = [json.loads(line)["run_id"] for line in cli("runs", "--json").stdout.splitlines()]
    assert listed == [fresh["run_id"]]
    in_project = cli("runs", "--project", "default", "--json").stdout.splitlines()
    assert [json.loads(line)["run_id"] for line in in_project] == [fresh["run_id"]]
    assert json.loads(cli("show", fresh["run_id"][:13], "--json").stdout)["run_id"] == fresh["run_id"]
    swept = json.loads(cli("gc", "--min-age", "0", "--dry-run", "--json").stdout)
    assert sha256_bytes(b"w4") not in {o["digest"] for o in swept["removed"]}
    assert sha256_bytes(b"w1") in {o["digest"] for o in swept["removed"]}  # what the deletions covered
