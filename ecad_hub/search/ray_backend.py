"""Evaluating candidates on a Ray cluster: one actor per GPU (or per CPU slot), each holding the
loaded pipeline, the prompt embeddings and the metric.

``--ray auto`` connects to a running cluster (``ray start --head`` first), ``--ray local`` starts
one on this machine, anything else is a cluster address; if Ray is already initialised in
this process (e.g. ``ray.init(num_cpus=2)`` in a test or notebook) that session is used.

Actors build the same :class:`~ecad_hub.search.evaluate.Evaluator` as the in-process path, so
the objective values are identical given the same device, dtype and thread count (CPU actors
use ``num_threads`` threads, default 1). :class:`RayBackend` has the interface of
:class:`~ecad_hub.search.backends.Backend`.
"""

from __future__ import annotations

from typing import Callable

from ..errors import SearchError
from .genome import to_hex


class EvalActor:
    """A Ray actor: loads the pipeline once and evaluates schedules (given as genome hex strings)."""

    def __init__(self, spec: dict):
        import torch

        from ..metrics import import_plugins, load_metric
        from ..schedule import Architecture
        from .evaluate import Evaluator
        from .genome import Genome
        from .model import load_pipeline

        self.num_threads = spec.get("num_threads")
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        device = spec.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        import_plugins(spec.get("plugins"))
        pipe = load_pipeline(spec["base_model"], spec.get("revision"), dtype=spec["dtype"], device=device)
        metric = spec.get("metric")
        if metric is None:
            metric = load_metric(spec["metric_name"], spec.get("metric_kwargs"), spec.get("plugins"), device)
        else:
            try:
                metric.to(device)
            except Exception:  # noqa: BLE001 - a metric without device support stays where it is
                pass
        self.genome = Genome(Architecture.from_dict(spec["architecture"]), spec["steps"])
        self.evaluator = Evaluator(pipe, spec["settings"], spec["prompts"],
                                   images_per_prompt=spec["images_per_prompt"], image_seed=spec["image_seed"],
                                   metric=metric, batch_size=spec.get("batch_size"),
                                   latency_runs=spec.get("latency_runs", 1))

    def describe_metric(self) -> dict:
        return self.evaluator.metric.describe()

    def needs_reference(self) -> bool:
        return bool(getattr(self.evaluator.metric, "needs_reference", False))

    def num_images(self) -> int:
        return self.evaluator.num_images

    def make_reference(self):
        images, ms = self.evaluator.make_reference()
        return images.numpy(), ms

    def set_reference(self, images) -> bool:
        self.evaluator.set_reference(images)
        return True

    def evaluate(self, key: str, genome_hex: str, measure_latency: bool):
        schedule = self.genome.schedule(self.genome.from_hex(genome_hex))
        return key, self.evaluator.evaluate(schedule, measure_latency=measure_latency)


class RayBackend:
    """Dispatches candidates to a pool of :class:`EvalActor`; results come back keyed, in any order."""

    def __init__(self, address: str, spec: dict, *, num_actors: int | None = None, log: Callable[[str], None] = print):
        try:
            import ray
        except ImportError:
            raise SearchError("--ray needs the ray package: pip install 'ecad-hub[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                if address == "local":
                    ray.init(include_dashboard=False, log_to_driver=False)
                else:
                    ray.init(address=address, log_to_driver=False)
            except ConnectionError as err:
                raise SearchError(f"cannot connect to a Ray cluster at {address!r} ({err}); start one with "
                                  f"`ray start --head` or use --ray local") from None
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        threads = int(spec.get("num_threads") or 1)
        spec = dict(spec)
        if gpus:
            n = num_actors or gpus
            options = dict(num_gpus=1, num_cpus=min(threads, max(1, cpus // max(gpus, 1))))
            spec["device"] = spec.get("device") or "cuda"
        else:
            spec["num_threads"] = threads
            n = num_actors or max(1, cpus // threads)
            options = dict(num_cpus=threads)
            spec["device"] = "cpu"
        actor_cls = ray.remote(EvalActor).options(**options)
        self.actors = [actor_cls.remote(spec) for _ in range(n)]
        log(f"ray: {n} actor(s) ({'1 GPU' if gpus else f'{threads} CPU thread(s)'} each) on {address}")
        metric_desc, need_ref, num_images = ray.get([self.actors[0].describe_metric.remote(),
                                                     self.actors[0].needs_reference.remote(),
                                                     self.actors[0].num_images.remote()])
        ray.get([a.num_images.remote() for a in self.actors])  # wait until every actor is up
        self._metric_desc = metric_desc
        self._needs_ref = need_ref
        self.num_images = num_images

    def describe_metric(self) -> dict:
        return self._metric_desc

    def needs_reference(self) -> bool:
        return self._needs_ref

    def make_reference(self, progress=None):
        import torch

        images, ms = self.ray.get(self.actors[0].make_reference.remote())
        if progress is not None:
            progress(self.num_images)
        return torch.from_numpy(images.copy()), ms

    def set_reference(self, images) -> None:
        ref = self.ray.put(images.numpy() if hasattr(images, "numpy") else images)
        self.ray.get([a.set_reference.remote(ref) for a in self.actors])

    def evaluate(self, items, *, measure_latency: bool, on_result: Callable, on_images: Callable) -> None:
        ray = self.ray
        queue = [(key, x) for key, x in items]
        queue.reverse()
        free = list(self.actors)
        running = {}
        try:
            while queue or running:
                while queue and free:
                    key, x = queue.pop()
                    actor = free.pop()
                    running[actor.evaluate.remote(key, to_hex(x), measure_latency)] = actor
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    actor = running.pop(ref)
                    free.append(actor)
                    key, result = ray.get(ref)
                    on_images(self.num_images)
                    on_result(key, result)
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
