"""The search loop: NSGA-II in ask/tell mode over schedule masks, with a resumable run directory.

Run directory (a contract :meth:`ecad_hub.frontier.Frontier.load` relies on)::

    search.json                 the search's configuration (see _search_doc)
    generations/gen_NNNN.json   per generation: evaluated candidates, surviving population,
                                the Pareto front (hashes), hypervolume
    evaluations.json            content hash -> objectives of every schedule ever evaluated
    front/<name>.json           the current Pareto front as schedule v1 files
    frontier.png                candidates of every generation (older ones faded) and the front
    reference_images.safetensors  all-compute images (metrics that compare against them)
    mac_profile.json            the MAC profile used for the cost objective
    log.txt                     one line per event and per generation

State is JSON (+ safetensors), never pickle. Resuming rebuilds the algorithm from the last
completed generation's population: every generation, interrupted or not, starts from that
JSON record with a random generator seeded by (seed, generation), so a resumed run writes
exactly the generation files an uninterrupted run writes. Evaluations finished before an
interruption are reused from ``evaluations.json``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..utils.io import atomic_write_json, read_json
from ..errors import EcadError, SearchError
from ..schedule import CacheSchedule
from .config import EMBEDDED, SEARCH_VERSION, SearchConfig
from .evaluate import Evaluator, torch_threads
from .population import (Genome, hypervolume, initial_population, make_duplicate_elimination, make_mutation,
                         make_problem, make_repair, nondominated)

logger = logging.getLogger(__name__)

#: Speedups at which the per-generation summary reports the best quality.
SUMMARY_SPEEDUPS = (1.5, 2.0, 3.0)
#: Seconds between two writes of ``evaluations.json`` inside a generation.
FLUSH_INTERVAL_S = 2.0
#: Keys of search.json that may differ when resuming (they do not change what is computed).
_RESUMABLE_DIFFERENCES = {"generations", "ecad_hub_version", "execution"}


@dataclass
class SearchResult:
    """What :func:`run_search` returns."""

    run_dir: Path
    front: list[CacheSchedule]
    generation: int  # last completed generation
    num_evaluations: int  # distinct schedules the search evaluated
    hypervolume: float
    interrupted: bool = False
    metric_calls: int = 0  # schedules evaluated by this call (cache misses)
    records: list = field(default_factory=list, repr=False)


# --------------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------------

class InProcessBackend:
    """Evaluates candidates one after the other in this process."""

    def __init__(self, evaluator: Evaluator, genome: Genome, num_threads: int | None):
        self.evaluator = evaluator
        self.genome = genome
        self.num_threads = num_threads
        self.num_images = evaluator.num_images

    def describe_metric(self) -> dict:
        return self.evaluator.metric.describe()

    def needs_reference(self) -> bool:
        return bool(getattr(self.evaluator.metric, "needs_reference", False))

    def make_reference(self, progress=None):
        with torch_threads(self.num_threads):
            return self.evaluator.make_reference(progress=progress)

    def set_reference(self, images) -> None:
        self.evaluator.set_reference(images)

    def evaluate(self, items, *, measure_latency: bool, on_result: Callable, on_images: Callable) -> None:
        with torch_threads(self.num_threads):
            for key, x in items:
                schedule = self.genome.schedule(x)
                on_result(key, self.evaluator.evaluate(schedule, measure_latency=measure_latency, progress=on_images))

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _gen_path(run_dir: Path, k: int) -> Path:
    return run_dir / "generations" / f"gen_{k:04d}.json"


def _completed_generations(run_dir: Path) -> list[int]:
    out = []
    for p in (run_dir / "generations").glob("gen_*.json"):
        m = re.fullmatch(r"gen_(\d{4,})\.json", p.name)
        if m:
            out.append(int(m.group(1)))
    out.sort()
    # only a gap-free prefix counts (a file beyond a gap would be from something else)
    prefix = []
    for i, k in enumerate(out):
        if k != i:
            break
        prefix.append(k)
    return prefix


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                out.append(f"{prefix}{k}")
            else:
                out += _diff_keys(a[k], b[k], f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _short(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 50 else text[:47] + "..."


def _load_metric(name: str, kwargs: dict, plugins: list[str], device):
    from ..metrics import get_metric

    import_plugins(plugins)
    metric = get_metric(name, **kwargs)
    try:
        metric.to(device)
    except Exception:  # noqa: BLE001 - a metric without device support stays where it is
        pass
    return metric


def import_plugins(plugins) -> None:
    import importlib

    for module in plugins or ():
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise SearchError(f"cannot import plugin {module!r}: {err}") from None


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
    out: list[CacheSchedule] = []
    for ref in refs:
        path = Path(ref)
        if path.is_file():
            from ..legacy import load_any_schedule

            out.append(load_any_schedule(path))
            continue
        schedules = None
        try:
            from ..frontier import Frontier  # noqa: F401
        except ImportError:
            Frontier = None
        if Frontier is not None:
            try:
                fr = Frontier.load(ref)
                items = getattr(fr, "schedules", fr)
                schedules = list(items.values()) if isinstance(items, dict) else list(items)
            except EcadError:
                if not path.is_dir():
                    raise
        if schedules is None and path.is_dir():
            from ..schedule import iter_schedule_files

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


# --------------------------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------------------------

class SearchRunner:
    """One search run in one directory. Use :func:`run_search`."""

    def __init__(self, config: SearchConfig, run_dir: str | os.PathLike, *, pipe=None, metric=None,
                 plugins: list[str] | None = None, progress: bool = True, log: Callable[[str], None] | None = None,
                 quiet: bool = False, backend=None):
        self.config = config
        self._backend_override = backend
        self.run_dir = Path(run_dir)
        self.pipe = pipe
        self.metric = metric
        self.plugins = list(plugins or [])
        self.progress = progress
        self._print = log if log is not None else (lambda s: None) if quiet else print
        self.evaluations: dict[str, dict] = {}
        self.metric_calls = 0
        self._last_flush = 0.0
        self._dirty = False
        self.backend = None

    # --- logging ----------------------------------------------------------------------------
    def log(self, message: str, *, echo: bool = True) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "log.txt", "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")
        if echo:
            self._print(message)

    # --- setup ------------------------------------------------------------------------------
    def _resolve(self) -> None:
        from ..macs import profile_macs
        from .model import default_device, info_from_pipeline, model_info
        from .prompts import resolve_prompts

        cfg = self.config
        if cfg.ray and self.pipe is not None:
            raise SearchError("pass either a loaded pipeline or --ray (Ray actors load the model from base_model)")
        self.device = cfg.device or (str(getattr(self.pipe, "_execution_device", "")) if self.pipe is not None else None) \
            or default_device()
        self.info = info_from_pipeline(self.pipe, cfg.base_model, cfg.revision) if self.pipe is not None \
            else model_info(cfg.base_model, cfg.revision)
        d = self.info.defaults()
        self.settings = dict(
            height=cfg.height or d["height"], width=cfg.width or d["width"],
            num_inference_steps=cfg.num_inference_steps or d["num_inference_steps"],
            guidance_scale=float(cfg.guidance_scale if cfg.guidance_scale is not None else d["guidance_scale"]),
            max_sequence_length=cfg.max_sequence_length or d["max_sequence_length"],
        )
        self.metric_name = self.metric.name if self.metric is not None else \
            cfg.metric or ("embedded-reward" if cfg.base_model == EMBEDDED else "fidelity")
        self.prompt_set = resolve_prompts(cfg.prompts, cfg.num_prompts, embedded_model=cfg.base_model == EMBEDDED)
        self.architecture = self.info.architecture
        self.genome = Genome(self.architecture, self.settings["num_inference_steps"])
        cfg_batch = 2 if self.info.uses_cfg(self.settings["guidance_scale"]) else 1
        try:
            self.profile = profile_macs(self.info.transformer_config, self.settings["height"], self.settings["width"],
                                        batch_size=cfg_batch, text_len=self.info.text_len(self.settings["max_sequence_length"]),
                                        vae_scale_factor=self.info.vae_scale_factor)
        except ValueError as err:
            raise SearchError(f"cannot profile MACs at {self.settings['height']}x{self.settings['width']}: {err}") from None

    def _make_backend(self):
        cfg = self.config
        if self._backend_override is not None:
            return self._backend_override
        if cfg.ray:
            from .ray_backend import RayBackend

            spec = dict(
                base_model=cfg.base_model, revision=cfg.revision, dtype=cfg.dtype,
                settings=self.settings, prompts=list(self.prompt_set.prompts), images_per_prompt=cfg.images_per_prompt,
                image_seed=cfg.image_seed, metric_name=self.metric_name, metric_kwargs=cfg.metric_kwargs,
                metric=self.metric, plugins=self.plugins, batch_size=cfg.batch_size, latency_runs=cfg.latency_runs,
                num_threads=cfg.num_threads, architecture=self.architecture.to_dict(),
                steps=self.settings["num_inference_steps"], device=cfg.device,
            )
            return RayBackend(cfg.ray, spec, log=self.log)
        from .model import load_pipeline

        if self.pipe is None:
            self.log(f"loading {cfg.base_model} ...")
            self.pipe = load_pipeline(cfg.base_model, cfg.revision, dtype=cfg.dtype, device=self.device)
            self.pipe.set_progress_bar_config(disable=True)
        else:
            try:
                self.pipe.set_progress_bar_config(disable=True)
            except Exception:  # noqa: BLE001
                pass
        metric = self.metric if self.metric is not None else _load_metric(
            self.metric_name, cfg.metric_kwargs, self.plugins, self.device)
        self.metric = metric
        with torch_threads(cfg.num_threads):
            evaluator = Evaluator(self.pipe, self.settings, self.prompt_set.prompts,
                                  images_per_prompt=cfg.images_per_prompt, image_seed=cfg.image_seed, metric=metric,
                                  batch_size=cfg.batch_size, latency_runs=cfg.latency_runs)
        return InProcessBackend(evaluator, self.genome, cfg.num_threads)

    def _search_doc(self, metric_desc: dict) -> dict:
        from .. import __version__

        cfg = self.config
        return {
            "ecad_search_version": SEARCH_VERSION,
            "base_model": cfg.base_model,
            "revision": cfg.revision,
            "pipeline_class": self.info.pipeline_class,
            "scheduler_class": self.info.scheduler_class,
            "architecture": self.architecture.to_dict(),
            "height": self.settings["height"],
            "width": self.settings["width"],
            "num_inference_steps": self.settings["num_inference_steps"],
            "guidance_scale": self.settings["guidance_scale"],
            "max_sequence_length": self.settings["max_sequence_length"],
            "dtype": cfg.dtype,
            "metric": dict(metric_desc, name=self.metric_name) if metric_desc.get("name") != self.metric_name
            else dict(metric_desc),
            "prompt_set": self.prompt_set.describe(cfg.images_per_prompt, cfg.image_seed),
            "population": cfg.population,
            "generations": cfg.generations,
            "seed": cfg.seed,
            "cost": cfg.cost,
            "operators": cfg.operators(),
            "objectives": ["cost ratio (minimise)", f"-{self.metric_name} (minimise)"],
            "mac_profile": self.profile.profile_settings(),
            "ecad_hub_version": __version__,
            "execution": {"device": str(self.device) if not cfg.ray else "ray", "ray": cfg.ray,
                          "batch_size": cfg.batch_size, "num_threads": cfg.num_threads},
        }

    def _check_or_write_search_json(self, doc: dict, resume: bool) -> None:
        path = self.run_dir / "search.json"
        if path.exists():
            if not resume:
                raise SearchError(f"{self.run_dir} already holds a search; pass --resume to continue it or choose another --out")
            old = read_json(path, error_cls=SearchError)
            if not isinstance(old, dict) or old.get("ecad_search_version") != SEARCH_VERSION:
                raise SearchError(f"{path}: not an ecad-hub search (or of another version); cannot resume")
            diffs = [k for k in _diff_keys(old, doc) if k.split(".")[0] not in _RESUMABLE_DIFFERENCES]
            if diffs:
                k = diffs[0]
                a = old
                b = doc
                for part in k.split("."):
                    a = a.get(part) if isinstance(a, dict) else None
                    b = b.get(part) if isinstance(b, dict) else None
                raise SearchError(
                    f"{self.run_dir} is a different search ({k}: {_short(a)} there, {_short(b)} here); "
                    f"refusing to resume it")
            if old.get("generations") != doc["generations"] or old.get("execution") != doc["execution"]:
                atomic_write_json(path, doc)
        else:
            if resume and any(self.run_dir.glob("generations/gen_*.json")):
                raise SearchError(f"{self.run_dir}: generation files but no search.json; cannot resume")
            atomic_write_json(path, doc)

    # --- evaluations cache ------------------------------------------------------------------
    def _load_evaluations(self) -> None:
        path = self.run_dir / "evaluations.json"
        if path.exists():
            doc = read_json(path, error_cls=SearchError)
            self.evaluations = dict(doc.get("evaluations", {}))

    def _flush(self, force: bool = False) -> None:
        if not self._dirty:
            return
        now = time.monotonic()
        if force or now - self._last_flush >= FLUSH_INTERVAL_S:
            atomic_write_json(self.run_dir / "evaluations.json",
                              {"ecad_search_version": SEARCH_VERSION, "evaluations": self.evaluations})
            self._last_flush = now
            self._dirty = False

    # --- objectives -------------------------------------------------------------------------
    def mac_ratio(self, x: np.ndarray) -> tuple[float, int]:
        """(total MACs / all-compute MACs, total MACs) of a canonical vector (step 0 computes)."""
        total = 0
        for (name, _, _), view in zip(self.genome.groups, self.genome.views(np.asarray(x, dtype=bool))):
            total += int((view * self.profile.component_macs[name][None]).sum(dtype=np.int64))
        steps = self.settings["num_inference_steps"]
        total += self.profile.always_macs * steps
        return total / self.profile.all_compute_macs(steps), total

    def _record(self, key: str, x: np.ndarray, result: dict, gen: int, cand: int) -> dict:
        ratio, total = self.mac_ratio(x)
        rec = {"genome": self.genome.to_hex(x), "mac_ratio": ratio, "macs": total,
               "quality": float(result["quality"])}
        if "latency_ms_per_image" in result:
            rec["latency_ms_per_image"] = float(result["latency_ms_per_image"])
        rec["generation"] = gen
        rec["candidate"] = cand
        return rec

    def cost_of(self, rec: dict) -> float:
        if self.config.cost == "latency":
            return rec["latency_ms_per_image"] / self.all_compute_ms
        return rec["mac_ratio"]

    # --- evaluation of a batch of candidates --------------------------------------------------
    def _evaluate_all(self, X: np.ndarray, gen: int, desc: str | None = None) -> list[str]:
        """Content hashes of the rows of ``X``, evaluating those not in the cache."""
        hashes = [self.genome.schedule(x).content_hash for x in X]
        todo, seen = [], set()
        for i, (h, x) in enumerate(zip(hashes, X)):
            if h not in self.evaluations and h not in seen:
                todo.append((h, x, i))
                seen.add(h)
        if not todo:
            return hashes
        position = {h: i for h, _, i in todo}
        vectors = {h: x for h, x, _ in todo}
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo) * self.backend.num_images, unit="img", desc=desc or f"gen {gen}", leave=False,
                       dynamic_ncols=True, file=sys.stderr)
            bar.set_postfix_str(f"0/{len(todo)} candidates")
        done = [0]

        def on_images(n: int) -> None:
            if bar is not None:
                bar.update(n)

        def on_result(h: str, result: dict) -> None:
            self.evaluations[h] = self._record(h, vectors[h], result, gen, position[h])
            self.metric_calls += 1
            self._dirty = True
            done[0] += 1
            if bar is not None:
                bar.set_postfix_str(f"{done[0]}/{len(todo)} candidates")
            self._flush()

        try:
            self.backend.evaluate([(h, x) for h, x, _ in todo], measure_latency=self.config.cost == "latency",
                                  on_result=on_result, on_images=on_images)
        finally:
            if bar is not None:
                bar.close()
            self._flush(force=True)
        return hashes

    # --- pymoo ------------------------------------------------------------------------------
    def _algorithm(self, sampling: np.ndarray):
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.operators.crossover.pntx import PointCrossover

        cfg = self.config
        dedup = make_duplicate_elimination(self.genome) if cfg.eliminate_duplicates else False
        algo = NSGA2(
            pop_size=cfg.population,
            sampling=np.asarray(sampling, dtype=bool),
            crossover=PointCrossover(n_points=cfg.crossover_points, prob=cfg.crossover_prob),
            mutation=make_mutation(self.genome, prob=cfg.mutation_prob, prob_var=cfg.mutation_prob_var,
                                   structured=cfg.structured_mutation),
            repair=make_repair(self.genome),
            eliminate_duplicates=dedup,
        )
        algo.setup(self.problem, termination=("n_gen", 10 ** 9), seed=cfg.seed, verbose=False)
        return algo

    def _offspring(self, algo, archive: list[str]):
        """``algo.ask()``, or with screening: several asks, of which the surrogate picks ``population``."""
        cfg = self.config
        if cfg.screening <= 1 or cfg.cost != "macs" or len(archive) < 2 * cfg.population:
            return algo.ask()
        from pymoo.core.population import Population

        from .population import RidgeSurrogate, screen

        pools, seen = [], set()
        for _ in range(cfg.screening):
            part = algo.ask()
            if part is None:
                continue
            for ind in part:
                key = self.genome.key(np.asarray(ind.X, dtype=bool))
                if key not in seen:
                    seen.add(key)
                    pools.append(ind)
        if not pools:
            return None
        pool = Population.create(*pools)
        X = np.asarray(pool.get("X"), dtype=bool)
        AX = np.array([self.genome.from_hex(self.evaluations[h]["genome"]) for h in archive], dtype=bool)
        quality = [self.evaluations[h]["quality"] for h in archive]
        predicted = RidgeSurrogate(self.genome).fit(AX, quality).predict(X)
        cost = np.array([self.mac_ratio(x)[0] for x in X])
        front = [(self.cost_of(self.evaluations[h]), self.evaluations[h]["quality"]) for h in self._front(archive)]
        worst = min(quality)
        picks = screen(cost, predicted, front, cfg.population, algo.random_state, ref_quality=worst,
                       explore=cfg.screening_explore)
        return pool[picks]

    def _FG(self, hashes: list[str], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F = np.array([[self.cost_of(self.evaluations[h]), -self.evaluations[h]["quality"]] for h in hashes], dtype=float)
        G = np.array([[1.0 - self.genome.reused_bits(x)] for x in X], dtype=float)
        return F, G

    def _tell(self, algo, pop, hashes):
        from pymoo.core.evaluator import Evaluator as PymooEvaluator
        from pymoo.problems.static import StaticProblem

        X = np.asarray(pop.get("X"), dtype=bool)
        F, G = self._FG(hashes, X)
        PymooEvaluator().eval(StaticProblem(self.problem, F=F, G=G), pop)
        algo.tell(infills=pop)

    def _population_record(self, algo) -> list[dict]:
        X = np.asarray(algo.pop.get("X"), dtype=bool)
        out = []
        for x in X:
            h = self.genome.schedule(x).content_hash
            rec = self.evaluations[h]
            out.append({"hash": h, "genome": rec["genome"], "mac_ratio": rec["mac_ratio"], "quality": rec["quality"]})
        return out

    # --- generation records -----------------------------------------------------------------
    def _front(self, archive_hashes: list[str]) -> list[str]:
        hs = [h for h in archive_hashes if self.genome.reused_bits(self.genome.from_hex(self.evaluations[h]["genome"])) > 0]
        if not hs:
            return []
        cost = [self.cost_of(self.evaluations[h]) for h in hs]
        quality = [self.evaluations[h]["quality"] for h in hs]
        keep = nondominated(cost, quality)
        front = [h for h, k in zip(hs, keep) if k]
        front.sort(key=lambda h: self.cost_of(self.evaluations[h]))
        return front

    def _summary(self, front: list[str]) -> dict:
        best = {}
        for s in SUMMARY_SPEEDUPS:
            qs = [self.evaluations[h]["quality"] for h in front if 1.0 / self.cost_of(self.evaluations[h]) >= s]
            best[f"{s:g}x"] = max(qs) if qs else None
        return best

    def _write_generation(self, k: int, offspring: list[dict], algo, archive_hashes: list[str],
                          hv_ref: dict) -> dict:
        front = self._front(archive_hashes)
        hv = hypervolume([self.cost_of(self.evaluations[h]) for h in front],
                         [self.evaluations[h]["quality"] for h in front], hv_ref["cost"], hv_ref["quality"])
        record = {
            "ecad_search_version": SEARCH_VERSION,
            "generation": k,
            "seed": self.config.seed,
            "num_evaluations": len(archive_hashes),
            "offspring": offspring,
            "population": self._population_record(algo),
            "front": front,
            "hypervolume": hv,
            "hv_reference": hv_ref,
            "best_quality_at_speedup": self._summary(front),
        }
        atomic_write_json(_gen_path(self.run_dir, k), record)
        return json.loads(json.dumps(record))  # exactly what a resumed run reads back

    def _offspring_records(self, hashes: list[str], X: np.ndarray, labels: list[str] | None = None) -> list[dict]:
        out = []
        for i, (h, x) in enumerate(zip(hashes, X)):
            rec = self.evaluations[h]
            r = {"candidate": i, "hash": h, "genome": rec["genome"], "mac_ratio": rec["mac_ratio"], "macs": rec["macs"],
                 "quality": rec["quality"], "cost": self.cost_of(rec), "feasible": self.genome.reused_bits(x) > 0}
            if "latency_ms_per_image" in rec:
                r["latency_ms_per_image"] = rec["latency_ms_per_image"]
            if labels is not None:
                r["init"] = labels[i]
            out.append(r)
        return out

    # --- outputs ----------------------------------------------------------------------------
    def _front_schedules(self, front: list[str]) -> list[CacheSchedule]:
        from .. import __version__

        cfg = self.config
        q_all = self.all_compute_quality
        generation = {k: v for k, v in {
            "base_model": cfg.base_model, "revision": cfg.revision, "pipeline_class": self.info.pipeline_class,
            "height": self.settings["height"], "width": self.settings["width"],
            "guidance_scale": self.settings["guidance_scale"], "scheduler_class": self.info.scheduler_class,
        }.items() if v is not None}
        out, names = [], set()
        for h in front:
            rec = self.evaluations[h]
            x = self.genome.from_hex(rec["genome"])
            speedup = 1.0 / rec["mac_ratio"]
            name = f"ecad-{speedup:.2f}x"
            if name in names:
                name = f"{name}-{h[:8]}"
            names.add(name)
            quality = {"metric": self.metric_name, "value": rec["quality"], "all_compute_value": q_all,
                       "prompt_set": self.prompt_set.name, "prompt_set_sha256": self.prompt_set.sha256,
                       "num_images": self.backend_num_images}
            metrics: dict[str, Any] = {"quality": [quality]}
            if "latency_ms_per_image" in rec:
                metrics["latency"] = {"ms_per_image": rec["latency_ms_per_image"],
                                      "all_compute_ms_per_image": self.all_compute_ms,
                                      "speedup": round(self.all_compute_ms / rec["latency_ms_per_image"], 4),
                                      "device": str(self.device) if not cfg.ray else "ray", "dtype": cfg.dtype,
                                      "batch_size": cfg.batch_size or self.backend_num_images,
                                      "runs": cfg.latency_runs}
            s = self.genome.schedule(
                x, name=name, generation=generation, metrics=metrics,
                provenance={"ecad_hub_version": __version__, "search_run": self.run_dir.name,
                            "generation": int(rec["generation"]), "candidate": int(rec["candidate"])},
                description=(f"Found by ecad-hub search: {speedup:.2f}x fewer MACs, {self.metric_name} "
                             f"{rec['quality']:.4g} (all-compute {q_all:.4g}) on {self.prompt_set.name}."),
            )
            out.append(self.profile.annotate(s))
        return out

    def _write_front(self, front: list[str]) -> list[CacheSchedule]:
        schedules = self._front_schedules(front)
        folder = self.run_dir / "front"
        folder.mkdir(parents=True, exist_ok=True)
        keep = set()
        for s in schedules:
            s.save(folder / f"{s.name}.json")
            keep.add(f"{s.name}.json")
        for p in folder.glob("*.json"):
            if p.name not in keep:
                p.unlink()
        return schedules

    def _plot(self, records: list[dict]) -> None:
        """frontier.png: the current front, with the fronts of earlier generations faded behind it."""
        from ..plotting import plot_frontier

        def points(hashes):
            return [(1.0 / self.cost_of(self.evaluations[h]), self.evaluations[h]["quality"]) for h in hashes]

        try:
            k = records[-1]["generation"]
            earlier = records[:-1][-8:]
            faded = {f"gen {r['generation']}": points(r["front"]) for r in earlier}
            label = f"front after generation {k}"
            series = {label: points(records[-1]["front"]), "all-compute": [(1.0, self.all_compute_quality)]}
            plot_frontier(
                series, self.run_dir / "frontier.png", highlight=label, faded=faded,
                xlabel="MAC speedup (x)" if self.config.cost == "macs" else "latency speedup (x)",
                ylabel=f"{self.metric_name} ({self.prompt_set.name})",
                title=f"{Path(str(self.config.base_model)).name} {self.settings['height']}x{self.settings['width']}, "
                      f"{self.settings['num_inference_steps']} steps")
        except Exception as err:  # noqa: BLE001 - a plot never stops a search
            self.log(f"warning: frontier.png not written ({type(err).__name__}: {err})")

    def _summary_line(self, record: dict, new: int, seconds: float) -> str:
        best = record["best_quality_at_speedup"]
        parts = " | ".join(f">={k} {v:.4g}" if v is not None else f">={k} -" for k, v in best.items())
        total = self.config.generations
        return (f"gen {record['generation']}/{total - 1}: {new} new evaluations ({record['num_evaluations']} total), "
                f"front {len(record['front'])}, HV {record['hypervolume']:.4g}, best {self.metric_name} at speedup "
                f"{parts}  [{seconds:.1f} s]")

    # --- reference --------------------------------------------------------------------------
    def _reference(self) -> None:
        """All-compute images (if the metric compares against them) and the all-compute evaluation."""
        from safetensors.torch import load_file, save_file

        self.all_compute_ms = None
        ref_path = self.run_dir / "reference_images.safetensors"
        meta_path = self.run_dir / "reference.json"
        meta = read_json(meta_path, error_cls=SearchError) if meta_path.exists() else {}
        if self.backend.needs_reference():
            if ref_path.exists():
                images = load_file(str(ref_path))["images"]
                self.all_compute_ms = meta.get("all_compute_ms_per_image")
            else:
                self.log(f"generating {self.backend.num_images} all-compute reference images ...")
                images, ms = self.backend.make_reference()
                tmp = ref_path.with_suffix(".tmp")
                save_file({"images": images.contiguous()}, str(tmp))
                os.replace(tmp, ref_path)
                self.all_compute_ms = ms
                atomic_write_json(meta_path, {"all_compute_ms_per_image": ms, "num_images": int(images.shape[0])})
            self.backend.set_reference(images)
        ac = self.genome.all_compute()
        h = self.genome.schedule(ac).content_hash
        if h not in self.evaluations:
            self._evaluate_all(ac[None], gen=0, desc="all-compute")
        self.all_compute_hash = h
        rec = self.evaluations[h]
        self.all_compute_quality = rec["quality"]
        if self.config.cost == "latency":
            if "latency_ms_per_image" in rec:
                self.all_compute_ms = rec["latency_ms_per_image"]
            if not self.all_compute_ms:
                raise SearchError("cost=latency needs the all-compute latency; delete the run directory and restart")

    # --- main -------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> SearchResult:
        try:
            import pymoo  # noqa: F401
        except ImportError:
            raise SearchError("the search needs pymoo: pip install 'ecad-hub[search]'") from None
        self._resolve()
        if self.run_dir.exists() and not resume and (self.run_dir / "search.json").exists():
            raise SearchError(f"{self.run_dir} already holds a search; pass --resume to continue it or choose another --out")
        if resume and not (self.run_dir / "search.json").exists():
            raise SearchError(f"--resume: {self.run_dir} holds no search.json (nothing to resume)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.problem = make_problem(self.genome)
        self.backend = self._make_backend()
        try:
            return self._run(resume)
        except KeyboardInterrupt:
            self._flush(force=True)
            self.log("interrupted; state saved. Continue with --resume")
            raise
        finally:
            self._flush(force=True)
            if self.backend is not None:
                self.backend.close()

    def _run(self, resume: bool) -> SearchResult:
        cfg = self.config
        self.backend_num_images = self.backend.num_images
        doc = self._search_doc(self.backend.describe_metric())
        self._check_or_write_search_json(doc, resume)
        self._load_evaluations()
        (self.run_dir / "generations").mkdir(exist_ok=True)
        atomic_write_json(self.run_dir / "mac_profile.json", self.profile.to_dict())
        done = _completed_generations(self.run_dir)
        records = [read_json(_gen_path(self.run_dir, k), error_cls=SearchError) for k in done]
        if resume:
            self.log(f"resuming {self.run_dir}: {len(done)} generation(s) done, {len(self.evaluations)} evaluation(s) cached")
        else:
            self.log(f"search {cfg.base_model} {self.settings['height']}x{self.settings['width']}, "
                     f"{self.settings['num_inference_steps']} steps, metric {self.metric_name}, "
                     f"{len(self.prompt_set)} prompt(s) x {cfg.images_per_prompt}, population {cfg.population}, "
                     f"{cfg.generations} generation(s), strategy {cfg.strategy} -> {self.run_dir}")
        self._reference()

        archive: list[str] = []
        archive_keys: set[bytes] = set()
        for r in records:
            for o in r["offspring"]:
                if o["hash"] not in archive:
                    archive.append(o["hash"])
                    archive_keys.add(self.genome.key(self.genome.from_hex(o["genome"])))
        hv_ref = records[0]["hv_reference"] if records else None
        front_schedules: list[CacheSchedule] = []

        for k in range(len(records), cfg.generations):
            t0 = time.time()
            before = self.metric_calls
            if k == 0:
                user = [self.genome.vector(_adapt_steps(s, self.genome.steps))
                        for s in self._compatible(load_init_schedules(cfg.init_schedules, self.log))]
                X0, labels = initial_population(self.genome, cfg.population, np.random.default_rng([cfg.seed, 0]),
                                                mode=cfg.initial_population, user=user)
                algo = self._algorithm(X0)
                algo.random_state = np.random.default_rng([cfg.seed, 0, 1])
                pop = algo.ask()
                X = np.asarray(pop.get("X"), dtype=bool)
                label_of = {self.genome.key(x): lab for x, lab in zip(X0, labels)}
                labels = [label_of.get(self.genome.key(x), "random") for x in X]
                hashes = self._evaluate_all(X, gen=0)
                self._tell(algo, pop, hashes)
                offspring = self._offspring_records(hashes, X, labels)
                quals = [o["quality"] for o in offspring if o["feasible"]] or [self.all_compute_quality]
                hv_ref = {"cost": 1.0, "quality": float(min(quals))}
            else:
                prev = records[-1]
                PX = np.array([self.genome.from_hex(p["genome"]) for p in prev["population"]], dtype=bool)
                algo = self._algorithm(PX)
                algo.random_state = np.random.default_rng([cfg.seed, k, 0])
                pop = algo.ask()
                PX2 = np.asarray(pop.get("X"), dtype=bool)
                self._tell(algo, pop, [self.genome.schedule(x).content_hash for x in PX2])
                if cfg.eliminate_duplicates == "archive":
                    algo.eliminate_duplicates.archive = archive_keys
                algo.random_state = np.random.default_rng([cfg.seed, k, 1])
                off = self._offspring(algo, archive)
                if off is None or len(off) == 0:
                    self.log(f"gen {k}: the operators produced no new candidate; stopping")
                    break
                X = np.asarray(off.get("X"), dtype=bool)
                hashes = self._evaluate_all(X, gen=k)
                self._tell(algo, off, hashes)
                offspring = self._offspring_records(hashes, X)
            for o in offspring:
                if o["hash"] not in archive:
                    archive.append(o["hash"])
                    archive_keys.add(self.genome.key(self.genome.from_hex(o["genome"])))
            self._flush(force=True)
            record = self._write_generation(k, offspring, algo, archive, hv_ref)
            records.append(record)
            front_schedules = self._write_front(record["front"])
            self._plot(records)
            self.log(self._summary_line(record, self.metric_calls - before, time.time() - t0))

        if records and not front_schedules:
            front_schedules = self._write_front(records[-1]["front"])
        last = records[-1] if records else None
        return SearchResult(
            run_dir=self.run_dir, front=front_schedules, generation=last["generation"] if last else -1,
            num_evaluations=last["num_evaluations"] if last else 0, hypervolume=last["hypervolume"] if last else 0.0,
            metric_calls=self.metric_calls, records=records,
        )

    def _compatible(self, schedules: list[CacheSchedule]) -> list[CacheSchedule]:
        out = []
        for s in schedules:
            diffs = self.architecture.differences(s.architecture)
            if diffs:
                self.log(f"init: skipping {s.name} ({'; '.join(diffs)})")
                continue
            out.append(s)
        return out


def run_search(config: SearchConfig | None = None, run_dir: str | os.PathLike | None = None, *, pipe=None,
               metric=None, plugins: list[str] | None = None, resume: bool = False, progress: bool = True,
               log: Callable[[str], None] | None = None, quiet: bool = False, backend=None,
               **overrides) -> SearchResult:
    """Search a Pareto frontier of caching schedules; see :class:`SearchConfig` for the settings.

    Args:
        config: the search settings (``SearchConfig()``: the embedded model, ecad-hub's defaults);
            keyword ``overrides`` replace fields of it.
        run_dir: the run directory (default ``runs/<model>-<H>x<W>-<steps>steps-<metric>-seed<S>``).
        pipe: an already loaded pipeline to search on (``config.base_model`` is then only recorded).
        metric: a :class:`~ecad_hub.metrics.QualityMetric` instance instead of ``config.metric``.
        plugins: modules to import first (they may call ``register_metric``).
        resume: continue the search in ``run_dir`` (refused if it is a different search).
        progress: show a tqdm bar per generation.
        log: called with each log line (default ``print``; ``quiet=True`` prints nothing).
        backend: an evaluation backend object to use instead of building one (advanced: the
            search benchmark shares one cached evaluator between runs; see
            :class:`InProcessBackend` for the interface).

    Returns:
        A :class:`SearchResult` with the front as schedules (also in ``run_dir/front``).

    Ctrl-C stops after writing the state (re-raises ``KeyboardInterrupt``); ``resume=True``
    continues. Example::

        >>> from ecad_hub.search import run_search, SearchConfig
        >>> res = run_search(SearchConfig(generations=5, population=24, metric="fidelity"), "runs/demo")
        >>> [round(s.mac_speedup, 2) for s in res.front]
    """
    config = config or SearchConfig()
    if overrides:
        config = config.replace(**overrides)
    if run_dir is None:
        run_dir = default_run_dir(config)
    runner = SearchRunner(config, run_dir, pipe=pipe, metric=metric, plugins=plugins, progress=progress,
                          log=log, quiet=quiet, backend=backend)
    return runner.run(resume=resume)


def default_run_dir(config: SearchConfig) -> Path:
    base = Path(config.base_model.rstrip("/")).name if config.base_model else "model"
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base) or "model"
    parts = [base]
    if config.height and config.width:
        parts.append(f"{config.height}x{config.width}")
    if config.num_inference_steps:
        parts.append(f"{config.num_inference_steps}steps")
    parts.append(config.metric or "default")
    parts.append(f"seed{config.seed}")
    return Path("runs") / "-".join(parts)
