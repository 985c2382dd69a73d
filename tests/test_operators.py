"""The search's pymoo operators (``ecad_hub.search.operators``) on a small hand-made architecture:
the structured mutation, the duplicate elimination with and without the archive, the repair, and
how the NSGA-II is assembled from the operator settings. No model, no evaluation."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

pytest.importorskip("pymoo")

from pymoo.core.duplicate import DefaultDuplicateElimination, DuplicateElimination, NoDuplicateElimination  # noqa: E402
from pymoo.core.mutation import Mutation  # noqa: E402
from pymoo.core.population import Population  # noqa: E402
from pymoo.core.problem import Problem  # noqa: E402
from pymoo.core.repair import Repair  # noqa: E402
from pymoo.operators.mutation.bitflip import BitflipMutation  # noqa: E402

from ecad_hub.schedule import Architecture, BlockGroup  # noqa: E402
from ecad_hub.search import SearchConfig  # noqa: E402
from ecad_hub.search.genome import Genome  # noqa: E402
from ecad_hub.search.operators import (  # noqa: E402
    CanonicalRepair, ExactDuplicateElimination, MaskProblem, StructuredMutation, make_algorithm, structured_move,
)

STEPS = 6
#: Two block groups; the last block of the first has no ``ff`` (its bits are fixed, like step 0's).
ARCH = Architecture("TestTransformer", (
    BlockGroup("blocks", 3, ("attn1", "attn2", "ff"), frozenset({("ff", 2)})),
    BlockGroup("single", 2, ("attn", "ff")),
))


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome(ARCH, STEPS)


def _population(genome: Genome, n: int, seed: int = 3, density: float = 0.6) -> np.ndarray:
    return genome.canonical(np.random.default_rng(seed).random((n, genome.n_var)) < density)


def _mutate(mutation, genome: Genome, X: np.ndarray, seed: int = 7) -> np.ndarray:
    pop = mutation.do(MaskProblem(genome), Population.new(X=X), random_state=np.random.default_rng(seed))
    return np.asarray(pop.get("X"), dtype=bool)


def test_operators_are_pymoo_operators(genome):
    assert isinstance(MaskProblem(genome), Problem)
    assert isinstance(CanonicalRepair(genome), Repair)
    assert isinstance(ExactDuplicateElimination(genome), DuplicateElimination)
    mutation = StructuredMutation(genome, move_prob=0.5, prob=0.05)
    assert isinstance(mutation, Mutation) and isinstance(mutation, BitflipMutation)
    problem = MaskProblem(genome)
    assert (problem.n_var, problem.n_obj, problem.n_ieq_constr) == (genome.n_var, 2, 1)


def test_genome_fixes_step_0_and_absent_bits(genome):
    fixed = np.zeros(genome.n_var, dtype=bool)
    fixed[genome.fixed] = True
    blocks, single = genome.views(fixed)
    assert blocks[0].all() and single[0].all()  # step 0 always computes
    assert blocks[1:, 2, 2].all() and not blocks[1:, :2, 2].any()  # ff of block 2 is absent
    assert not single[1:].any()


# --------------------------------------------------------------------------------------------
# structured mutation
# --------------------------------------------------------------------------------------------

def test_structured_mutation_probability_0_is_the_identity(genome):
    X = _population(genome, 20)
    assert np.array_equal(StructuredMutation(genome, move_prob=0.0).moves(X, np.random.default_rng(0)), X)
    assert np.array_equal(_mutate(StructuredMutation(genome, move_prob=0.0, prob=0.0), genome, X), X)
    # no structured move: the offspring are exactly pymoo's bit-flip mutation's
    flips = _mutate(BitflipMutation(prob=1.0, prob_var=0.2), genome, X)
    assert np.array_equal(_mutate(StructuredMutation(genome, move_prob=0.0, prob=1.0, prob_var=0.2), genome, X), flips)
    assert not np.array_equal(flips, X)


def test_structured_moves_change_regions_and_keep_fixed_bits(genome):
    X = _population(genome, 40)
    out = _mutate(StructuredMutation(genome, move_prob=1.0, prob=0.0), genome, X)
    assert out.shape == X.shape
    assert np.array_equal(out, genome.canonical(out))  # canonical: step-0 and absent bits stay 1
    assert out[:, genome.fixed].all()
    changed = (out != X).any(axis=1)
    assert changed.sum() >= 1
    # every change is in the free bits, and one move stays inside one block group
    assert not (out != X)[:, genome.fixed].any()
    for x, y in zip(X[changed], out[changed]):
        where = np.flatnonzero(x != y)
        assert any(off <= where.min() and where.max() < off + int(np.prod(shape)) for _, off, shape in genome.groups)


def test_structured_move_repairs_bit_flips_of_fixed_bits(genome):
    rng = np.random.default_rng(0)
    x = np.zeros(genome.n_var, dtype=bool)  # nothing fixed set: as a bit flip may leave it
    for _ in range(50):
        y = structured_move(genome, x, rng)
        assert y[genome.fixed].all() and np.array_equal(y, genome.canonical(y))
    assert not x.any()  # the input is not modified


def test_structured_mutation_keeps_the_seeded_draw_order(genome):
    """Bit flips, then pymoo's per-offspring draw, then the structured moves: the order every
    recorded run and benchmark was made with (the digest is of the operator before it became a
    module-level class)."""
    X = _population(genome, 12)
    rs = np.random.default_rng(7)
    mutation = StructuredMutation(genome, move_prob=0.7, prob=0.5, prob_var=0.1)
    pop = mutation.do(MaskProblem(genome), Population.new(X=X), random_state=rs)
    out = np.asarray(pop.get("X"), dtype=bool)
    assert hashlib.sha256(np.packbits(out).tobytes()).hexdigest()[:16] == "67757467891de7a5"
    assert rs.random() == 0.20272320262916632  # and it consumed exactly as many draws


# --------------------------------------------------------------------------------------------
# duplicate elimination
# --------------------------------------------------------------------------------------------

def _rows(genome: Genome, n: int, seed: int) -> list[np.ndarray]:
    return list(_population(genome, n, seed=seed, density=0.5))


def test_archive_duplicate_elimination(genome):
    pop_rows, archived, fresh = _rows(genome, 3, 1), _rows(genome, 3, 2), _rows(genome, 4, 3)
    archive: set[bytes] = {genome.key(x) for x in archived[:2]}
    dedup = ExactDuplicateElimination(genome, archive=archive)
    not_canonical = fresh[0].copy()
    not_canonical[genome.fixed] = False  # the same schedule as fresh[0]
    offspring = [fresh[0], archived[0], fresh[1], pop_rows[2], not_canonical, fresh[1], archived[1], fresh[2],
                 archived[2], fresh[3]]
    archive.add(genome.key(fresh[3]))  # a live container: added after construction, still seen
    kept = dedup.do(Population.new(X=np.array(offspring)), Population.new(X=np.array(pop_rows)))
    keys = [genome.key(genome.canonical(x)) for x in kept.get("X")]
    assert keys == [genome.key(x) for x in (fresh[0], fresh[1], fresh[2], archived[2])]
    assert len(set(keys)) == len(keys) and not set(keys) & archive
    assert not set(keys) & {genome.key(x) for x in pop_rows}


def test_duplicate_elimination_without_archive_is_pymoos_against_the_population(genome):
    pop_rows, others = _rows(genome, 3, 1), _rows(genome, 4, 2)
    offspring = np.array([others[0], pop_rows[1], others[1], others[0], others[2], pop_rows[0], others[3]])
    pop = Population.new(X=np.array(pop_rows))
    ours = ExactDuplicateElimination(genome).do(Population.new(X=offspring), pop)
    theirs = DefaultDuplicateElimination().do(Population.new(X=offspring), pop)
    assert np.array_equal(np.asarray(ours.get("X")), np.asarray(theirs.get("X")))
    assert np.array_equal(np.asarray(ours.get("X")), np.array([others[0], others[1], others[2], others[3]]))


def test_a_population_rebuilt_on_its_own_ignores_the_archive(genome):
    """pymoo's initialization deduplicates the population alone: the runner rebuilds each
    generation's population (all of it archived) that way, and must get all of it back."""
    rows = _rows(genome, 5, 4)
    dedup = ExactDuplicateElimination(genome, archive={genome.key(x) for x in rows})
    kept = dedup.do(Population.new(X=np.array(rows + [rows[1]])))
    assert np.array_equal(np.asarray(kept.get("X")), np.array(rows))


