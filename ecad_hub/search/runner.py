"""The search loop: NSGA-II in ask/tell mode over schedule masks, in a resumable run directory.

:class:`SearchRunner` orchestrates one run: resolve the settings (:mod:`.context`), build the
evaluation backend (:mod:`.backends`), check or write the run directory (:mod:`.run_dir`), make
the all-compute reference, then per generation ask pymoo for candidates (:mod:`.operators`;
screened by :mod:`.surrogate`), evaluate those not cached, tell pymoo, and write the generation,
the front (:mod:`.front`) and the plot. :func:`run_search` is the entry point.

Resuming rebuilds the algorithm from the last completed generation's population: every
generation, interrupted or not, starts from that JSON record with a random generator seeded by
(seed, generation), so a resumed run writes exactly the generation files an uninterrupted run
writes. Evaluations finished before an interruption are reused from ``evaluations.json``.

A resume trusts nothing it reads (:meth:`SearchRunner._check_state`): each generation record is
checked, rebuilt from the evaluations and compared with the file, and replayed (pymoo only, no
evaluation);
``evaluations.json`` is a cache rebuilt from the records where entries are missing and refused
where it disagrees with them; the reference images must match the sha256 in ``reference.json``
(else they are generated again, and must then match it). Every refusal is one
:class:`~ecad_hub.errors.SearchError` line naming the file.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SearchError
from ..schedule import CacheSchedule
from .config import SEARCH_VERSION, SearchConfig
from .context import SearchContext, resolve_context
from .front import best_quality_at_speedup, front_hashes, front_schedules, plot_generations
from .pareto import hypervolume
from .run_dir import (EvaluationStore, RunDir, _short, check_generation_record, first_difference, images_sha256,
                      is_int, is_number, search_document)
from .seeding import initial_population, user_vectors


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


class Archive:
    """Every schedule the search evaluated, in order: content hashes, and the genome keys that
    archive-wide duplicate elimination checks offspring against (a live set: pymoo's duplicate
    elimination holds it and sees every addition)."""

    def __init__(self, context: SearchContext):
        self.genome = context.genome
        self.hashes: list[str] = []
        self.keys: set[bytes] = set()
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self.hashes)

    def __contains__(self, h: str) -> bool:
        return h in self._seen

    def add(self, candidates: list[dict]) -> None:
        """Add generation-record candidates (``hash`` and ``genome`` hex) not seen before."""
        for o in candidates:
            if o["hash"] not in self._seen:
                self._seen.add(o["hash"])
                self.hashes.append(o["hash"])
                self.keys.add(self.genome.key(self.genome.from_hex(o["genome"])))


class SearchRunner:
    """One search run in one directory. Use :func:`run_search`."""

    def __init__(self, config: SearchConfig, run_dir: str | os.PathLike, *, pipe=None, metric=None,
                 plugins: list[str] | None = None, progress: bool = True, log: Callable[[str], None] | None = None,
                 quiet: bool = False, backend=None):
        self.config = config
        self.run_dir = RunDir(run_dir)
        self.pipe = pipe
        self.metric = metric
        self.plugins = list(plugins or [])
        self.progress = progress
        self._print = log if log is not None else (lambda s: None) if quiet else print
        self._backend_override = backend
        self.evaluations = EvaluationStore(self.run_dir.evaluations_json)
        self.metric_calls = 0
        self._restored = 0  # cache entries a resume rebuilt from the generation records
        #: Set by :meth:`run`: the resolved settings, the pymoo problem, the evaluation backend.
        self.context: SearchContext | None = None
        self.problem = None
        self.backend = None
        self.archive: Archive | None = None
        #: Set by :meth:`_reference`: the all-compute schedule's quality and ms per image.
        self.all_compute_quality: float | None = None
        self.all_compute_ms: float | None = None

    # --- logging ----------------------------------------------------------------------------
    def log(self, message: str, *, echo: bool = True) -> None:
        self.run_dir.append_log(message)
        if echo:
            self._print(message)

    # --- setup ------------------------------------------------------------------------------
    def _make_backend(self):
        from ..metrics import load_metric
        from .backends import InProcessBackend
        from .evaluate import Evaluator, torch_threads
        from .model import load_pipeline

        cfg, ctx = self.config, self.context
        if self._backend_override is not None:
            return self._backend_override
        if cfg.ray:
            from .ray_backend import RayBackend

            spec = dict(
                base_model=cfg.base_model, revision=cfg.revision, dtype=cfg.dtype,
                settings=ctx.settings, prompts=list(ctx.prompt_set.prompts), images_per_prompt=cfg.images_per_prompt,
                image_seed=cfg.image_seed, metric_name=ctx.metric_name, metric_kwargs=cfg.metric_kwargs,
                metric=self.metric, plugins=self.plugins, batch_size=cfg.batch_size, latency_runs=cfg.latency_runs,
                num_threads=cfg.num_threads, architecture=ctx.architecture.to_dict(),
                steps=ctx.settings["num_inference_steps"], device=cfg.device,
            )
            return RayBackend(cfg.ray, spec, log=self.log)
        if self.pipe is None:
            self.log(f"loading {cfg.base_model} ...")
            self.pipe = load_pipeline(cfg.base_model, cfg.revision, dtype=cfg.dtype, device=ctx.device)
            self.pipe.set_progress_bar_config(disable=True)
        else:
            try:
                self.pipe.set_progress_bar_config(disable=True)
            except Exception:  # noqa: BLE001
                pass
        if self.metric is None:
            self.metric = load_metric(ctx.metric_name, cfg.metric_kwargs, self.plugins, ctx.device)
        with torch_threads(cfg.num_threads):
            evaluator = Evaluator(self.pipe, ctx.settings, ctx.prompt_set.prompts,
                                  images_per_prompt=cfg.images_per_prompt, image_seed=cfg.image_seed,
                                  metric=self.metric, batch_size=cfg.batch_size, latency_runs=cfg.latency_runs)
        return InProcessBackend(evaluator, ctx.genome, cfg.num_threads)

    # --- objectives -------------------------------------------------------------------------
    def cost_of(self, rec: dict) -> float:
        if self.config.cost == "latency":
            return rec["latency_ms_per_image"] / self.all_compute_ms
        return rec["mac_ratio"]

    def _record(self, x: np.ndarray, result: dict, gen: int, cand: int) -> dict:
        genome = self.context.genome
        ratio, total = self.context.mac_ratio(x)
        rec = {"genome": genome.to_hex(x), "mac_ratio": ratio, "macs": total, "quality": float(result["quality"])}
        if "latency_ms_per_image" in result:
            rec["latency_ms_per_image"] = float(result["latency_ms_per_image"])
        rec["generation"] = gen
        rec["candidate"] = cand
        return rec

    def _check_evaluation(self, h: str, rec) -> str | None:
        """What is wrong with an ``evaluations.json`` entry (``None``: nothing): the shape, the genome
        (valid, canonical, hashing to ``h``), the MACs (they follow from the genome and the profile),
        finite numbers."""
        genome = self.context.genome
        if not isinstance(rec, dict):
            return "not an object"
        want = {"genome", "mac_ratio", "macs", "quality", "generation", "candidate"}
        if self.config.cost == "latency":
            want.add("latency_ms_per_image")
        if set(rec) - (want | {"latency_ms_per_image"}) or want - set(rec):
            odd = sorted((set(rec) - want - {"latency_ms_per_image"}) | (want - set(rec)))
            return f"unexpected or missing key {odd[0]!r}"
        try:
            x = genome.from_hex(rec["genome"])
        except ValueError as err:
            return str(err)
        if not genome.is_canonical(x):
            return "genome has fixed bits cleared"
        if genome.hash_of(x) != h:
            return "genome does not hash to the key"
        ratio, total = self.context.mac_ratio(x)
        if not (type(rec["mac_ratio"]) is float and rec["mac_ratio"] == ratio and is_int(rec["macs"])
                and rec["macs"] == total):
            return "mac_ratio / macs do not follow from the genome and the MAC profile"
        for key in ("quality", "latency_ms_per_image"):
            if key in rec and not is_number(rec[key]):
                return f"{key} is not a finite number"
        if "latency_ms_per_image" in rec and not rec["latency_ms_per_image"] > 0:
            return "latency_ms_per_image is not positive"
        if not (is_int(rec["generation"]) and rec["generation"] >= 0 and is_int(rec["candidate"])
                and rec["candidate"] >= 0):
            return "generation / candidate are not non-negative integers"
        return None

    def _FG(self, hashes: list[str], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ev, genome = self.evaluations, self.context.genome
        F = np.array([[self.cost_of(ev[h]), -ev[h]["quality"]] for h in hashes], dtype=float)
        G = np.array([[1.0 - genome.reused_bits(x)] for x in X], dtype=float)
        return F, G

    # --- evaluation of a batch of candidates --------------------------------------------------
    def _evaluate_all(self, X: np.ndarray, gen: int, desc: str | None = None) -> list[str]:
        """Content hashes of the rows of ``X``, evaluating those not in the cache."""
        hashes = [self.context.genome.schedule(x).content_hash for x in X]
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
            self.evaluations.add(h, self._record(vectors[h], result, gen, position[h]))
            self.metric_calls += 1
            done[0] += 1
            if bar is not None:
                bar.set_postfix_str(f"{done[0]}/{len(todo)} candidates")
            self.evaluations.flush()

        try:
            self.backend.evaluate([(h, x) for h, x, _ in todo], measure_latency=self.config.cost == "latency",
                                  on_result=on_result, on_images=on_images)
        finally:
            if bar is not None:
                bar.close()
            self.evaluations.flush(force=True)
        return hashes

    # --- pymoo ------------------------------------------------------------------------------
    def _algorithm(self, sampling: np.ndarray):
        from .operators import make_algorithm

        return make_algorithm(self.problem, self.context.operators, self.config.population, sampling,
                              seed=self.config.seed, archive=self.archive.keys)

    def _tell(self, algo, pop, hashes: list[str]) -> None:
        from .operators import tell

        X = np.asarray(pop.get("X"), dtype=bool)
        F, G = self._FG(hashes, X)
        tell(algo, self.problem, pop, F, G)

    def _offspring(self, algo):
        """``algo.ask()``, or with screening: several asks, of which the surrogate picks ``population``."""
        cfg, ops, genome, ev = self.config, self.context.operators, self.context.genome, self.evaluations
        if ops.screening <= 1 or cfg.cost != "macs" or len(self.archive) < 2 * cfg.population:
            return algo.ask()
        from pymoo.core.population import Population

        from .surrogate import RidgeSurrogate, screen

        pools, seen = [], set()
        for _ in range(ops.screening):
            part = algo.ask()
            if part is None:
                continue
            for ind in part:
                key = genome.key(np.asarray(ind.X, dtype=bool))
                if key not in seen:
                    seen.add(key)
                    pools.append(ind)
        if not pools:
            return None
        pool = Population.create(*pools)
        X = np.asarray(pool.get("X"), dtype=bool)
        archive = self.archive.hashes
        AX = np.array([genome.from_hex(ev[h]["genome"]) for h in archive], dtype=bool)
        quality = [ev[h]["quality"] for h in archive]
        predicted = RidgeSurrogate(genome).fit(AX, quality).predict(X)
        cost = np.array([self.context.mac_ratio(x)[0] for x in X])
        front = [(self.cost_of(ev[h]), ev[h]["quality"]) for h in self._front(archive)]
        worst = min(quality)
        picks = screen(cost, predicted, front, cfg.population, algo.random_state, ref_quality=worst,
                       explore=ops.screening_explore)
        return pool[picks]

    # --- generation records -----------------------------------------------------------------
    def _front(self, hashes: list[str]) -> list[str]:
        return front_hashes(hashes, self.evaluations, self.cost_of, self.context.genome)

    def _population_record(self, algo) -> list[dict]:
        X = np.asarray(algo.pop.get("X"), dtype=bool)
        return self._population_entries([self.context.genome.schedule(x).content_hash for x in X])

    def _population_entries(self, hashes: list[str]) -> list[dict]:
        out = []
        for h in hashes:
            rec = self.evaluations[h]
            out.append({"hash": h, "genome": rec["genome"], "mac_ratio": rec["mac_ratio"], "quality": rec["quality"]})
        return out

    def _offspring_records(self, hashes: list[str], X: np.ndarray, labels: list[str] | None = None) -> list[dict]:
        out = []
        for i, (h, x) in enumerate(zip(hashes, X)):
            rec = self.evaluations[h]
            r = {"candidate": i, "hash": h, "genome": rec["genome"], "mac_ratio": rec["mac_ratio"], "macs": rec["macs"],
                 "quality": rec["quality"], "cost": self.cost_of(rec),
                 "feasible": self.context.genome.reused_bits(x) > 0}
            if "latency_ms_per_image" in rec:
                r["latency_ms_per_image"] = rec["latency_ms_per_image"]
            if labels is not None:
                r["init"] = labels[i]
            out.append(r)
        return out

    def _generation_record(self, k: int, offspring: list[dict], population: list[dict], hv_ref: dict) -> dict:
        """The record of generation ``k`` (the archive holds its offspring)."""
        ev = self.evaluations
        front = self._front(self.archive.hashes)
        hv = hypervolume([self.cost_of(ev[h]) for h in front], [ev[h]["quality"] for h in front],
                         hv_ref["cost"], hv_ref["quality"])
        return {
            "ecad_search_version": SEARCH_VERSION,
            "generation": k,
            "seed": self.config.seed,
            "num_evaluations": len(self.archive),
            "offspring": offspring,
            "population": population,
            "front": front,
            "hypervolume": hv,
            "hv_reference": hv_ref,
            "best_quality_at_speedup": best_quality_at_speedup(front, ev, self.cost_of),
        }

    def _write_generation(self, k: int, offspring: list[dict], algo, hv_ref: dict) -> dict:
        record = self._generation_record(k, offspring, self._population_record(algo), hv_ref)
        return self.run_dir.write_generation(record)  # exactly what a resumed run reads back

    def _hv_reference(self, offspring0: list[dict]) -> dict:
        """The hypervolume reference point: cost 1, the worst feasible quality of generation 0."""
        quals = [o["quality"] for o in offspring0 if o["feasible"]] or [self.all_compute_quality]
        return {"cost": 1.0, "quality": float(min(quals))}

    # --- outputs ----------------------------------------------------------------------------
    def _write_front(self, front: list[str]) -> list[CacheSchedule]:
        schedules = front_schedules(self.context, front, self.evaluations, all_compute_quality=self.all_compute_quality,
                                    all_compute_ms=self.all_compute_ms, num_images=self.backend.num_images,
                                    run_name=self.run_dir.name)
        self.run_dir.write_front(schedules)
        return schedules

    def _plot(self, records: list[dict]) -> None:
        try:
            plot_generations(self.run_dir.plot_path, self.context, records, self.evaluations, self.cost_of,
                             self.all_compute_quality)
        except Exception as err:  # noqa: BLE001 - a plot never stops a search
            self.log(f"warning: frontier.png not written ({type(err).__name__}: {err})")

    def _summary_line(self, record: dict, new: int, seconds: float) -> str:
        best = record["best_quality_at_speedup"]
        parts = " | ".join(f">={k} {v:.4g}" if v is not None else f">={k} -" for k, v in best.items())
        total = self.config.generations
        return (f"gen {record['generation']}/{total - 1}: {new} new evaluations ({record['num_evaluations']} total), "
                f"front {len(record['front'])}, HV {record['hypervolume']:.4g}, best {self.context.metric_name} at "
                f"speedup {parts}  [{seconds:.1f} s]")

    # --- reference --------------------------------------------------------------------------
    def _reference(self, depends: bool = False) -> None:
        """All-compute images (if the metric compares against them) and the all-compute evaluation.
        ``depends``: qualities measured against stored images exist (records or cached evaluations)."""
        self.all_compute_ms = None
        if self.backend.needs_reference():
            images, self.all_compute_ms = self._reference_images(depends)
            self.backend.set_reference(images)
        ac = self.context.genome.all_compute()
        h = self.context.genome.schedule(ac).content_hash
        if h not in self.evaluations:
            self._evaluate_all(ac[None], gen=0, desc="all-compute")
        rec = self.evaluations[h]
        self.all_compute_quality = rec["quality"]
        if self.config.cost == "latency":
            if "latency_ms_per_image" in rec:
                self.all_compute_ms = rec["latency_ms_per_image"]
            if not self.all_compute_ms:
                raise SearchError("cost=latency needs the all-compute latency; delete the run directory and restart")

    def _reference_images(self, depends: bool):
        """``(images, ms per image)``: the stored reference images if they match the sha256 that
        ``reference.json`` records, else generated (again). Images generated again replace stored
        ones only if nothing was measured against those yet, or if they are identical to them
        (same sha256): a search's qualities are only comparable against one set of images."""
        rd, n = self.run_dir, self.backend.num_images
        meta, meta_problem = rd.read_reference_meta() if depends else (None, None)
        stored, stored_problem = rd.read_reference_images(n) if depends else (None, None)
        recorded = meta.get("images_sha256") if meta else None
        recorded_ms = meta.get("all_compute_ms_per_image") if meta else None
        if stored is not None:
            sha = images_sha256(stored)
            if recorded is not None and sha == recorded:
                return stored, recorded_ms
            if recorded is not None:
                stored_problem = (f"{rd.reference_images}: does not match the sha256 in reference.json "
                                  f"(replaced or damaged)")
        if not depends:
            self.log(f"generating {n} all-compute reference images ...")
            images, ms = self.backend.make_reference()
            rd.write_reference(images, ms)
            return images, ms
        # qualities were measured against images we cannot trust: generate them again and use
        # them only if they are the recorded ones
        # (a reference.json without images_sha256, as written before it was recorded: the stored
        # images are checked against new ones)
        if meta is not None and recorded is None:
            meta_problem = f"{rd.reference_json}: records no images_sha256"
        target = recorded if recorded is not None else (images_sha256(stored) if stored is not None else None)
        problem = stored_problem if recorded is not None or stored is None else meta_problem
        if target is None:
            why = (meta_problem or "").split(": ", 1)[-1]
            raise SearchError(f"{stored_problem}, and {rd.reference_json.name} cannot tell what they were ({why}): "
                              f"new reference images cannot be checked against the ones the recorded qualities were "
                              f"measured against; restore the files or start a new run", path=str(rd.reference_images))
        self.log(f"{problem}; generating the {n} all-compute reference images again ...")
        images, ms = self.backend.make_reference()
        if images_sha256(images) != target:
            against = "the sha256 recorded in reference.json" if recorded is not None else rd.reference_images.name
            raise SearchError(f"{problem}; the reference images generated again differ from {against}, and the "
                              f"recorded qualities were measured against the originals; restore the files or start "
                              f"a new run", path=str(rd.reference_images))
        rd.write_reference(images, recorded_ms if recorded_ms is not None else ms)
        self.log("reference images generated again: identical to the originals, using them")
        return images, recorded_ms if recorded_ms is not None else ms

    # --- checking a run directory before resuming it ------------------------------------------
    def _check_state(self, raw: list) -> list[dict]:
        """Check the generation records (parsed JSON) against each other and against
        ``evaluations.json`` (rebuilding missing cache entries from them), make the reference, and
        return the records: rebuilt from the evaluations, equal to what the files hold, and
        replayed (each generation's offspring and population follow from the previous one). Refusals are one :class:`SearchError` line naming the file."""
        cfg, genome, rd = self.config, self.context.genome, self.run_dir
        for k, doc in enumerate(raw):
            check_generation_record(rd.generation_path(k), doc, k, seed=cfg.seed, genome=genome)
        self._restore_evaluations(raw)
        self._reference(depends=bool(raw) or len(self.evaluations) > 0)
        records: list[dict] = []
        hv_ref = None
        # the seeded population generation 0 came from (its offspring and init labels follow from it)
        seeded = self._initial_population(lambda message: None) if raw else None
        for k, doc in enumerate(raw):
            path = rd.generation_path(k)
            hashes = [o["hash"] for o in doc["offspring"]]
            X = np.array([genome.from_hex(o["genome"]) for o in doc["offspring"]], dtype=bool)
            self._replay(k, raw, hashes, X, path, seeded[0])
            self.archive.add(doc["offspring"])
            in_archive = set(self.archive.hashes)
            pop = [p["hash"] for p in doc["population"]]
            missing = [h for h in pop if h not in in_archive]
            if missing:
                raise SearchError(f"{path}: population member {missing[0][:12]} was never an offspring; cannot resume",
                                  path=str(path))
            labels = None
            if k == 0:  # the origin labels follow from the seed too: never taken from the file being checked
                labels = self._initial_labels(*seeded, X)
            offspring = self._offspring_records(hashes, X, labels)
            if k == 0:
                hv_ref = self._hv_reference(offspring)
            expected = json.loads(json.dumps(self._generation_record(k, offspring, self._population_entries(pop),
                                                                     hv_ref)))
            diff = first_difference(doc, expected)
            if diff:
                where, got, want = diff
                raise SearchError(f"{path}: {where} is {_short(got)}, but the run's evaluations give {_short(want)} "
                                  f"(edited or damaged); cannot resume", path=str(path))
            records.append(expected)
        if self._restored:
            self.evaluations.mark_dirty()
            self.log(f"rebuilt {self._restored} evaluation(s) missing from {self.evaluations.path.name} from the "
                     f"generation records")
        dropped = self.evaluations.drop_unverified(o["hash"] for doc in raw for o in doc["offspring"])
        if dropped:
            self.log(f"dropped {dropped} cached evaluation(s) of {self.evaluations.path.name} that no generation "
                     f"record confirms and whose checksum does not hold; they are evaluated again")
        return records

    def _check_provenance(self, k: int, offspring: list[dict]) -> None:
        """Refuse cached evaluations (of an interrupted generation ``k``) whose recorded generation
        and candidate are not where this generation evaluates them (they name the front's schedules)."""
        genome, ev = self.context.genome, self.evaluations
        ac = genome.schedule(genome.all_compute()).content_hash
        for o in offspring:
            h = o["hash"]
            if h in self.archive:
                continue
            want = (0, 0) if h == ac else (k, o["candidate"])
            got = (ev[h].get("generation"), ev[h].get("candidate"))
            if got != want:
                raise SearchError(f"{ev.path}: {h[:12]} is recorded as candidate {got[1]} of generation {got[0]}, but "
                                  f"it is candidate {want[1]} of generation {want[0]} (edited or damaged); delete it "
                                  f"to rebuild the cache", path=str(ev.path))

    def _replay(self, k: int, raw: list, hashes: list[str], X: np.ndarray, path: Path, X0: np.ndarray) -> None:
        """Run generation ``k`` again without evaluating (the archive holds generations < ``k``) and
        refuse if its offspring or surviving population differ from the record (``X0``: the seeded
        initial population, see :meth:`_initial_population`)."""
        cfg, genome = self.config, self.context.genome

        def refuse(what: str) -> SearchError:
            return SearchError(f"{path}: {what} (edited or damaged); cannot resume", path=str(path))

        def expect(got: list[str]) -> None:
            if got != hashes:
                raise refuse(f"the offspring are not those generation {k - 1}'s population gives")

        if k == 0:  # what generation 0 asks for from the seeded population, as _generation_zero does
            algo = self._algorithm(X0)
            algo.random_state = np.random.default_rng([cfg.seed, 0, 1])
            pop = algo.ask()
            expect([genome.schedule(x).content_hash for x in np.asarray(pop.get("X"), dtype=bool)])
            self._tell(algo, pop, hashes)
        else:
            made = self._generation(k, raw[k - 1], expect=expect)
            algo = made[1]
        got = [genome.schedule(x).content_hash for x in np.asarray(algo.pop.get("X"), dtype=bool)]
        if got != [p["hash"] for p in raw[k]["population"]]:
            raise refuse("population is not the one NSGA-II selects from these candidates")

    def _restore_evaluations(self, raw: list) -> None:
        """Rebuild ``evaluations.json`` entries of recorded candidates that are missing (from the
        records: exactly what was evaluated), and refuse entries that disagree with a record."""
        genome, ev = self.context.genome, self.evaluations
        ac = genome.schedule(genome.all_compute()).content_hash
        first: dict[str, tuple[int, int]] = {}
        restored = 0
        for k, doc in enumerate(raw):
            path = self.run_dir.generation_path(k)
            for i, o in enumerate(doc["offspring"]):
                h = o["hash"]
                origin = first.setdefault(h, (0, 0) if h == ac else (k, i))
                rec = {key: o[key] for key in ("genome", "mac_ratio", "macs", "quality", "latency_ms_per_image")
                       if key in o}
                rec.update(generation=origin[0], candidate=origin[1])
                problem = self._check_evaluation(h, rec)
                if problem:
                    raise SearchError(f"{path}: offspring[{i}]: {problem}; cannot resume", path=str(path))
                if h not in ev:
                    ev.add(h, rec, dirty=False)  # written once the whole directory has been checked
                    restored += 1
                    continue
                diff = first_difference(ev[h], rec)
                if diff:
                    key, there, here = diff
                    raise SearchError(
                        f"{ev.path}: {key} of {h[:12]} is {_short(there)}, but generations/{path.name} records "
                        f"{_short(here)}: one of the two was edited or damaged; cannot resume", path=str(ev.path))
            for i, p in enumerate(doc["population"]):
                h = p["hash"]
                if h in ev:
                    diff = first_difference({key: ev[h].get(key, "<missing>") for key in p if key != "hash"},
                                            {key: v for key, v in p.items() if key != "hash"})
                    if diff:
                        key, there, here = diff
                        raise SearchError(
                            f"{path}: population[{i}].{key} of {h[:12]} is {_short(here)}, but evaluations.json "
                            f"holds {_short(there)}: one of the two was edited or damaged; cannot resume",
                            path=str(path))
        self._restored = restored

    # --- main -------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> SearchResult:
        try:
            import pymoo  # noqa: F401
        except ImportError:
            raise SearchError("the search needs pymoo: pip install 'ecad-hub[search]'") from None
        from .operators import MaskProblem

        self.context = resolve_context(self.config, pipe=self.pipe, metric=self.metric)
        path = self.run_dir.path
        if path.exists() and not resume and self.run_dir.holds_search():
            raise SearchError(f"{path} already holds a search; pass --resume to continue it or choose another --out")
        if resume and not self.run_dir.holds_search():
            raise SearchError(f"--resume: {path} holds no search.json (nothing to resume)")
        self.run_dir.create()
        self.problem = MaskProblem(self.context.genome)
        self.archive = Archive(self.context)
        self.backend = self._make_backend()
        try:
            try:
                return self._run(resume)
            except KeyboardInterrupt:
                self.evaluations.flush(force=True)
                self.log("interrupted; state saved. Continue with --resume")
                raise
            finally:
                try:
                    self.evaluations.flush(force=True)
                finally:
                    if self.backend is not None:
                        self.backend.close()
        except OSError as err:  # a file of the run directory cannot be read or written (a folder in its place, ...)
            from ..utils.io import os_error_message

            raise SearchError(os_error_message(err, action="failed"),
                              path=str(path)) from None

    def _generation_zero(self):
        """Evaluate the initial population; returns (offspring records, algorithm)."""
        X0, labels0 = self._initial_population(self.log)
        algo = self._algorithm(X0)
        algo.random_state = np.random.default_rng([self.config.seed, 0, 1])
        pop = algo.ask()
        X = np.asarray(pop.get("X"), dtype=bool)
        labels = self._initial_labels(X0, labels0, X)
        hashes = self._evaluate_all(X, gen=0)
        self._tell(algo, pop, hashes)
        return self._offspring_records(hashes, X, labels), algo

    def _initial_population(self, log) -> tuple[np.ndarray, list[str]]:
        """The seeded initial population and the origin label of each row (deterministic per seed)."""
        cfg, genome = self.config, self.context.genome
        user = user_vectors(genome, cfg.init_schedules, log)
        return initial_population(genome, cfg.population, np.random.default_rng([cfg.seed, 0]),
                                  mode=self.context.operators.initial_population, user=user)

    def _initial_labels(self, X0: np.ndarray, labels0: list[str], X: np.ndarray) -> list[str]:
        """The ``init`` label of each generation-0 candidate ``X`` (``random`` for rows not seeded)."""
        genome = self.context.genome
        label_of = {genome.key(x): lab for x, lab in zip(X0, labels0)}
        return [label_of.get(genome.key(x), "random") for x in X]

    def _generation(self, k: int, previous: dict, expect: Callable[[list[str]], None] | None = None):
        """Rebuild the algorithm from the previous generation's population, ask for offspring and
        evaluate them; returns (offspring records, algorithm), or ``None`` if none could be made.
        ``expect`` (a replay) is called with the offspring's hashes before anything is evaluated."""
        cfg, genome = self.config, self.context.genome
        PX = np.array([genome.from_hex(p["genome"]) for p in previous["population"]], dtype=bool)
        algo = self._algorithm(PX)
        algo.random_state = np.random.default_rng([cfg.seed, k, 0])
        pop = algo.ask()
        PX2 = np.asarray(pop.get("X"), dtype=bool)
        self._tell(algo, pop, [genome.schedule(x).content_hash for x in PX2])
        algo.random_state = np.random.default_rng([cfg.seed, k, 1])
        off = self._offspring(algo)
        if off is None or len(off) == 0:
            if expect is not None:
                expect([])
            return None
        X = np.asarray(off.get("X"), dtype=bool)
        if expect is not None:
            expect([genome.schedule(x).content_hash for x in X])
        hashes = self._evaluate_all(X, gen=k)
        self._tell(algo, off, hashes)
        return self._offspring_records(hashes, X), algo

    def _run(self, resume: bool) -> SearchResult:
        cfg, ctx = self.config, self.context
        doc = search_document(ctx, self.backend.describe_metric())
        self.run_dir.check_or_write_search_json(doc, resume)
        raw = self.run_dir.read_generations()
        self.evaluations.load(check=self._check_evaluation)
        self.run_dir.generations_dir.mkdir(exist_ok=True)
        self.run_dir.write_mac_profile(ctx.profile.to_dict())
        if resume:
            self.log(f"resuming {self.run_dir.path}: {len(raw)} generation(s) done, "
                     f"{len(self.evaluations)} evaluation(s) cached")
        else:
            self.log(f"search {cfg.base_model} {ctx.settings['height']}x{ctx.settings['width']}, "
                     f"{ctx.settings['num_inference_steps']} steps, metric {ctx.metric_name}, "
                     f"{len(ctx.prompt_set)} prompt(s) x {cfg.images_per_prompt}, population {cfg.population}, "
                     f"{cfg.generations} generation(s), strategy {cfg.strategy} -> {self.run_dir.path}")
        records = self._check_state(raw)  # also makes the reference; the archive holds every record's offspring
        hv_ref = records[0]["hv_reference"] if records else None
        front_schedules_: list[CacheSchedule] = []

        for k in range(len(records), cfg.generations):
            t0 = time.time()
            before = self.metric_calls
            if k == 0:
                offspring, algo = self._generation_zero()
                hv_ref = self._hv_reference(offspring)
            else:
                made = self._generation(k, records[-1])
                if made is None:
                    self.log(f"gen {k}: the operators produced no new candidate; stopping")
                    break
                offspring, algo = made
            self._check_provenance(k, offspring)
            self.archive.add(offspring)
            self.evaluations.flush(force=True)
            record = self._write_generation(k, offspring, algo, hv_ref)
            records.append(record)
            front_schedules_ = self._write_front(record["front"])
            self._plot(records)
            self.log(self._summary_line(record, self.metric_calls - before, time.time() - t0))

        if records and not front_schedules_:
            front_schedules_ = self._write_front(records[-1]["front"])
        last = records[-1] if records else None
        return SearchResult(
            run_dir=self.run_dir.path, front=front_schedules_, generation=last["generation"] if last else -1,
            num_evaluations=last["num_evaluations"] if last else 0, hypervolume=last["hypervolume"] if last else 0.0,
            metric_calls=self.metric_calls, records=records,
        )


