from __future__ import annotations

from pathlib import Path

import pytest

from loopml.kernel.config import find_workspace_root, load_settings
from loopml.kernel.exceptions import ConfigError


def test_defaults_point_into_the_workspace_folder(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    assert s.resolved_db_url == f"sqlite:///{tmp_path / '.loopml' / 'loopml.db'}"
    assert s.resolved_artifacts_url == str(tmp_path / ".loopml" / "artifacts")


def test_toml_is_read_and_env_wins_over_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "loopml.toml").write_text('[loopml]\ndb_url = "sqlite:///from-file.db"\nexecutor = "process"\n')
    assert load_settings(tmp_path).db_url == "sqlite:///from-file.db"
    monkeypatch.setenv("LOOPML_DB_URL", "sqlite:///from-env.db")
    s = load_settings(tmp_path)
    assert s.db_url == "sqlite:///from-env.db"
    assert s.executor == "process"


def test_nested_serve_settings_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_SERVE__MAX_BATCH_SIZE", "7")
    assert load_settings(tmp_path).serve.max_batch_size == 7


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text("[loopml\n")
    with pytest.raises(ConfigError, match="loopml.toml: not valid TOML"):
        load_settings(tmp_path)


def test_invalid_value_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "loopml.toml").write_text('[loopml.serve]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match="invalid settings"):
        load_settings(tmp_path)


def test_workspace_root_is_found_upward(tmp_path: Path) -> None:
    (tmp_path / ".loopml").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_workspace_root(deep) == tmp_path.resolve()


def test_env_overrides_one_key_of_a_section_and_keeps_the_files_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "loopml.toml").write_text("[loopml.serve]\nport = 9000\n")
    monkeypatch.setenv("LOOPML_SERVE__HOST", "0.0.0.0")
    s = load_settings(tmp_path)
    assert (s.serve.host, s.serve.port) == ("0.0.0.0", 9000)


def test_invalid_env_value_is_a_config_error_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_SERVE__PORT", "abc")
    with pytest.raises(ConfigError, match=r"invalid settings .*serve\.port: Input should be a valid integer.*'abc'"):
        load_settings(tmp_path)
