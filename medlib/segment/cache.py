"""Image-embedding cache: encode each image once, decode many prompts against it.

Inside GRPO the same image is segmented G times (one box per rollout), and MedVol-R1's R_c
propagates G box sets through the same volume. The image encoder dominates the cost (the
prompt encoder and mask decoder are cheap), so segmenters keep an LRU of embeddings keyed by
the *content* of the image: blake2b over its bytes, shape and dtype. Bounded by entry count
and by bytes; ``max_entries=0`` disables it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np


def image_key(image: np.ndarray, tag: str = "") -> str:
    """Content hash of an array: blake2b (128-bit) of ``tag``, dtype, shape and bytes."""
    a = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{tag}|{a.dtype.str}|{a.shape}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def nbytes_of(value: Any) -> int:
    """Bytes held by tensors / arrays inside nested dicts, lists and tuples."""
    if hasattr(value, "element_size") and hasattr(value, "nelement"):
        return int(value.element_size() * value.nelement())
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(nbytes_of(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(nbytes_of(v) for v in value)
    return 0


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0

    @property
    def hit_rate(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 0.0


class EmbeddingCache:
    """Size-bounded LRU of image embeddings (any value; its size measured by :func:`nbytes_of`)."""

    def __init__(self, max_entries: int = 32, max_bytes: int = 512 * 2**20):
        if max_entries < 0 or max_bytes < 0:
            raise ValueError(f"cache bounds must be >= 0, got max_entries={max_entries}, max_bytes={max_bytes}")
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: str):
        """The cached value (marked most recently used) or None; counts a hit or a miss."""
        item = self._data.get(key)
        if item is None:
            self.stats.misses += 1
            return None
        self._data.move_to_end(key)
        self.stats.hits += 1
        return item[0]

    def put(self, key: str, value: Any) -> None:
        """Store ``value``; evict least recently used entries beyond the bounds. A value larger
        than ``max_bytes`` on its own is not stored."""
        if not self.enabled:
            return
        size = nbytes_of(value)
        if size > self.max_bytes:
            return
        if key in self._data:
            self._bytes -= self._data.pop(key)[1]
        self._data[key] = (value, size)
        self._bytes += size
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, s) = self._data.popitem(last=False)
            self._bytes -= s
            self.stats.evictions += 1

    def get_or_compute(self, key: str, compute):
        """Cached value for ``key``, computing and storing it with ``compute()`` on a miss."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def clear(self) -> None:
        self._data.clear()
        self._bytes = 0
