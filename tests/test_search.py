"""``run_search`` on a tiny random PixArt pipeline: the run-directory contract, caching, the front."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecad_hub import CacheSchedule
from ecad_hub.errors import SearchError
from ecad_hub.metrics.fidelity import FidelityMetric
from ecad_hub.search import SearchConfig, run_search
from ecad_hub.search.genome import Genome
from ecad_hub.search.pareto import hypervolume, nondominated
from ecad_hub.search.seeding import heuristic_schedules, initial_population

from tiny_models import SEARCH_PROMPTS as PROMPTS


#: classes a search test runs on (README support table)
SEARCH_TESTED = ("PixArtTransformer2DModel",)

class CountingFidelity(FidelityMetric):
    """Fidelity that counts its calls (one call = one schedule evaluated)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def score(self, images, prompts, reference_images=None):
        self.calls += 1
        return super().score(images, prompts, reference_images)


def config(tiny_dir: Path, **kw) -> SearchConfig:
    base = dict(base_model=str(tiny_dir), num_inference_steps=4, metric="fidelity",
                metric_kwargs={"max_psnr": 200.0}, prompts=str(tiny_dir.parent / "prompts.txt"),
                max_sequence_length=16, population=6, generations=3, num_threads=1, seed=0)
    base.update(kw)
    return SearchConfig(**base)


@pytest.fixture(scope="module")
def finished(tiny_dir, tmp_path_factory):
    """One search: 3 generations of 6 (module scope: the tests below inspect it)."""
    run = tmp_path_factory.mktemp("search") / "run"
    metric = CountingFidelity(max_psnr=200.0)
    result = run_search(config(tiny_dir), run, metric=metric, progress=False, quiet=True)
    return run, result, metric


def test_run_directory_contract(finished):
    run, result, _ = finished
    for name in ("search.json", "evaluations.json", "frontier.png", "log.txt", "mac_profile.json",
                 "reference_images.safetensors"):
        assert (run / name).is_file(), name
    doc = json.loads((run / "search.json").read_text())
    for key in ("ecad_search_version", "base_model", "revision", "pipeline_class", "architecture", "height", "width",
                "num_inference_steps", "guidance_scale", "metric", "prompt_set", "population", "generations", "seed",
                "cost", "operators", "ecad_hub_version"):
        assert key in doc, key
    assert doc["pipeline_class"] == "PixArtAlphaPipeline" and (doc["height"], doc["width"]) == (64, 64)
    assert doc["metric"]["name"] == "fidelity"
    ps = doc["prompt_set"]
    assert ps["name"] == "prompts.txt" and ps["num_prompts"] == 2 and ps["images_per_prompt"] == 1
    import hashlib

    assert ps["sha256"] == hashlib.sha256(json.dumps(PROMPTS, separators=(",", ":")).encode()).hexdigest()
    assert doc["operators"]["crossover"] == {"type": "PointCrossover", "n_points": 4, "prob": 0.9}
    gens = sorted((run / "generations").glob("gen_*.json"))
    assert [g.name for g in gens] == ["gen_0000.json", "gen_0001.json", "gen_0002.json"]
    g0 = json.loads(gens[0].read_text())
    assert g0["generation"] == 0 and len(g0["offspring"]) == 6 and g0["offspring"][0]["init"] == "all-compute"
    for g in gens:
        rec = json.loads(g.read_text())
        for o in rec["offspring"]:
            assert {"hash", "genome", "mac_ratio", "macs", "quality", "cost"} <= set(o)
    assert result.generation == 2 and result.front
    log = (run / "log.txt").read_text()
    assert log.count(" front ") == 3 and "HV" in log


def test_front_files_validate_and_carry_metrics(finished):
    from ecad_hub import cli

    run, result, _ = finished
    files = sorted((run / "front").glob("*.json"))
    assert len(files) == len(result.front) >= 1
    assert cli.main(["validate", "-q", str(run / "front")]) == 0
    s = CacheSchedule.load(files[0])
    q = s.metrics["quality"][0]
    assert q["metric"] == "fidelity" and q["all_compute_value"] == 200.0 and q["num_images"] == 2
    assert q["prompt_set"] == "prompts.txt" and len(q["prompt_set_sha256"]) == 64
    assert set(s.provenance) == {"ecad_hub_version", "search_run", "generation", "candidate"}
    assert s.generation["pipeline_class"] == "PixArtAlphaPipeline" and s.generation["height"] == 64


