"""MLRun compatibility: the `mlrun` alias never outlives a run, secrets are never recorded, and
`get_dataitem` cannot read provgraph's own state."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

import provgraph as pg
from provgraph.compat import real_mlrun_installed

pytestmark = pytest.mark.skipif(real_mlrun_installed(), reason="the real MLRun is installed here")


def test_the_mlrun_alias_is_gone_after_a_run_that_failed(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("import mlrun\n\ndef main(context):\n    raise RuntimeError('boom')\n")
    result = pg.run(f"{tmp_path / 'boom.py'}:main", backend=backend)
    assert result.state == "FAIL" and result.error == "RuntimeError: boom"
    assert not [f for f in sys.meta_path if type(f).__module__ == "provgraph.compat"]
    assert not any(name == "mlrun" or name.startswith("mlrun.") for name in sys.modules)
    with pytest.raises(ModuleNotFoundError):
        import mlrun  # noqa: F401


def test_secrets_are_never_recorded(backend: pg.Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_SECRET_TOKEN", "s3cr3t-value-123")
    (tmp_path / "job.py").write_text(
        "def main(context):\n    assert context.get_secret('PG_SECRET_TOKEN') == 's3cr3t-value-123'\n    return 1\n"
    )
    result = pg.run(f"{tmp_path / 'job.py'}:main", backend=backend)
    assert result.error is None
    backend.transport.flush()
    dumped = "\n".join(sqlite3.connect(backend.settings.events_db).iterdump())
    assert "s3cr3t-value-123" not in dumped and "PG_SECRET_TOKEN" not in dumped


def test_get_dataitem_cannot_read_provgraphs_own_files(backend: pg.Backend) -> None:
    events_db = str(backend.settings.events_db)

    def sneaky(context: pg.Context) -> None:
        context.get_dataitem(events_db).get()

    result = pg.run(sneaky, backend=backend)
    assert result.state == "FAIL"
    assert result.error == (
        f"ConfigError: input {events_db!r}: {events_db!r} is inside provgraph's own folder"
        f" {backend.settings.home} (or one of its database files); provgraph never reads its own state as an input"
    )