def run_search(config: SearchConfig | None = None, run_dir: str | os.PathLike | None = None, *, pipe=None,
               metric=None, plugins: list[str] | None = None, resume: bool = False, progress: bool = True,
               log: Callable[[str], None] | None = None, quiet: bool = False, backend=None,
               **overrides) -> SearchResult:
    """Search a Pareto frontier of caching schedules; see :class:`SearchConfig` for the settings.

    Args:
        config: the search settings (``SearchConfig()``: the embedded model, ecad-hub's defaults);
            keyword ``overrides`` replace fields of it (``strategy="paper"``: the paper's operators,
            except those ``config`` sets explicitly).
        run_dir: the run directory (default ``runs/<model>-<H>x<W>-<steps>steps-<metric>-seed<S>``).
        pipe: an already loaded pipeline to search on (``config.base_model`` is then only recorded).
        metric: a :class:`~ecad_hub.metrics.QualityMetric` instance instead of ``config.metric``.
        plugins: modules to import first (they may call ``register_metric``).
        resume: continue the search in ``run_dir`` (refused if it is a different search).
        progress: show a tqdm bar per generation.
        log: called with each log line (default ``print``; ``quiet=True`` prints nothing).
        backend: an evaluation backend object to use instead of building one (advanced: the
            search benchmark shares one cached evaluator between runs; see
            :class:`~ecad_hub.search.backends.Backend` for the interface).

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