def test_repair_sets_fixed_bits(genome):
    X = np.zeros((3, genome.n_var), dtype=bool)
    out = CanonicalRepair(genome).do(MaskProblem(genome), Population.new(X=X))
    assert np.array_equal(np.asarray(out.get("X")), genome.canonical(X))


# --------------------------------------------------------------------------------------------
# the algorithm the settings make
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config, mutation, archive", [
    (SearchConfig(), StructuredMutation, True),
    (SearchConfig(strategy="paper"), BitflipMutation, False),
    (SearchConfig().replace(strategy="paper"), BitflipMutation, False),
    (SearchConfig(strategy="paper", structured_mutation=0.3, eliminate_duplicates="archive"), StructuredMutation, True),
])
def test_make_algorithm_follows_the_operator_settings(genome, config, mutation, archive):
    keys: set[bytes] = set()
    X = _population(genome, 6)
    algo = make_algorithm(MaskProblem(genome), config.operator_settings(), 6, X, seed=0, archive=keys)
    assert type(algo.mating.mutation) is mutation
    assert isinstance(algo.repair, CanonicalRepair)
    dedup = algo.eliminate_duplicates
    assert isinstance(dedup, ExactDuplicateElimination)
    assert (dedup.archive is keys) == archive and (dedup.archive is None) == (not archive)
    assert np.array_equal(np.asarray(algo.ask().get("X")), X)


def test_make_algorithm_without_duplicate_elimination(genome):
    ops = SearchConfig(eliminate_duplicates=False).operator_settings()
    algo = make_algorithm(MaskProblem(genome), ops, 6, _population(genome, 6), seed=0)
    assert isinstance(algo.eliminate_duplicates, NoDuplicateElimination)
