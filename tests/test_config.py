"""Settings: arguments > PROVGRAPH_* environment > provgraph.toml > defaults; mistakes are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from provgraph import ConfigError, Settings, load_settings


def test_precedence_arguments_then_environment_then_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "provgraph.toml").write_text('[provgraph]\nproject = "from-file"\nkafka_partitions = 7\n')
    assert (load_settings().project, load_settings().kafka_partitions) == ("from-file", 7)
    monkeypatch.setenv("PROVGRAPH_PROJECT", "from-env")
    assert load_settings().project == "from-env" and load_settings().kafka_partitions == 7
    assert load_settings(project="from-arg").project == "from-arg"
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert load_settings().kafka_partitions == 3  # the named file does not exist: defaults


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