def test_no_schedule_is_evaluated_twice(finished):
    run, result, metric = finished
    evaluations = json.loads((run / "evaluations.json").read_text())["evaluations"]
    assert metric.calls == len(evaluations) == result.metric_calls
    hashes = [o["hash"] for g in sorted((run / "generations").glob("gen_*.json"))
              for o in json.loads(g.read_text())["offspring"]]
    assert len(set(hashes)) == len(hashes)  # archive-wide duplicate elimination: every candidate is new
    assert set(hashes) <= set(evaluations)


def test_front_is_nondominated_and_mac_ratios_match_the_profile(finished, tiny_dir):
    from diffusers import DiffusionPipeline

    from ecad_hub.macs import profile_macs

    run, result, _ = finished
    transformer = DiffusionPipeline.from_pretrained(str(tiny_dir)).transformer
    profile = profile_macs(transformer, 64, 64, batch_size=2, text_len=16, vae_scale_factor=8)
    evaluations = json.loads((run / "evaluations.json").read_text())["evaluations"]
    for s in result.front:
        rec = evaluations[s.content_hash]
        assert rec["mac_ratio"] == pytest.approx(profile.ratio(s), rel=1e-12)
        assert rec["macs"] == profile.total_macs(s) == s.metrics["macs"]["total"]
        assert s.quality("fidelity") == rec["quality"]
    # no evaluated feasible schedule dominates a front member
    pts = [(r["mac_ratio"], r["quality"]) for r in evaluations.values()]
    for s in result.front:
        c, q = evaluations[s.content_hash]["mac_ratio"], s.quality()
        assert not any(c2 <= c and q2 >= q and (c2 < c or q2 > q) for c2, q2 in pts if c2 < 1.0)
    last = json.loads((run / "generations" / "gen_0002.json").read_text())
    assert last["front"] == [s.content_hash for s in result.front]
    assert last["hypervolume"] > 0


def test_frontier_loads_the_run(finished):
    from ecad_hub import Frontier

    run, result, _ = finished
    frontier = Frontier.load(run)
    assert len(frontier) == len(result.front)
    assert {s.content_hash for s in frontier.schedules} == {s.content_hash for s in result.front}
    # front/<name>.json is named as the export names it (one naming function)
    exported = {s.content_hash: s.name for s in frontier.schedules}
    assert {s.content_hash: s.name for s in result.front} == exported
    assert sorted(p.stem for p in (run / "front").glob("*.json")) == sorted(exported.values())


def test_a_paper_strategy_override_gets_and_records_the_papers_operators(tiny_dir, tmp_path):
    """``run_search(config, strategy="paper")``: the paper's operators, not the ecad defaults of ``config``."""
    res = run_search(config(tiny_dir, population=4, generations=2), tmp_path / "paper", strategy="paper",
                     progress=False, quiet=True)
    assert res.generation == 1
    ops = json.loads((tmp_path / "paper" / "search.json").read_text())["operators"]
    assert ops["strategy"] == "paper"
    assert (ops["structured_mutation"], ops["eliminate_duplicates"], ops["screening"], ops["initial_population"]) == \
        (0.0, True, None, "random")  # screening factor 1 (off) is recorded as null
    g0 = json.loads((tmp_path / "paper" / "generations" / "gen_0000.json").read_text())
    assert {o["init"] for o in g0["offspring"]} == {"random"}  # no all-compute, no heuristics
    # a field set explicitly wins over the strategy
    run_search(config(tiny_dir, population=4, generations=1, initial_population="structured", screening=2),
               tmp_path / "mixed", strategy="paper", progress=False, quiet=True)
    ops = json.loads((tmp_path / "mixed" / "search.json").read_text())["operators"]
    assert (ops["structured_mutation"], ops["eliminate_duplicates"], ops["screening"], ops["initial_population"]) == \
        (0.0, True, {"factor": 2, "explore": 0.25}, "structured")
    g0 = json.loads((tmp_path / "mixed" / "generations" / "gen_0000.json").read_text())
    assert g0["offspring"][0]["init"] == "all-compute"


