from pathlib import Path

import pytest

from fazai.config import ConfigError, load_settings


def test_defaults_without_file(tmp_path: Path) -> None:
    s = load_settings(environ={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    assert s.agent.max_iterations == 32
    assert s.ai_provider.provider == "worker"
    assert "read_only" in s.safety.auto_approve


def test_file_and_env_override(tmp_path: Path) -> None:
    f = tmp_path / "fazai.toml"
    f.write_text('[agent]\nmax_iterations = 7\n[worker]\nthreads = 2\n[ai_provider]\nmodel = "x"\n')
    s = load_settings(f, environ={"FAZAI_WORKER__THREADS": "3"})
    assert s.agent.max_iterations == 7
    assert s.worker.threads == 3
    assert s.ai_provider.model == "x"
    assert s.source == f


def test_bad_value_names_key_and_file(tmp_path: Path) -> None:
    f = tmp_path / "fazai.toml"
    f.write_text("[agent]\nmax_iterations = -1\n")
    with pytest.raises(ConfigError) as e:
        load_settings(f, environ={})
    msg = str(e.value)
    assert "agent.max_iterations" in msg
    assert str(f) in msg


def test_bad_env_value_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(environ={"XDG_CONFIG_HOME": str(tmp_path), "FAZAI_DAEMON__PORT": "notaport"})
    assert "FAZAI_DAEMON__PORT" in str(e.value)


def test_unknown_key_rejected(tmp_path: Path) -> None:
    f = tmp_path / "fazai.toml"
    f.write_text("[agent]\nmax_iteratons = 3\n")
    with pytest.raises(ConfigError) as e:
        load_settings(f, environ={})
    assert "max_iteratons" in str(e.value)


def test_unparsable_toml(tmp_path: Path) -> None:
    f = tmp_path / "fazai.toml"
    f.write_text("[agent\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_settings(f, environ={})


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
