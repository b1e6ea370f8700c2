"""Settings: arguments > PROVGRAPH_* environment > provgraph.toml > defaults; mistakes are errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from provgraph import ConfigError, Settings, load_settings
from provgraph.events.settings import ENV_PREFIX, NOT_SETTINGS

REPO = Path(__file__).resolve().parent.parent


def test_precedence_arguments_then_environment_then_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "provgraph.toml").write_text('[provgraph]\nproject = "from-file"\nkafka_partitions = 7\n')
    assert (load_settings().project, load_settings().kafka_partitions) == ("from-file", 7)
    monkeypatch.setenv("PROVGRAPH_PROJECT", "from-env")
    assert load_settings().project == "from-env" and load_settings().kafka_partitions == 7
    assert load_settings(project="from-arg").project == "from-arg"
    (tmp_path / "elsewhere.toml").write_text("kafka_partitions = 5\n")
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert load_settings().kafka_partitions == 5  # the named file replaces ./provgraph.toml


def test_mistakes_are_config_errors_that_name_the_setting(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGRAPH_TRANSPORT", "pigeon")
    with pytest.raises(ConfigError, match="PROVGRAPH_TRANSPORT"):
        load_settings()
    monkeypatch.delenv("PROVGRAPH_TRANSPORT")
    (tmp_path / "provgraph.toml").write_text("projcet = 'typo'\n")
    with pytest.raises(ConfigError, match="projcet"):
        load_settings()
    (tmp_path / "provgraph.toml").write_text("not [valid toml")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings()
    (tmp_path / "provgraph.toml").write_bytes(b"\xff\xfe not UTF-8")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings()


def test_an_empty_variable_is_as_if_unset(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path / "home"))
    (tmp_path / "provgraph.toml").write_text('[provgraph]\nproject = "from-file"\n')
    monkeypatch.setenv("PROVGRAPH_PROJECT", "")
    assert load_settings().project == "from-file"
    monkeypatch.setenv("PROVGRAPH_HOME", "")  # not the current folder
    assert load_settings().home == Settings().home != Path("")


def test_list_and_dict_settings_parse_from_environment_text(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGRAPH_K8S_NAMESPACES", "a, b,")
    monkeypatch.setenv("PROVGRAPH_K8S_POD_ANNOTATIONS", '{"sidecar": "off"}')
    loaded = load_settings()
    assert loaded.k8s_namespaces == ["a", "b"] and loaded.k8s_pod_annotations == {"sidecar": "off"}
    monkeypatch.setenv("PROVGRAPH_K8S_POD_ANNOTATIONS", "{broken")
    with pytest.raises(ConfigError, match="K8S_POD_ANNOTATIONS"):
        load_settings()


def test_a_missing_file_named_by_provgraph_config_is_an_error(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == f"PROVGRAPH_CONFIG names {str(tmp_path / 'gone.toml')!r}, which is not a file"
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(tmp_path))  # a directory is not a config file either
    with pytest.raises(ConfigError, match="which is not a file"):
        load_settings()
    (tmp_path / "provgraph.toml").write_text('project = "from-file"\n')
    monkeypatch.setenv("PROVGRAPH_CONFIG", "")  # set but empty: no file at all, not even ./provgraph.toml
    assert load_settings().project == "default"
    monkeypatch.delenv("PROVGRAPH_CONFIG")
    assert load_settings().project == "from-file"  # ./provgraph.toml, as documented


def test_unknown_provgraph_variables_are_errors(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVGRAPH_STOR", "neo4j")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "unknown environment variable PROVGRAPH_STOR: not a provgraph setting (did you mean PROVGRAPH_STORE?)"
    )
    monkeypatch.delenv("PROVGRAPH_STOR")
    monkeypatch.setenv("PROVGRAPH_QQQQ", "1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "unknown environment variable PROVGRAPH_QQQQ: not a provgraph setting"
        " (see the configuration table in the README)"
    )


def test_variables_that_are_not_settings_are_accepted(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NOT_SETTINGS - {"PROVGRAPH_CONFIG"}:
        monkeypatch.setenv(name, "1")
    assert load_settings().store == "sqlite"


# Names that look like variables but are not read from the environment.
NOT_VARIABLES = {"PROVGRAPH_SERVICES"}  # a tuple in tests/test_compose.py


@pytest.mark.slow
def test_every_provgraph_variable_used_in_the_repository_is_a_setting_or_listed() -> None:
    """The allow-list cannot fall behind the scripts, manifests and docs (tests/test_* hold typos on purpose)."""
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    pattern = re.compile(r"(?<![A-Za-z0-9_])PROVGRAPH_[A-Z0-9_]*[A-Z0-9]")
    # The repository's own files (not the venvs, jars and node modules that scripts put beside them).
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    used: dict[str, Path] = {}
    for rel in (Path(name) for name in listed.decode().split("\0") if name):
        path = REPO / rel
        if not path.is_file() or (rel.parts[0] == "tests" and rel.name.startswith("test_")):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for name in pattern.findall(text):
            used.setdefault(name, rel)
    assert "PROVGRAPH_INFRA_DIR" in used and "PROVGRAPH_STORE" in used  # the scan does see the repository
    stray = {name: str(rel) for name, rel in used.items() if name not in fields | NOT_SETTINGS | NOT_VARIABLES}
    assert stray == {}
