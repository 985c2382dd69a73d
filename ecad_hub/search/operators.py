"""The pymoo side of the search: the problem, the operators, and the NSGA-II assembled from them.

* :class:`MaskProblem`: two objectives (cost ratio, -quality) and one constraint (>= 1 reuse)
  over the mask bits; values are never computed by pymoo (the runner evaluates and tells).
* :class:`CanonicalRepair`: step-0 and absent bits back to 1 (:meth:`Genome.canonical`).
* :class:`ExactDuplicateElimination`: exact (canonical key) duplicates within the offspring and
  against the population, and, given an ``archive``, against every schedule evaluated before.
* :class:`StructuredMutation` (ecad-hub): pymoo's ``BitflipMutation``, then with probability
  ``move_prob`` per offspring one :func:`structured_move`, which sets a whole region of the mask to
  compute or reuse: one step, one component at one step, a rectangle of (steps x blocks) of one
  component, or a periodic every-N pattern of one component over a range of steps. Caching
  decisions are strongly correlated along these axes, which random single-bit flips explore slowly.
* :func:`make_algorithm`: ``NSGA2`` with ``PointCrossover`` and the operators above, as
  :class:`~ecad_hub.search.config.OperatorSettings` say; :func:`tell` hands it evaluated objectives.

The random draws (their order included) are part of a seed's results: run directories resume
byte for byte and the benchmarks are reproducible only while they stay as they are.
"""

from __future__ import annotations

from typing import Callable, Collection

import numpy as np
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.operators.mutation.bitflip import BitflipMutation
from pymoo.util import default_random_state

from .config import OperatorSettings
from .genome import Genome


class MaskProblem(Problem):
    """Two objectives (cost ratio, -quality) and one constraint (>= 1 reuse) over the mask bits."""

    def __init__(self, genome: Genome):
        super().__init__(n_var=genome.n_var, n_obj=2, n_ieq_constr=1, xl=0, xu=1, vtype=bool)
        self.genome = genome


class CanonicalRepair(Repair):
    """Set step-0 and absent bits to 1 (they cannot change what is computed)."""

    def __init__(self, genome: Genome):
        super().__init__()
        self.genome = genome

    def _do(self, problem, X, **kwargs):
        return self.genome.canonical(np.asarray(X).astype(bool))


class ExactDuplicateElimination(DuplicateElimination):
    """Exact duplicate elimination on canonical keys (:meth:`Genome.key`).

    An offspring is a duplicate when it equals an earlier offspring of the same batch, or a member
    of the population pymoo compares it with; with ``archive`` (a collection of keys the caller
    keeps filling, e.g. a set, or a callable returning one) also when it equals any schedule in it.
    The archive is consulted only when offspring are compared with a population (mating), never
    when a population is deduplicated on its own (pymoo's initialization: the runner rebuilds each
    generation's population, all of it evaluated before, that way).
    """

    def __init__(self, genome: Genome, archive: Collection[bytes] | Callable[[], Collection[bytes]] | None = None):
        super().__init__()
        self.genome = genome
        self.archive = archive

    def _archive(self) -> Collection[bytes]:
        if self.archive is None:
            return ()
        return self.archive() if callable(self.archive) else self.archive

    def _keys(self, pop) -> list[bytes]:
        return [self.genome.key(self.genome.canonical(x)) for x in pop.get("X")]

    def _do(self, pop, other, is_duplicate):
        keys = self._keys(pop)
        if other is None:
            seen: set[bytes] = set()
            for i, k in enumerate(keys):
                if k in seen:
                    is_duplicate[i] = True
                seen.add(k)
        else:
            others = set(self._keys(other))
            archive = self._archive()
            for i, k in enumerate(keys):
                if k in others or k in archive:
                    is_duplicate[i] = True
        return is_duplicate


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


class StructuredMutation(BitflipMutation):
    """``BitflipMutation(prob, prob_var)`` (pymoo's, unchanged: its ``_do`` flips bits of the
    offspring ``prob`` selects), then with probability ``move_prob`` per offspring one
    :func:`structured_move` (:meth:`moves`).

    ``do`` is extended rather than ``_do`` replaced: pymoo's ``Mutation.do`` draws which offspring
    mutate *after* ``_do``, and the structured moves are drawn after that draw, on the bit-flipped
    offspring. That order is what every seed's results (and the benchmarks) were made with.
    """

    def __init__(self, genome: Genome, *, move_prob: float, prob: float = 1.0, prob_var: float | None = None):
        super().__init__(prob=prob, prob_var=prob_var)
        self.genome = genome
        self.move_prob = float(move_prob)

    @default_random_state
    def do(self, problem, pop, inplace=True, *args, random_state=None, **kwargs):
        pop = super().do(problem, pop, inplace, *args, random_state=random_state, **kwargs)
        pop.set("X", self.moves(pop.get("X"), random_state))
        return pop

    def moves(self, X: np.ndarray, random_state: np.random.Generator) -> np.ndarray:
        """``X`` with one structured move on each row drawn with probability ``move_prob``
        (moved rows come back canonical, the others unchanged)."""
        X = np.array(X, dtype=bool)
        hit = random_state.random(len(X)) < self.move_prob
        for i in np.flatnonzero(hit):
            X[i] = structured_move(self.genome, X[i], random_state)
        return X


def make_mutation(genome: Genome, ops: OperatorSettings) -> BitflipMutation:
    """pymoo's ``BitflipMutation`` (the paper's), or :class:`StructuredMutation` when
    ``ops.structured_mutation`` is non-zero."""
    if not ops.structured_mutation:
        return BitflipMutation(prob=ops.mutation_prob, prob_var=ops.mutation_prob_var)
    return StructuredMutation(genome, move_prob=ops.structured_mutation, prob=ops.mutation_prob,
                              prob_var=ops.mutation_prob_var)


def make_duplicate_elimination(genome: Genome, ops: OperatorSettings, archive: Collection[bytes] | None):
    """``False`` (pymoo: none), :class:`ExactDuplicateElimination` against the population, or
    (``"archive"``) also against ``archive``."""
    if not ops.eliminate_duplicates:
        return False
    return ExactDuplicateElimination(genome, archive=archive if ops.eliminate_duplicates == "archive" else None)


def make_algorithm(problem: MaskProblem, ops: OperatorSettings, population: int, sampling: np.ndarray, *,
                   seed: int, archive: Collection[bytes] | None = None):
    """A set-up ``NSGA2`` (ask/tell) whose first ``ask()`` returns ``sampling`` (repaired, deduplicated)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.crossover.pntx import PointCrossover

    genome = problem.genome
    algo = NSGA2(
        pop_size=population,
        sampling=np.asarray(sampling, dtype=bool),
        crossover=PointCrossover(n_points=ops.crossover_points, prob=ops.crossover_prob),
        mutation=make_mutation(genome, ops),
        repair=CanonicalRepair(genome),
        eliminate_duplicates=make_duplicate_elimination(genome, ops, archive),
    )
    algo.setup(problem, termination=("n_gen", 10 ** 9), seed=seed, verbose=False)
    return algo


def tell(algo, problem: MaskProblem, pop, F: np.ndarray, G: np.ndarray) -> None:
    """Give ``algo`` the objectives ``F`` and constraints ``G`` of the individuals ``pop``."""
    from pymoo.core.evaluator import Evaluator
    from pymoo.problems.static import StaticProblem

    Evaluator().eval(StaticProblem(problem, F=F, G=G), pop)
    algo.tell(infills=pop)
