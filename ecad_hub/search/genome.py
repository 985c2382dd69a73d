"""The genome of a schedule: :class:`Genome`, flat bool vectors <-> :class:`~ecad_hub.CacheSchedule`.

The genome is the whole mask, ``CacheSchedule.to_vector()``: one pymoo binary variable per
(group, step, block, component). Bits that cannot matter are *fixed* to 1 (recompute) so that two
genomes never describe the same computation: step 0 (nothing is cached before it, so it always
computes) and sub-modules the architecture declares absent. :meth:`Genome.canonical` sets them;
the search's repair operator (:class:`~ecad_hub.search.operators.CanonicalRepair`) applies it to
every offspring.
"""

from __future__ import annotations

import numpy as np

from ..schedule import Architecture, CacheSchedule


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
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[: self.n_var]
        if bits.size != self.n_var:
            raise ValueError(f"genome has {bits.size} bits, expected {self.n_var}")
        return bits.astype(bool)

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
