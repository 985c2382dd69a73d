"""``--ray``: a local Ray with 2 CPU actors gives exactly the in-process objective values."""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray")

from ecad_hub.search import SearchConfig, run_search  # noqa: E402


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_and_in_process_give_identical_objectives(tiny_dir, tmp_path, local_ray):
    cfg = SearchConfig(base_model=str(tiny_dir), num_inference_steps=4, max_sequence_length=16, population=5,
                       generations=2, metric="fidelity", metric_kwargs={"max_psnr": 200},
                       prompts=str(tiny_dir.parent / "prompts.txt"), num_threads=1)
    lines = []
    on_ray = run_search(cfg.replace(ray="auto"), tmp_path / "ray", progress=False, log=lines.append)
    assert any("2 actor(s)" in line for line in lines)
    local = run_search(cfg, tmp_path / "local", progress=False, quiet=True)

    def load(run):
        return json.loads((run / "evaluations.json").read_text())["evaluations"]

    a, b = load(tmp_path / "ray"), load(tmp_path / "local")
    assert set(a) == set(b) and len(a) >= 8
    for h in a:
        for key in ("mac_ratio", "macs", "quality", "genome"):
            assert a[h][key] == b[h][key], (h, key)
    for k in range(2):
        name = f"generations/gen_{k:04d}.json"
        assert json.loads((tmp_path / "ray" / name).read_text()) == json.loads((tmp_path / "local" / name).read_text())
    assert [s.content_hash for s in on_ray.front] == [s.content_hash for s in local.front]
    assert json.loads((tmp_path / "ray" / "search.json").read_text())["execution"]["ray"] == "auto"
