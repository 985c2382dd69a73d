"""The initial population (generation 0): heuristic and random schedules, and the user's schedules
(``init_schedules``: files, frontier folders, search run folders, Hub repo ids).

``initial_population="structured"`` (ecad-hub's default), in this order: the all-compute
schedule; the user's schedules; FORA-style "recompute everything every N steps"; "recompute
attention every N steps" (the rest always); evenly spaced single-component caching (one component
type recomputed every N steps, the rest always); then random schedules. Heuristics fill at most
half of the population; random schedules are drawn with densities spread over [0.1, 0.95] (half
bit-wise, half as whole (step, component) rows), so the first front already spans the cost axis.

``initial_population="random"`` (the paper's): the user's schedules, then uniform random bits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import EcadError, SearchError
from ..schedule import CacheSchedule
from .genome import Genome


# --------------------------------------------------------------------------------------------
# heuristic and random schedules
# --------------------------------------------------------------------------------------------

def _periodic(steps: int, period: int) -> np.ndarray:
    return (np.arange(steps) % period) == 0


def heuristic_schedules(genome: Genome) -> list[tuple[str, np.ndarray]]:
    """Named hand-designed schedules, interleaved by aggressiveness (cheapest family members later).

    * ``fora-N``: recompute every sub-module every N steps, reuse in between (FORA).
    * ``attn-every-N``: attention components (``attn*``) every N steps, everything else always.
    * ``<component>-every-N``: one component type every N steps, everything else always.
    """
    S = genome.steps
    periods = [p for p in range(2, max(2, S // 2) + 1)] or [2]
    families: list[list[tuple[str, np.ndarray]]] = []

    def build(select) -> np.ndarray:
        x = genome.all_compute()
        for (gi, view), g in zip(enumerate(genome.views(x)), genome.architecture.groups):
            for ci, comp in enumerate(g.components):
                rows = select(gi, ci, comp)
                if rows is not None:
                    view[:, :, ci] = rows[:, None]
        return genome.canonical(x)

    families.append([(f"fora-{p}", build(lambda gi, ci, c, p=p: _periodic(S, p))) for p in periods])
    comps = genome.components()
    attn = {(gi, ci) for gi, ci, c in comps if c.startswith("attn")}
    if attn and len(attn) < len(comps):
        families.append([(f"attn-every-{p}", build(lambda gi, ci, c, p=p: _periodic(S, p) if (gi, ci) in attn else None))
                         for p in periods])
    names = sorted({c for _, _, c in comps}, key=[c for _, _, c in comps].index)
    for name in names:
        families.append([(f"{name}-every-{p}", build(lambda gi, ci, c, p=p, name=name: _periodic(S, p) if c == name else None))
                         for p in periods])
    out, seen = [], set()
    for i in range(max(len(f) for f in families)):
        for fam in families:
            if i < len(fam):
                name, x = fam[i]
                k = genome.key(x)
                if k not in seen and genome.reused_bits(x) > 0:
                    seen.add(k)
                    out.append((name, x))
    return out


def random_schedules(genome: Genome, n: int, rng: np.random.Generator, *, spread: bool = True) -> np.ndarray:
    """``n`` random canonical vectors. ``spread``: densities spread over [0.1, 0.95], half of them
    drawn per bit and half per (step, component) row; else uniform random bits (p = 0.5)."""
    if n <= 0:
        return np.zeros((0, genome.n_var), dtype=bool)
    if not spread:
        return genome.canonical(rng.random((n, genome.n_var)) < 0.5)
    densities = np.linspace(0.1, 0.95, n)
    rng.shuffle(densities)
    X = np.zeros((n, genome.n_var), dtype=bool)
    for i, d in enumerate(densities):
        if i % 2 == 0:
            X[i] = rng.random(genome.n_var) < d
        else:
            x = X[i]
            for view in genome.views(x):
                S, B, C = view.shape
                rows = rng.random((S, 1, C)) < d
                view[:] = np.broadcast_to(rows, (S, B, C))
    return genome.canonical(X)


def initial_population(genome: Genome, size: int, rng: np.random.Generator, *, mode: str = "structured",
                       user: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, list[str]]:
    """The generation-0 candidates (unique canonical vectors) and a label for each.

    ``mode="structured"``: all-compute, ``user`` schedules, heuristics (at most half of the
    population), random schedules of spread densities. ``mode="random"``: ``user`` schedules,
    then uniform random bits (the paper's initialisation).
    """
    rows: list[np.ndarray] = []
    labels: list[str] = []
    seen: set[bytes] = set()

    def add(x, label) -> bool:
        x = genome.canonical(x)
        k = genome.key(x)
        if k in seen or len(rows) >= size:
            return False
        seen.add(k)
        rows.append(x)
        labels.append(label)
        return True

    if mode == "structured":
        add(genome.all_compute(), "all-compute")
    for i, x in enumerate(user):
        add(x, f"user-{i}")
    if mode == "structured":
        budget = max(0, size // 2 - len(rows))
        for name, x in heuristic_schedules(genome)[:budget]:
            add(x, name)
    spread = mode == "structured"
    tries = 0
    while len(rows) < size and tries < 20:
        for x in random_schedules(genome, size - len(rows), rng, spread=spread):
            if genome.reused_bits(x) > 0:
                add(x, "random")
        tries += 1
    return np.array(rows, dtype=bool).reshape(-1, genome.n_var), labels


# --------------------------------------------------------------------------------------------
# the user's schedules
# --------------------------------------------------------------------------------------------

def _adapt_steps(schedule: CacheSchedule, steps: int) -> CacheSchedule:
    """Map a schedule written for another step count onto ``steps`` (nearest proportional step)."""
    if schedule.num_inference_steps == steps:
        return schedule
    old = schedule.num_inference_steps
    idx = np.minimum((np.arange(steps) * old) // steps, old - 1)
    masks = {g: m[idx] for g, m in schedule.masks.items()}
    return CacheSchedule(schedule.name, steps, schedule.architecture, masks)


def load_init_schedules(refs: list[str], log: Callable[[str], None]) -> list[CacheSchedule]:
    """Schedules from files, folders (schedule files, frontier folders, search runs) and Hub repo ids."""
    from ..frontier import Frontier
    from ..legacy import load_any_schedule
    from ..schedule import iter_schedule_files

    out: list[CacheSchedule] = []
    for ref in refs:
        path = Path(ref)
        if path.is_file():
            out.append(load_any_schedule(path))
            continue
        schedules = None
        try:
            schedules = list(Frontier.load(ref).schedules)
        except EcadError:
            if not path.is_dir():
                raise
        if schedules is None and path.is_dir():
            folder = path / "front" if (path / "search.json").is_file() and (path / "front").is_dir() else path
            schedules = []
            for f in iter_schedule_files([folder]):
                try:
                    schedules.append(CacheSchedule.load(f))
                except EcadError:
                    continue
        if schedules is None:
            raise SearchError(f"--init {ref}: not a schedule file or folder, and it cannot be loaded as a frontier")
        log(f"init: {len(schedules)} schedule(s) from {ref}")
        out.extend(schedules)
    return out


def user_vectors(genome: Genome, refs: list[str], log: Callable[[str], None]) -> list[np.ndarray]:
    """The ``init_schedules`` as genome vectors: schedules for another architecture are skipped
    (logged), the others mapped onto the genome's step count."""
    out = []
    for s in load_init_schedules(refs, log):
        diffs = genome.architecture.differences(s.architecture)
        if diffs:
            log(f"init: skipping {s.name} ({'; '.join(diffs)})")
            continue
        out.append(genome.vector(_adapt_steps(s, genome.steps)))
    return out
