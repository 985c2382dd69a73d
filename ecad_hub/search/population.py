"""The genome, the initial population and the search operators.

The genome of a schedule is its whole mask, ``CacheSchedule.to_vector()``: one pymoo binary
variable per (group, step, block, component). Bits that cannot matter are *repaired* to 1
(recompute) so that two genomes never describe the same computation: step 0 (nothing is cached
before it, so it always computes) and sub-modules the architecture declares absent.

Initial population (``initial_population="structured"``, ecad-hub's default), in this order:
the all-compute schedule; the user's schedules (files, frontier folders, Hub repos); FORA-style
"recompute everything every N steps"; "recompute attention every N steps" (the rest always);
evenly spaced single-component caching (one component type recomputed every N steps, the rest
always); then random schedules. Heuristics fill at most half of the population; random
schedules are drawn with densities spread over [0.1, 0.95] (half bit-wise, half as whole
(step, component) rows), so the first front already spans the cost axis.

Operators: pymoo's ``PointCrossover`` and ``BitflipMutation`` (the paper's), plus
:class:`StructuredMutation` (ecad-hub): with probability ``p`` an offspring also gets one
structured move that sets a whole region of the mask to compute or reuse: one step, one
component at one step, a rectangle of (steps x blocks) of one component, or a periodic
every-N pattern of one component over a range of steps. Caching decisions are strongly
correlated along these axes, which random single-bit flips explore slowly.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..schedule import Architecture, CacheSchedule


# --------------------------------------------------------------------------------------------
# genome
# --------------------------------------------------------------------------------------------

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
        return np.packbits(np.asarray(x, dtype=bool)).tobytes().hex()

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


# --------------------------------------------------------------------------------------------
# initial population
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
# pymoo operators
# --------------------------------------------------------------------------------------------

def make_problem(genome: Genome):
    from pymoo.core.problem import Problem

    class MaskProblem(Problem):
        """Two objectives (cost ratio, -quality) and one constraint (>= 1 reuse) over the mask bits."""

        def __init__(self):
            super().__init__(n_var=genome.n_var, n_obj=2, n_ieq_constr=1, xl=0, xu=1, vtype=bool)

    return MaskProblem()


def make_repair(genome: Genome):
    from pymoo.core.repair import Repair

    class CanonicalRepair(Repair):
        """Set step-0 and absent bits to 1 (they cannot change what is computed)."""

        def _do(self, problem, X, **kwargs):
            return genome.canonical(np.asarray(X).astype(bool))

    return CanonicalRepair()


def make_duplicate_elimination(genome: Genome):
    """Exact duplicate elimination: within the offspring and against the population, and also
    against every schedule evaluated before when its ``archive`` attribute is set to a set of
    :meth:`Genome.key` (the runner sets it for mating only, not for rebuilding a population)."""
    from pymoo.core.duplicate import DuplicateElimination

    class KeyDuplicateElimination(DuplicateElimination):
        archive: set[bytes] | None = None

        def _do(self, pop, other, is_duplicate):
            keys = [genome.key(genome.canonical(x)) for x in pop.get("X")]
            if other is None:
                seen: set[bytes] = set()
                for i, k in enumerate(keys):
                    if k in seen or (self.archive is not None and k in self.archive):
                        is_duplicate[i] = True
                    seen.add(k)
            else:
                others = {genome.key(genome.canonical(x)) for x in other.get("X")}
                for i, k in enumerate(keys):
                    if k in others:
                        is_duplicate[i] = True
            return is_duplicate

    return KeyDuplicateElimination()


def structured_move(genome: Genome, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One structured move on a copy of ``x``: a region of the mask set to compute (1) or reuse (0)."""
    x = np.array(x, dtype=bool, copy=True)
    views = genome.views(x)
    sizes = np.array([v.size for v in views], dtype=float)
    view = views[int(rng.choice(len(views), p=sizes / sizes.sum()))]
    S, B, C = view.shape
    if S < 2:
        return genome.canonical(x)
    value = bool(rng.random() < 0.5)
    kind = int(rng.integers(4))
    c = int(rng.integers(C))
    if kind == 0:  # one whole step
        s = int(rng.integers(1, S))
        view[s] = value
    elif kind == 1:  # one component at one step, all blocks
        s = int(rng.integers(1, S))
        view[s, :, c] = value
    elif kind == 2:  # a rectangle of steps x blocks of one component
        s0 = int(rng.integers(1, S))
        s1 = int(rng.integers(s0 + 1, S + 1))
        b0 = int(rng.integers(B))
        b1 = int(rng.integers(b0 + 1, B + 1))
        view[s0:s1, b0:b1, c] = value
    else:  # periodic: component c computed every N steps over a range of steps, all blocks
        period = int(rng.integers(2, max(3, min(6, S))))
        s0 = int(rng.integers(1, S))
        s1 = int(rng.integers(s0 + 1, S + 1))
        steps = np.arange(s0, s1)
        view[s0:s1, :, c] = ((steps - s0) % period == 0)[:, None]
    return genome.canonical(x)


def make_mutation(genome: Genome, *, prob: float, prob_var: float | None, structured: float):
    """pymoo's ``BitflipMutation(prob, prob_var)``, followed (with probability ``structured`` per
    offspring) by one :func:`structured_move`."""
    from pymoo.operators.mutation.bitflip import BitflipMutation

    bitflip = BitflipMutation(prob=prob, prob_var=prob_var)
    if not structured:
        return bitflip

    class StructuredMutation(BitflipMutation):
        def do(self, problem, pop, inplace=True, *args, random_state=None, **kwargs):
            rs = random_state if random_state is not None else np.random.default_rng()
            pop = bitflip.do(problem, pop, inplace=inplace, random_state=rs)
            X = np.array(pop.get("X"), dtype=bool)
            hit = rs.random(len(X)) < structured
            for i in np.flatnonzero(hit):
                X[i] = structured_move(genome, X[i], rs)
            pop.set("X", X)
            return pop

    return StructuredMutation(prob=prob, prob_var=prob_var)