def test_resume_of_a_finished_run_evaluates_nothing_and_can_extend(finished, tiny_dir, tmp_path):
    import shutil

    run, _, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    metric = CountingFidelity(max_psnr=200.0)
    again = run_search(config(tiny_dir), copy, metric=metric, resume=True, progress=False, quiet=True)
    assert metric.calls == 0 and again.generation == 2
    more = run_search(config(tiny_dir, generations=4), copy, metric=metric, resume=True, progress=False, quiet=True)
    assert more.generation == 3 and metric.calls == 6
    assert json.loads((copy / "search.json").read_text())["generations"] == 4


def test_refuses_to_resume_a_different_search(finished, tiny_dir):
    run, _, _ = finished
    with pytest.raises(SearchError, match=r"different search \(seed: 0 there, 1 here\)"):
        run_search(config(tiny_dir, seed=1), run, resume=True, progress=False, quiet=True)
    with pytest.raises(SearchError, match="already holds a search"):
        run_search(config(tiny_dir), run, progress=False, quiet=True)


def test_init_schedules_from_a_run_join_the_initial_population(finished, tiny_dir, tmp_path):
    run, result, _ = finished
    res = run_search(config(tiny_dir, generations=1, init_schedules=[str(run)]), tmp_path / "seeded",
                     progress=False, quiet=True)
    g0 = json.loads((tmp_path / "seeded" / "generations" / "gen_0000.json").read_text())
    labels = [o["init"] for o in g0["offspring"]]
    assert labels[0] == "all-compute" and labels[1].startswith("user-")
    assert g0["offspring"][1]["hash"] in {s.content_hash for s in result.front}
    assert res.generation == 0


# --------------------------------------------------------------------------------------------
# pure functions (no model)
# --------------------------------------------------------------------------------------------

PAPER_OPERATORS = {"structured_mutation": 0.0, "eliminate_duplicates": True, "screening": 1,
                   "initial_population": "random"}
ECAD_OPERATORS = {"structured_mutation": 0.5, "eliminate_duplicates": "archive", "screening": 4,
                  "initial_population": "structured"}


def _operator_fields(cfg: SearchConfig) -> dict:
    ops = cfg.operator_settings()
    return {k: getattr(ops, k) for k in PAPER_OPERATORS}


def test_strategy_defaults_follow_the_strategy_and_explicit_fields_win():
    assert _operator_fields(SearchConfig()) == ECAD_OPERATORS
    for cfg in (SearchConfig.paper(), SearchConfig(strategy="paper"), SearchConfig().replace(strategy="paper"),
                SearchConfig.paper().replace(strategy="ecad").replace(strategy="paper")):
        assert _operator_fields(cfg) == PAPER_OPERATORS, cfg
    assert _operator_fields(SearchConfig.paper().replace(strategy="ecad")) == ECAD_OPERATORS
    # unset fields stay unset in the config (so a later replace(strategy=...) still resolves them)
    cfg = SearchConfig().replace(strategy="paper")
    assert (cfg.structured_mutation, cfg.eliminate_duplicates, cfg.screening, cfg.initial_population) == (None,) * 4
    # explicitly set fields win over either strategy, also across replace(strategy=...)
    explicit = {"structured_mutation": 0.25, "eliminate_duplicates": False, "screening": 2,
                "initial_population": "structured"}
    for cfg in (SearchConfig(**explicit), SearchConfig(**explicit).replace(strategy="paper"),
                SearchConfig.paper(**explicit), SearchConfig.paper(**explicit).replace(strategy="ecad")):
        assert _operator_fields(cfg) == explicit, cfg
    mixed = SearchConfig(screening=3).replace(strategy="paper")
    assert _operator_fields(mixed) == dict(PAPER_OPERATORS, screening=3)
    # what search.json records and to_dict() report: the resolved values
    ops = SearchConfig().replace(strategy="paper").operators()
    assert (ops["strategy"], ops["structured_mutation"], ops["eliminate_duplicates"], ops["screening"],
            ops["initial_population"]) == ("paper", 0.0, True, None, "random")
    assert {k: SearchConfig.paper().to_dict()[k] for k in PAPER_OPERATORS} == PAPER_OPERATORS
    with pytest.raises(SearchError, match="screening must be >= 1"):
        SearchConfig(screening=0)
    with pytest.raises(SearchError, match="eliminate_duplicates"):
        SearchConfig(eliminate_duplicates="sometimes")


