"""Search settings: :class:`SearchConfig` (every CLI flag of ``ecad-hub search`` has a field here)
and :class:`OperatorSettings`, the operator fields with the strategy's defaults filled in."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import SearchError

#: Version of the run-directory layout (``search.json``, ``generations/``, ``evaluations.json``, ...).
SEARCH_VERSION = 1

#: ``base_model`` value naming the embedded digits model shipped in the package.
EMBEDDED = "embedded"

#: Presets: "ecad" is ecad-hub's default (structured initial population, structured mutation,
#: archive-wide duplicate elimination, surrogate screening); "paper" is the ECAD paper's (random
#: initial population, 4-point crossover, bit-flip mutation, pymoo's duplicate elimination).
STRATEGIES = ("ecad", "paper")

#: What each strategy gives the operator fields a :class:`SearchConfig` leaves unset (``None``).
STRATEGY_DEFAULTS: dict[str, dict[str, Any]] = {
    "ecad": {"structured_mutation": 0.5, "eliminate_duplicates": "archive", "screening": 4,
             "initial_population": "structured"},
    "paper": {"structured_mutation": 0.0, "eliminate_duplicates": True, "screening": 1,
              "initial_population": "random"},
}


@dataclass(frozen=True)
class OperatorSettings:
    """The search operators of a :class:`SearchConfig`, strategy defaults resolved
    (:meth:`SearchConfig.operator_settings`); what the runner uses and ``search.json`` records."""

    strategy: str
    crossover_points: int
    crossover_prob: float
    mutation_prob: float
    mutation_prob_var: float | None
    structured_mutation: float
    eliminate_duplicates: bool | str
    initial_population: str
    screening: int
    screening_explore: float
    init_schedules: tuple[str, ...] = ()

    def record(self) -> dict:
        """The ``operators`` entry of ``search.json`` (compared on resume: keep it stable)."""
        return {
            "strategy": self.strategy,
            "algorithm": "NSGA2",
            "crossover": {"type": "PointCrossover", "n_points": self.crossover_points, "prob": self.crossover_prob},
            "mutation": {"type": "BitflipMutation", "prob": self.mutation_prob, "prob_var": self.mutation_prob_var},
            "structured_mutation": self.structured_mutation,
            "eliminate_duplicates": self.eliminate_duplicates,
            "initial_population": self.initial_population,
            "screening": {"factor": self.screening, "explore": self.screening_explore} if self.screening > 1 else None,
            "init_schedules": list(self.init_schedules),
            "constraint": "differs from all-compute in >= 1 effective bit (steps >= 1)",
            "genome": "CacheSchedule.to_vector(); step-0 and absent bits repaired to 1",
        }


@dataclass
class SearchConfig:
    """Everything that defines a search. ``None`` fields are resolved from the model, or (the
    operator fields ``structured_mutation``, ``eliminate_duplicates``, ``initial_population`` and
    ``screening``) from ``strategy`` (see below). They stay ``None`` in the config, so
    ``config.replace(strategy="paper")`` gets the paper's operators; :meth:`operator_settings`
    resolves them, and that is what a search uses and records.

    Model and generation:
        base_model: Hub id or local folder of a diffusers pipeline; ``"embedded"`` (the default)
            is the small digits model shipped with ecad-hub.
        revision: Hub revision of ``base_model``.
        height, width, num_inference_steps, guidance_scale, max_sequence_length: how images are
            generated (``None``: the model's defaults; 32x32, 20 steps, 4.5 and 16 tokens for the
            embedded model).
        num_frames: video models: frames per video (``None``: the family's default).
        dtype, device: ``"float32"``/``"float16"``/``"bfloat16"``; ``None`` device = CUDA if available.

    Quality:
        metric: a registered metric name (``fidelity``, ``clip``, ``image-reward``,
            ``embedded-reward`` or a plugin's); ``None``: ``embedded-reward`` for the embedded
            model, else ``fidelity``.
        metric_kwargs: keyword arguments of the metric (``--metric-arg KEY=VALUE``).
        prompts: a txt (one prompt per line) or JSON (list, or ``{"prompts": [...]}``) file;
            ``None``: the embedded model's calibration prompts.
        num_prompts: use the first N prompts of the file (``None``: all; the embedded set: 8).
        images_per_prompt: images per prompt (fixed seeds ``image_seed + image index``).

    Search:
        population, generations, seed: NSGA-II population size, number of generations (the
            initial population, generation 0, included: at most ``population x generations``
            evaluations), and the search's random seed.
        cost: ``"macs"`` (analytic, free) or ``"latency"`` (measured wall clock of each candidate).
        strategy: ``"ecad"`` (default) or ``"paper"``; sets the defaults of the operator fields
            below that are left ``None`` (see :data:`STRATEGY_DEFAULTS`); a field set explicitly wins.
        crossover_points, crossover_prob: ``PointCrossover(n_points, prob)``.
        mutation_prob, mutation_prob_var: ``BitflipMutation(prob, prob_var)`` (pymoo semantics:
            ``prob`` per offspring, ``prob_var`` per bit, default ``1 / number of bits``).
        structured_mutation: probability that an offspring also gets one structured move (a
            whole step, or one component over a range of steps and blocks, set to compute or reuse).
        eliminate_duplicates: drop offspring equal to a population member (``"archive"``: or to
            any schedule evaluated before; ``True``: pymoo's, against the population; ``False``: off).
        initial_population: ``"structured"`` (all-compute, FORA-style every-N steps,
            attention/single-component every-N, then random schedules of spread densities) or
            ``"random"`` (uniform random bits, plus the all-compute schedule).
        init_schedules: schedule files, frontier folders, search run folders or Hub repo ids
            whose schedules join the initial population.
        screening: surrogate screening: each generation the operators produce ``screening`` times
            the population in candidates; a ridge-regression model of quality over the mask bits
            (fit on every evaluation so far) and the exact MAC cost pick which ``population`` of
            them are evaluated (by predicted hypervolume gain), ``screening_explore`` of them
            at random. ``1`` = off (the paper); ecad-hub's default is 4. Only with ``cost="macs"``
            (latency is not known before a candidate runs).

    Execution:
        ray: ``None`` (in-process), ``"auto"``, ``"local"`` or a Ray address.
        batch_size: images per pipeline call (``None``: all images of a candidate at once).
        num_threads: torch CPU threads while evaluating (``None``: leave as is).
        latency_runs: timed repetitions per candidate with ``cost="latency"``.
    """

    base_model: str = EMBEDDED
    revision: str | None = None
    height: int | None = None
    width: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    max_sequence_length: int | None = None
    num_frames: int | None = None
    dtype: str = "float32"
    device: str | None = None

    metric: str | None = None
    metric_kwargs: dict = field(default_factory=dict)
    prompts: str | None = None
    num_prompts: int | None = None
    images_per_prompt: int = 1
    image_seed: int = 0

    population: int = 72
    generations: int = 20
    seed: int = 0
    cost: str = "macs"
    strategy: str = "ecad"
    crossover_points: int = 4
    crossover_prob: float = 0.9
    mutation_prob: float = 0.05
    mutation_prob_var: float | None = None
    structured_mutation: float | None = None
    eliminate_duplicates: Any = None
    initial_population: str | None = None
    init_schedules: list = field(default_factory=list)
    screening: int | None = None
    screening_explore: float = 0.25

    ray: str | None = None
    batch_size: int | None = None
    num_threads: int | None = None
    latency_runs: int = 1

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SearchError(f"unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}")
        if self.cost not in ("macs", "latency"):
            raise SearchError(f"unknown cost {self.cost!r}; use macs or latency")
        if self.population < 2:
            raise SearchError(f"population must be at least 2, got {self.population}")
        if self.generations < 1:
            raise SearchError(f"generations must be >= 1 (the initial population is generation 0), got {self.generations}")
        if self.images_per_prompt < 1:
            raise SearchError(f"images_per_prompt must be >= 1, got {self.images_per_prompt}")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise SearchError(f"unknown dtype {self.dtype!r}; use float32, float16 or bfloat16")
        if self.eliminate_duplicates is not None and self.eliminate_duplicates not in (True, False, "archive"):
            raise SearchError(f"eliminate_duplicates must be true, false or 'archive', got {self.eliminate_duplicates!r}")
        if self.screening is not None:
            if int(self.screening) < 1:
                raise SearchError(f"screening must be >= 1, got {self.screening}")
            self.screening = int(self.screening)
        if self.initial_population is not None and self.initial_population not in ("structured", "random"):
            raise SearchError(f"initial_population must be 'structured' or 'random', got {self.initial_population!r}")
        self.init_schedules = [str(s) for s in (self.init_schedules or [])]
        self.metric_kwargs = dict(self.metric_kwargs or {})

    @classmethod
    def paper(cls, **kwargs) -> "SearchConfig":
        """The ECAD paper's configuration (random initial population, plain operators)."""
        return cls(strategy="paper", **kwargs)

    def replace(self, **changes) -> "SearchConfig":
        """A copy with ``changes``; operator fields left unset stay unset (``replace(strategy="paper")``
        is the paper's search)."""
        return dataclasses.replace(self, **changes)

    def operator_settings(self) -> OperatorSettings:
        """The operators with the strategy's defaults filled in for unset fields: the one place
        strategy defaults are resolved (the runner and ``search.json`` both use it)."""
        defaults = STRATEGY_DEFAULTS[self.strategy]

        def pick(name):
            value = getattr(self, name)
            return defaults[name] if value is None else value

        return OperatorSettings(
            strategy=self.strategy, crossover_points=self.crossover_points, crossover_prob=self.crossover_prob,
            mutation_prob=self.mutation_prob, mutation_prob_var=self.mutation_prob_var,
            structured_mutation=pick("structured_mutation"), eliminate_duplicates=pick("eliminate_duplicates"),
            initial_population=pick("initial_population"), screening=int(pick("screening")),
            screening_explore=self.screening_explore, init_schedules=tuple(self.init_schedules),
        )

    def to_dict(self) -> dict:
        """Every field, with the operator fields resolved (what the search runs with);
        ``dataclasses.asdict(config)`` gives the fields as set."""
        ops = self.operator_settings()
        return dict(dataclasses.asdict(self), **{k: getattr(ops, k) for k in STRATEGY_DEFAULTS[self.strategy]})

    def operators(self) -> dict:
        """The search operators as recorded in ``search.json`` (strategy defaults resolved)."""
        return self.operator_settings().record()
