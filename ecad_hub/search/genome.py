"""The genome of a schedule: :class:`Genome`, flat bool vectors <-> :class:`~ecad_hub.CacheSchedule`.

The genome is the whole mask, ``CacheSchedule.to_vector()``: one pymoo binary variable per
(group, step, block, component). Bits that cannot matter are *fixed* to 1 (recompute) so that two
genomes never describe the same computation: step 0 (nothing is cached before it, so it always
computes) and sub-modules the architecture declares absent. :meth:`Genome.canonical` sets them;
the search's repair operator (:class:`~ecad_hub.search.operators.CanonicalRepair`) applies it to
every offspring.
"""

from __future__ import annotations

import re

import numpy as np

from ..schedule import Architecture, CacheSchedule


_HEX = re.compile(r"[0-9a-f]*")


def to_hex(x: np.ndarray) -> str:
    """A vector as the hex string of its packed bits (how genomes are stored and sent to workers)."""
    return np.packbits(np.asarray(x, dtype=bool)).tobytes().hex()


class Genome:
    """Flat bool vectors <-> schedules for one architecture and step count."""

    def __init__(self, architecture: Architecture, num_inference_steps: int):
        self.architecture = architecture
        self.steps = int(num_inference_steps)
        self.groups = []  # (name, offset, shape)
        offset = 0
        fixed = []
        for g in architecture.groups:
            shape = (self.steps, g.num_blocks, len(g.components))
            n = int(np.prod(shape))
            f = np.zeros(shape, dtype=bool)
            f[0] = True
            f[:, ~g.present()] = True
            fixed.append(f.ravel())
            self.groups.append((g.name, offset, shape))
            offset += n
        self.n_var = offset
        self.fixed = np.concatenate(fixed)
        self.free = np.flatnonzero(~self.fixed)

    # --- conversions ------------------------------------------------------------------------
    def canonical(self, X: np.ndarray) -> np.ndarray:
        """``X`` (one vector or rows of vectors) with the fixed bits set to 1."""
        X = np.array(X, dtype=bool, copy=True)
        X[..., self.fixed] = True
        return X

    def views(self, x: np.ndarray) -> list[np.ndarray]:
        """Per group, a ``[steps, blocks, components]`` view into the vector ``x``."""
        return [x[off: off + int(np.prod(shape))].reshape(shape) for _, off, shape in self.groups]

    def schedule(self, x: np.ndarray, name: str = "candidate", **kwargs) -> CacheSchedule:
        return CacheSchedule.from_vector(self.architecture, self.steps, self.canonical(x), name=name, **kwargs)

    def vector(self, schedule: CacheSchedule) -> np.ndarray:
        return self.canonical(schedule.to_vector())

    def all_compute(self) -> np.ndarray:
        return np.ones(self.n_var, dtype=bool)

    def to_hex(self, x: np.ndarray) -> str:
        return to_hex(x)

    def from_hex(self, text: str) -> np.ndarray:
        """The vector :meth:`to_hex` wrote; anything else (not a string, not lower-case hex, too
        short or too long, padding bits set) is a ``ValueError`` with a one-line message."""
        if not isinstance(text, str):
            raise ValueError(f"genome is a {type(text).__name__}, expected a hex string")
        want = 2 * ((self.n_var + 7) // 8)
        if len(text) != want:
            raise ValueError(f"genome has {len(text)} hex digits, expected {want} ({self.n_var} bits)")
        if not _HEX.fullmatch(text):
            raise ValueError("genome is not lower-case hex")
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))
        if bits[self.n_var:].any():
            raise ValueError("genome has padding bits set beyond its length")
        return bits[: self.n_var].astype(bool)

    def hash_of(self, x: np.ndarray) -> str:
        """``self.schedule(x).content_hash``, remembered per vector (a resume checks every recorded
        genome against its hash, and the same genomes recur in many records)."""
        k = self.key(self.canonical(x))
        memo = self.__dict__.setdefault("_hash_memo", {})
        h = memo.get(k)
        if h is None:
            h = memo[k] = self.schedule(x).content_hash
        return h

    def is_canonical(self, x: np.ndarray) -> bool:
        """Whether the fixed bits of ``x`` are set (every genome the search records is)."""
        return bool(np.asarray(x, dtype=bool)[self.fixed].all())

    def key(self, x: np.ndarray) -> bytes:
        """A cheap exact key of a (canonical) vector, for duplicate checks."""
        return np.packbits(np.asarray(x, dtype=bool)).tobytes()

    def reused_bits(self, x: np.ndarray) -> int:
        """Number of effective reuse decisions (the constraint needs >= 1)."""
        return int((~np.asarray(x, dtype=bool)[self.free]).sum())

    def components(self) -> list[tuple[int, int, str]]:
        """(group index, component index, component name) for every component of every group."""
        out = []
        for gi, g in enumerate(self.architecture.groups):
            for ci, c in enumerate(g.components):
                out.append((gi, ci, c))
        return out
