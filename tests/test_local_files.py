"""A plain local path is read with the standard library (no fsspec import): the answers must be those
of fsspec's `LocalFileSystem`, reached here through the same path as a `file://` URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from provgraph._dataitem import DataItem
from provgraph.events.artifacts import ArtifactStore, CorruptArtifact, plain_local_path, sha256_bytes
from provgraph.events.errors import NotFound


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("/a/b.csv", "/a/b.csv"),
        ("/a/dir/", None),  # fsspec strips the slash
        ("a/b.csv", None),  # relative: fsspec makes it absolute
        ("~/b.csv", None),
        ("file:///a/b.csv", None),
        ("s3://bucket/key", None),
        ("simplecache::/a/b.csv", None),
    ],
)
def test_only_paths_fsspec_leaves_unchanged_are_plain(url: str, plain: str | None) -> None:
    assert plain_local_path(url) == plain
    if plain is not None:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url)
        assert path == plain and "file" in fs.protocol


def test_a_plain_artifact_store_answers_as_through_fsspec(tmp_path: Path) -> None:
    plain, via = ArtifactStore(str(tmp_path / "objects")), ArtifactStore(f"file://{tmp_path}/objects")
    assert plain._fs is None and via._fs is not None
    assert plain.root == via.root
    (tmp_path / "f.bin").write_bytes(b"file")
    for store in (plain, via):
        assert store.put_bytes(b"hello") == (sha256_bytes(b"hello"), 5)
        assert store.put_file(tmp_path / "f.bin") == (sha256_bytes(b"file"), 4)
    digest = sha256_bytes(b"hello")
    missing = sha256_bytes(b"missing")
    for store in (plain, via):
        assert store.uri(digest) == via.uri(digest) == f"{tmp_path}/objects/objects/sha256/{digest[7:9]}/{digest[7:]}"
        assert (store.exists(digest), store.exists(missing)) == (True, False)
        assert store.get_bytes(digest) == b"hello"
        assert sorted(o.digest for o in store.objects()) == sorted([digest, sha256_bytes(b"file")])
        with pytest.raises(FileNotFoundError):
            store.get_bytes(missing)
    Path(plain.uri(digest)).write_bytes(b"tampered")
    for store in (plain, via):
        with pytest.raises(CorruptArtifact):
            store.get_bytes(digest)
    assert plain._fs is not None  # `objects` (gc) still goes through fsspec


def test_a_plain_input_answers_as_through_fsspec(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\n1,2\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x.txt").write_text("x")
    answers = []
    for url in (str(data), f"file://{data}"):
        whole, part = DataItem("d", url), DataItem("d", url)
        answers.append((whole.get(), whole.hash, whole.size, part.get(3, 2), part.hash, part.open().read()))
    assert (
        answers[0]
        == answers[1]
        == (b"a,b\n1,2\n", sha256_bytes(b"a,b\n1,2\n"), 8, b"b\n1", sha256_bytes(b"a,b\n1,2\n"), b"a,b\n1,2\n")
    )
    folders = [DataItem("d", url) for url in (str(tmp_path / "folder"), f"file://{tmp_path}/folder")]
    assert folders[0].hash == folders[1].hash and folders[0].is_directory and folders[1].is_directory
    for url in (str(tmp_path / "missing"), f"file://{tmp_path}/missing"):
        with pytest.raises(NotFound):
            DataItem("d", url).get()
        with pytest.raises(NotFound):
            _ = DataItem("d", url).hash
    pinned = DataItem("d", str(data), expected=sha256_bytes(b"other"))
    with pytest.raises(CorruptArtifact):
        pinned.get()
