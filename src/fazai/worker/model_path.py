"""Turn ``--model`` (a catalog name or a .gguf path) into a file path."""

from __future__ import annotations

from pathlib import Path

from fazai.models.base import ProviderError


class ModelMissing(ProviderError):
    """The model file is not there; the message names the command that fetches it."""


def resolve_model(name_or_path: str, models_dir: Path) -> Path:
    """Resolve a model name or path, or raise with the command that fixes it.

    Uses the packaged-model catalog (``fazai.models.catalog``) when it is installed; otherwise a
    path is taken as is and a bare name means ``<models_dir>/<name>.gguf``.
    """
    try:
        from fazai.models.catalog import resolve_model as catalog_resolve  # type: ignore[import-not-found]
    except ImportError:
        catalog_resolve = None
    if catalog_resolve is not None:
        return catalog_resolve(name_or_path, models_dir)
    looks_like_path = name_or_path.endswith(".gguf") or "/" in name_or_path
    path = Path(name_or_path).expanduser() if looks_like_path else models_dir / f"{name_or_path}.gguf"
    if not path.is_file():
        hint = (
            f"check the path {path}"
            if looks_like_path
            else f"run `fazai model pull {name_or_path}` (looked in {models_dir})"
        )
        raise ModelMissing(f"model {name_or_path} not found — {hint}", provider="worker", retryable=False)
    return path