def test_recorded_operators_are_unchanged():
    """``search.json``'s ``operators`` of the default search, as runs made before recorded them
    (resume compares it: a change here makes every existing run directory "a different search")."""
    assert SearchConfig().operators() == {
        "strategy": "ecad", "algorithm": "NSGA2",
        "crossover": {"type": "PointCrossover", "n_points": 4, "prob": 0.9},
        "mutation": {"type": "BitflipMutation", "prob": 0.05, "prob_var": None},
        "structured_mutation": 0.5, "eliminate_duplicates": "archive", "initial_population": "structured",
        "screening": {"factor": 4, "explore": 0.25}, "init_schedules": [],
        "constraint": "differs from all-compute in >= 1 effective bit (steps >= 1)",
        "genome": "CacheSchedule.to_vector(); step-0 and absent bits repaired to 1",
    }
    assert SearchConfig.paper().operators()["screening"] is None


def test_front_names_are_the_export_names_also_when_speedups_collide():
    from tiny_models import tiny_pixart_config

    from ecad_hub import Frontier
    from ecad_hub.adapters import architecture_of
    from ecad_hub.search.front import name_front

    genome = Genome(architecture_of(dict(tiny_pixart_config(num_layers=2), _class_name="PixArtTransformer2DModel")), 4)
    rows = genome.canonical(np.random.default_rng(0).random((6, genome.n_var)) < 0.5)
    full = 10 ** 9
    # by increasing cost, as a run's front is: 2.00x twice (then three decimals), 1.250x twice (then -2:
    # equal MAC ratios, so the better quality keeps the plain name, as in a frontier)
    totals = [full // 4, int(full / 2.0014), int(full / 1.9996), int(full / 1.25), int(full / 1.25) + 1, full - 1]
    schedules = [genome.schedule(x, name=f"s{i}", metrics={
        "macs": {"total": t, "all_compute_total": full, "ratio": round(t / full, 6), "speedup": round(full / t, 4)},
        "quality": [{"metric": "fidelity", "value": 10.0 + i}]}) for i, (x, t) in enumerate(zip(rows, totals))]
    named = name_front(schedules, "fidelity")
    assert [s.content_hash for s in named] == [s.content_hash for s in schedules]  # order kept
    assert [s.name for s in named] == ["ecad-4.00x", "ecad-2.001x", "ecad-2.000x", "ecad-1.250x-2", "ecad-1.250x",
                                       "ecad-1.00x"]
    exported = Frontier.from_schedules(schedules, base_model="tiny", metric="fidelity")
    assert {s.content_hash: s.name for s in exported.schedules} == {s.content_hash: s.name for s in named}

def test_pareto_helpers():
    cost = [0.5, 0.6, 0.4, 0.5, 0.9]
    quality = [10.0, 12.0, 5.0, 9.0, 12.0]
    assert nondominated(cost, quality).tolist() == [True, True, True, False, False]
    # two points, reference (1, 0): union of [0.5,1]x[0,10] and [0.6,1]x[0,12]
    assert hypervolume([0.5, 0.6], [10.0, 12.0], 1.0, 0.0) == pytest.approx(0.5 * 10 + 0.4 * 2)
    assert hypervolume([1.2], [10.0], 1.0, 0.0) == 0.0


def test_initial_population_and_genome():
    from tiny_models import tiny_pixart_config

    from ecad_hub.adapters import architecture_of

    arch = architecture_of(dict(tiny_pixart_config(num_layers=3), _class_name="PixArtTransformer2DModel"))
    genome = Genome(arch, 10)
    X, labels = initial_population(genome, 20, np.random.default_rng(0))
    assert X.shape == (20, genome.n_var) and labels[0] == "all-compute"
    assert len({genome.key(x) for x in X}) == 20
    assert X[:, genome.fixed].all()  # step 0 always computes
    names = [n for n, _ in heuristic_schedules(genome)]
    assert {"fora-2", "attn-every-2", "ff-every-3"} <= set(names)
    fora2 = dict(heuristic_schedules(genome))["fora-2"]
    mask = genome.schedule(fora2).mask()
    assert mask[::2].all() and not mask[1::2].any()
    x = X[5]
    assert np.array_equal(genome.from_hex(genome.to_hex(x)), x)
    assert np.array_equal(genome.vector(genome.schedule(x)), x)
    Xr, _ = initial_population(genome, 8, np.random.default_rng(0), mode="random")
    assert not any(genome.key(x) == genome.key(genome.all_compute()) for x in Xr)


@pytest.mark.parametrize("kind", ["flux", "sd3"])
def test_search_on_flux_and_sd3_pipelines(kind, tiny_dir, tmp_path):
    """A loaded pipeline object of the other families (prompt encoding differs per family)."""
    from tiny_models import tiny_pipeline

    from ecad_hub.macs import profile_macs

    pipe = tiny_pipeline(kind, 0)
    res = run_search(config(tiny_dir, base_model=f"tiny-{kind}", num_inference_steps=3, height=64, width=64,
                            population=4, generations=2), tmp_path / kind, pipe=pipe, progress=False, quiet=True)
    assert res.generation == 1 and res.front
    text_len = 16 + (77 if kind == "sd3" else 0)
    profile = profile_macs(pipe.transformer, 64, 64, batch_size=1 if kind == "flux" else 2, text_len=text_len,
                           vae_scale_factor=pipe.vae_scale_factor)
    for s in res.front:
        assert s.metrics["macs"]["total"] == profile.total_macs(s)
        assert s.quality() < 200.0


def test_latency_cost_and_a_plugin_metric_from_the_cli(tiny_dir, tmp_path, monkeypatch, capsys):
    from ecad_hub import cli

    (tmp_path / "ecad_test_plugin.py").write_text(
        "from ecad_hub.metrics import QualityMetric, register_metric\n"
        "class Sharpness(QualityMetric):\n"
        "    name = 'sharpness'\n"
        "    def score(self, images, prompts, reference_images=None):\n"
        "        g = images.mean(dim=1)\n"
        "        return (g[:, 1:, :] - g[:, :-1, :]).abs().mean(dim=(1, 2)).double().numpy()\n"
        "register_metric('sharpness', Sharpness)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    rc = cli.main(["search", "--model", str(tiny_dir), "--out", str(run), "--steps", "3", "--max-sequence-length", "16",
                   "--prompts", str(tiny_dir.parent / "prompts.txt"), "--population", "4", "--generations", "1",
                   "--plugin", "ecad_test_plugin", "--metric", "sharpness", "--cost", "latency", "--threads", "1",
                   "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Pareto front after generation 0" in out
    doc = json.loads((run / "search.json").read_text())
    assert doc["metric"] == {"name": "sharpness"} and doc["cost"] == "latency"
    g0 = json.loads((run / "generations" / "gen_0000.json").read_text())
    assert all(o["latency_ms_per_image"] > 0 for o in g0["offspring"])
    front = [CacheSchedule.load(p) for p in (run / "front").glob("*.json")]
    assert front and all(s.metrics["latency"]["ms_per_image"] > 0 for s in front)
    assert cli.main(["validate", "-q", str(run / "front")]) == 0
    # a metric that does not exist: one line, exit status 1
    assert cli.main(["search", "--model", str(tiny_dir), "--out", str(tmp_path / "x"), "--metric", "nope"]) == 1
    assert "unknown metric 'nope'" in capsys.readouterr().err


def test_screening_helpers():
    from ecad_hub.search.pareto import _hv_gain, _staircase
    from ecad_hub.search.surrogate import RidgeSurrogate, screen

    rng = np.random.default_rng(0)
    for _ in range(200):  # the incremental gain equals the difference of two hypervolumes
        front = [(float(a), float(b)) for a, b in zip(rng.random(rng.integers(0, 8)), rng.random(8) * 10)]
        p, ref = (float(rng.random()), float(rng.random() * 10)), float(rng.random() * 2)
        cs, qs = [a for a, _ in front], [b for _, b in front]
        expected = hypervolume(cs + [p[0]], qs + [p[1]], 1.0, ref) - hypervolume(cs, qs, 1.0, ref)
        assert _hv_gain(_staircase(front), p, 1.0, ref) == pytest.approx(expected, abs=1e-12)
    picks = screen(rng.random(40), rng.random(40) * 10, [(0.5, 5.0)], 10, rng, ref_quality=0.0)
    assert len(picks) == len(set(picks)) == 10
    # the surrogate recovers an additive model exactly (up to ridge shrinkage)
    from tiny_models import tiny_pixart_config

    from ecad_hub.adapters import architecture_of

    genome = Genome(architecture_of(dict(tiny_pixart_config(num_layers=2), _class_name="PixArtTransformer2DModel")), 4)
    w = rng.normal(size=genome.free.size)
    X = genome.canonical(rng.random((200, genome.n_var)) < 0.5)
    y = 3.0 + (~X[:, genome.free]).astype(float) @ w
    model = RidgeSurrogate(genome, alpha=1e-6).fit(X, y)
    np.testing.assert_allclose(model.predict(X[:5]), y[:5], atol=1e-4)


def test_images_per_prompt_and_batching_do_not_change_the_images(tiny_dir, tmp_path):
    from diffusers import DiffusionPipeline

    from ecad_hub.search.evaluate import Evaluator

    pipe = DiffusionPipeline.from_pretrained(str(tiny_dir))
    pipe.set_progress_bar_config(disable=True)
    settings = dict(height=64, width=64, num_inference_steps=3, guidance_scale=4.5, max_sequence_length=16)
    one_call = Evaluator(pipe, settings, PROMPTS, images_per_prompt=2, metric=FidelityMetric())
    batched = Evaluator(pipe, settings, PROMPTS, images_per_prompt=2, metric=FidelityMetric(), batch_size=1)
    a, b = one_call.generate(), batched.generate()
    assert a.shape == (4, 3, 64, 64) and one_call.image_prompts == [PROMPTS[0]] * 2 + [PROMPTS[1]] * 2
    assert one_call.seeds == [0, 1, 2, 3]
    assert torch_allclose(a, b) and not torch_allclose(a[0], a[1])
    res = run_search(config(tiny_dir, images_per_prompt=2, population=3, generations=1), tmp_path / "r",
                     progress=False, quiet=True)
    assert all(s.metrics["quality"][0]["num_images"] == 4 for s in res.front)


def torch_allclose(a, b) -> bool:
    import torch

    return bool(torch.allclose(a, b, atol=1e-5))


def test_init_schedules_from_a_hub_repo(finished, tiny_dir, tmp_path, hub):
    """``--init user/repo``: a published frontier (e.g. of PixArt-alpha) seeds a new search."""
    from ecad_hub import Frontier

    run, result, _ = finished
    Frontier.load(run).push_to_hub("test-user/tiny-ecad")
    res = run_search(config(tiny_dir, generations=1, init_schedules=["test-user/tiny-ecad"]), tmp_path / "from-hub",
                     progress=False, quiet=True)
    g0 = json.loads((tmp_path / "from-hub" / "generations" / "gen_0000.json").read_text())
    seeded = {o["hash"] for o in g0["offspring"] if o["init"].startswith("user-")}
    assert seeded and seeded <= {s.content_hash for s in result.front}
    assert res.generation == 0
    log = (tmp_path / "from-hub" / "log.txt").read_text()
    assert "schedule(s) from test-user/tiny-ecad" in log