# --------------------------------------------------------------------------------------------
# Pareto utilities
# --------------------------------------------------------------------------------------------

def nondominated(cost: Sequence[float], quality: Sequence[float]) -> np.ndarray:
    """Bool mask of the points no other point dominates (lower cost, higher quality); exact ties
    are kept once (the first)."""
    c = np.asarray(cost, dtype=float)
    q = np.asarray(quality, dtype=float)
    n = len(c)
    keep = np.zeros(n, dtype=bool)
    order = np.lexsort((-q, c))  # by cost, then best quality first
    best_q = -np.inf
    for i in order:
        if q[i] > best_q:
            keep[i] = True
            best_q = q[i]
    return keep


def hypervolume(cost: Iterable[float], quality: Iterable[float], ref_cost: float = 1.0,
                ref_quality: float = 0.0) -> float:
    """2-D hypervolume dominated by the points (minimise cost, maximise quality) and bounded by
    the reference point ``(ref_cost, ref_quality)``; points beyond it contribute nothing."""
    pts = [(float(c), float(q)) for c, q in zip(cost, quality) if c < ref_cost and q > ref_quality]
    if not pts:
        return 0.0
    pts.sort()
    hv = 0.0
    best = ref_quality
    for i, (c, q) in enumerate(pts):
        best = max(best, q)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref_cost
        hv += (nxt - c) * (best - ref_quality)
    return hv


# --------------------------------------------------------------------------------------------
# surrogate screening
# --------------------------------------------------------------------------------------------

class RidgeSurrogate:
    """Linear model of quality over the free mask bits (ridge regression, closed form).

    Fit on every schedule evaluated so far; used to rank surplus offspring before any of them
    is evaluated. Cheap (a ``bits x bits`` solve) and deterministic.
    """

    def __init__(self, genome: Genome, alpha: float = 1.0):
        self.genome = genome
        self.alpha = float(alpha)
        self.coef = None
        self.intercept = 0.0

    def _features(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=bool).reshape(-1, self.genome.n_var)
        return (~X[:, self.genome.free]).astype(np.float64)  # 1 = reused

    def fit(self, X: np.ndarray, y: Sequence[float]) -> "RidgeSurrogate":
        A = self._features(X)
        y = np.asarray(y, dtype=np.float64)
        mean = A.mean(axis=0)
        self.intercept = float(y.mean())
        A = A - mean
        n_feat = A.shape[1]
        self.coef = np.linalg.solve(A.T @ A + self.alpha * np.eye(n_feat), A.T @ (y - self.intercept))
        self._mean = mean
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        A = self._features(X) - self._mean
        return self.intercept + A @ self.coef


def _staircase(front: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of f(x) = best quality among front points with cost <= x: (costs, running max)."""
    if not front:
        return np.zeros(0), np.zeros(0)
    arr = np.array(sorted(front), dtype=float)
    return arr[:, 0], np.maximum.accumulate(arr[:, 1])


def _hv_gain(stairs: tuple[np.ndarray, np.ndarray], point: tuple[float, float], ref_cost: float, ref_q: float) -> float:
    """Hypervolume that ``point`` adds to a front given as its staircase (2-D, exact)."""
    c, q = point
    if c >= ref_cost or q <= ref_q:
        return 0.0
    xs, fs = stairs
    # breakpoints in [c, ref_cost): the front's height just before c, then at each later cost
    i = int(np.searchsorted(xs, c, side="right"))
    height = fs[i - 1] if i > 0 else -np.inf
    edges = np.concatenate([[c], xs[i:][xs[i:] < ref_cost], [ref_cost]])
    heights = np.concatenate([[height], fs[i:][xs[i:] < ref_cost]])
    floor = np.maximum(heights, ref_q)
    return float(np.sum(np.diff(edges) * np.maximum(0.0, q - floor)))


def screen(cost: np.ndarray, predicted: np.ndarray, front: list[tuple[float, float]], n: int,
           rng: np.random.Generator, *, ref_quality: float, explore: float = 0.25) -> list[int]:
    """Pick ``n`` of the candidates: ``explore`` of them at random, the rest greedily by the
    hypervolume their predicted point adds to the front (predicted points join the front as
    they are picked, so the picks spread along it). Returns indices, in pick order."""
    m = len(cost)
    if m <= n:
        return list(range(m))
    n_random = int(round(explore * n))
    chosen: list[int] = []
    remaining = list(range(m))
    work = list(front)
    ref_q = min([ref_quality] + [float(q) for q in predicted])
    for _ in range(n - n_random):
        stairs = _staircase(work)
        gains = np.array([_hv_gain(stairs, (float(cost[i]), float(predicted[i])), 1.0, ref_q) for i in remaining])
        if gains.max() <= 0:
            # nothing is predicted to improve the front: closest to it (smallest predicted shortfall)
            def shortfall(i):
                better = [q for c, q in work if c <= cost[i]]
                return (max(better) if better else ref_q) - predicted[i]

            j = int(np.argmin([shortfall(i) for i in remaining]))
        else:
            j = int(np.argmax(gains))
        i = remaining.pop(j)
        chosen.append(i)
        work.append((float(cost[i]), float(predicted[i])))
    if n_random:
        picks = rng.choice(len(remaining), size=min(n_random, len(remaining)), replace=False)
        chosen += [remaining[j] for j in sorted(picks)]
    return chosen
