"""A function hub in MLRun's source layout (`functions/src/<name>/item.yaml` + the source file), as
the mlrun/functions repository lays it out, written to any fsspec URL for the hub tests."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

DESCRIBE = textwrap.dedent(
    '''
    import csv
    import io


    def _columns(rows):
        return list(rows[0].keys()) if rows else []


    def analyze(context, table, name: str = "dataset", label_column: str = None, sample: int = 2):
        """Describe a table: row count, columns, and a summary artifact.

        :param context:      The function context
        :param table:        MLRun input pointing to a csv file
        :param name:         Key of dataset to database
        :param label_column: Ground truth column label
        :param sample:       How many rows go into the
                             preview result
        """
        rows = list(csv.DictReader(io.StringIO(table.get().decode())))
        summary = "column,count\\n" + "".join(f"{c},{sum(1 for r in rows if r[c])}\\n" for c in _columns(rows))
        context.log_artifact(f"{name}-describe", body=summary, format="csv")
        context.log_result("rows", len(rows))
        context.log_result("columns", _columns(rows))
        context.log_result("label_column", label_column)
        context.log_result("preview", rows[:sample])
    '''
).lstrip()

TABLE = b"a,b,label\n1,2,x\n3,,y\n5,6,\n"
"""A table `describe` reads: 3 rows; columns a, b, label."""

NEEDS_REQ = textwrap.dedent(
    '''
    import inflection


    def snake(context, text: str = "HubFunctionName"):
        """Snake-case `text` with the `inflection` package (not installed in the test environment)."""
        return {"snake": inflection.underscore(text), "version": inflection.__version__}
    '''
).lstrip()

REQUIREMENT = "inflection==0.5.1"


def item(name: str, version: str, filename: str, handler: str, **extra: Any) -> dict[str, Any]:
    """An item.yaml with the fields the real ones in mlrun/functions have."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "categories": extra.pop("categories", ["data-analysis"]),
        "description": extra.pop("description", f"{name} for tests"),
        "doc": "",
        "example": f"{name}.ipynb",
        "generationDate": "2022-08-28:17-25",
        "hidden": False,
        "icon": "",
        "labels": {"author": "Iguazio"},
        "maintainers": [],
        "marketplaceType": "",
        "mlrunVersion": "1.10.0",
        "name": name,
        "platformVersion": "3.5.3",
        "spec": {
            "filename": filename,
            "handler": handler,
            "image": "mlrun/mlrun",
            "kind": extra.pop("kind", "job"),
            "requirements": extra.pop("requirements", []),
        },
        "url": "",
        "version": version,
    }
    body["spec"].update(extra)
    return body


def write_item(fs: Any, root: str, folder: str, body: dict[str, Any], source: str | bytes) -> None:
    base = f"{root}/functions/src/{folder}"
    fs.makedirs(base, exist_ok=True)
    fs.pipe_file(f"{base}/item.yaml", yaml.safe_dump(body, sort_keys=False).encode())
    fs.pipe_file(f"{base}/{body['spec']['filename']}", source.encode() if isinstance(source, str) else source)


def build_hub(url: str, storage_options: dict[str, Any] | None = None) -> None:
    """`describe` (reads a table), `needs_req` (requires inflection), `serve` (a serving kind: listed, not run)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    write_item(fs, root, "describe", item("describe", "1.5.0", "describe.py", "analyze"), DESCRIBE)
    write_item(
        fs,
        root,
        "needs_req",
        item("needs-req", "0.1.0", "needs_req.py", "snake", categories=["utilities"], requirements=[REQUIREMENT]),
        NEEDS_REQ,
    )
    write_item(
        fs,
        root,
        "model_server",
        item("model-server", "2.0.0", "model_server.py", "serve", kind="serving", categories=["model-serving"]),
        "def serve(context):\n    return 1\n",
    )
