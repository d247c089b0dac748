"""Starter knowledge: verified recipes for everyday operations, shipped in the package as TOML.

Each ``recipes/*.toml`` file holds ``[[recipe]]`` tables (``id``, ``title``, ``tags``, ``snippet``, optional
``service``, ``notes``, ``distros``); a file-level ``distros`` list is the default for its recipes and
names the distros the commands were checked on. TOML (stdlib ``tomllib``) keeps this dependency-free.
"""

from __future__ import annotations

import hashlib
import io
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np

from fazai.knowledge.kb import KBItem

VECTORS_FILE = "vectors.npz"

_EPOCH = "2026-11-23T00:00:00Z"  # fixed so re-imports are byte-identical (idempotent)


def _files() -> list[tuple[str, bytes]]:
    root = resources.files("fazai.knowledge") / "recipes"
    return sorted((f.name, f.read_bytes()) for f in root.iterdir() if f.name.endswith(".toml"))


def starter_hash() -> str:
    """A hash of the whole starter set; changes when any recipe file changes."""
    h = hashlib.sha256()
    for name, data in _files():
        h.update(name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()[:16]


def load_starter() -> list[KBItem]:
    """Parse every starter file into verified :class:`KBItem`s (ids are stable: ``starter.<id>``)."""
    items: list[KBItem] = []
    seen: set[str] = set()
    for name, data in _files():
        doc = tomllib.loads(data.decode())
        default_distros = doc.get("distros", [])
        for r in doc.get("recipe", []):
            rid = "starter." + r["id"]
            if rid in seen:
                raise ValueError(f"{name}: duplicate starter recipe id {r['id']!r}")
            seen.add(rid)
            items.append(
                KBItem(
                    id=rid,
                    title=r["title"],
                    tags=[*r.get("tags", []), "starter"],
                    os=r.get("os", doc.get("os", "linux")),
                    distros=r.get("distros", default_distros),
                    service=r.get("service"),
                    snippet=r["snippet"].strip(),
                    notes=r.get("notes", "").strip(),
                    answer=r.get("answer"),
                    status="verified",
                    source="operator",
                    created=_EPOCH,
                    updated=_EPOCH,
                )
            )
    return items


def text_key(model_id: str, text: str) -> str:
    """Cache key of one embedded text under one model."""
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()[:20]


def load_vector_cache() -> dict[str, np.ndarray]:
    """Precomputed starter vectors shipped with the package (key → vector); {} when absent.

    They make the first start instant on a small machine (embedding 75 recipes costs seconds); a
    recipe whose text changed simply misses the cache and is embedded at import.
    """
    f = resources.files("fazai.knowledge") / "recipes" / VECTORS_FILE
    if not f.is_file():
        return {}
    with np.load(io.BytesIO(f.read_bytes())) as z:
        return dict(zip((str(k) for k in z["keys"]), z["vectors"], strict=True))


def write_vector_cache(embedder: object, dest: Path | None = None) -> Path:
    """Embed every starter recipe and write the cache file (run after editing recipes)."""
    from fazai.knowledge.recipe_index import topic_text  # RecipeIndex compares these

    model_id = embedder.model_id  # type: ignore[attr-defined]
    recipes = load_starter()
    texts = [r.embed_text() for r in recipes]
    texts += [topic_text(e) for r in recipes if r.answer is not None for e in r.answer.examples]
    vecs = embedder.embed(texts)  # type: ignore[attr-defined]
    dest = dest or Path(__file__).with_name("recipes") / VECTORS_FILE
    np.savez_compressed(
        dest, keys=np.array([text_key(model_id, t) for t in texts]), vectors=np.asarray(vecs, np.float32)
    )
    return dest


if __name__ == "__main__":  # python -m fazai.knowledge.starter ASSETS_DIR: refresh recipes/vectors.npz
    import sys

    from fazai.knowledge.embeddings import MiniLMEmbedder

    emb = MiniLMEmbedder.from_assets(Path(sys.argv[1]), blas_threads=1)
    print(write_vector_cache(emb))
