"""Schedule format v1: round trips, determinism, validation, migration, size."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecad_hub import Architecture, BlockGroup, CacheSchedule, ScheduleError
from ecad_hub.schedule import migrate, schema_problems, validate_file

PIXART = Architecture("PixArtTransformer2DModel", (BlockGroup("transformer_blocks", 28, ("attn1", "attn2", "ff")),))
FLUX = Architecture(
    "FluxTransformer2DModel",
    (
        BlockGroup("transformer_blocks", 19, ("attn", "ff", "ff_context")),
        BlockGroup("single_transformer_blocks", 38, ("attn", "proj_mlp", "proj_out")),
    ),
)
SD3 = Architecture(
    "SD3Transformer2DModel",
    (BlockGroup("transformer_blocks", 4, ("attn", "attn2", "ff", "ff_context"),
                frozenset({("ff_context", 3), ("attn2", 2), ("attn2", 3)})),),
)


def random_schedule(arch: Architecture, steps: int, seed: int, p: float = 0.4, **kw) -> CacheSchedule:
    rng = np.random.default_rng(seed)
    masks = {g.name: rng.random((steps, g.num_blocks, len(g.components))) < p for g in arch.groups}
    return CacheSchedule(f"random-{seed}", steps, arch, masks, **kw)


FULL_METRICS = {
    "macs": {"per_step": [10] * 20, "total": 200, "all_compute_total": 400, "ratio": 0.5, "speedup": 2.0,
             "profile": {"height": 256, "width": 256, "batch_size": 2, "text_len": 120, "attention_scores": False}},
    "latency": {"ms_per_image": 84.09, "all_compute_ms_per_image": 150.2, "speedup": 1.79, "device": "NVIDIA RTX A6000",
                "dtype": "float16", "batch_size": 100, "runs": 5},
    "quality": [{"metric": "image-reward", "value": 0.9312, "all_compute_value": 0.95, "prompt_set": "parti-100",
                 "prompt_set_sha256": "0" * 64, "num_images": 1000}],
}


def test_all_compute_is_all_true_and_fully_computed():
    s = CacheSchedule.all_compute(PIXART, 20)
    assert s.masks["transformer_blocks"].shape == (20, 28, 3)
    assert s.masks["transformer_blocks"].all()
    assert s.fraction_computed() == 1.0


def test_step_zero_counts_as_computed():
    masks = {"transformer_blocks": np.zeros((20, 28, 3), dtype=bool)}
    s = CacheSchedule("nothing", 20, PIXART, masks)
    assert s.fraction_computed() == pytest.approx(1 / 20)
    assert s.effective_masks()["transformer_blocks"][0].all()
    assert not s.masks["transformer_blocks"][0].any()  # the stored mask keeps what the file says


def test_masks_are_read_only():
    s = random_schedule(PIXART, 20, 0)
    with pytest.raises(ValueError):
        s.masks["transformer_blocks"][0, 0, 0] = True


def test_save_load_round_trip_and_determinism(tmp_path):
    s = random_schedule(FLUX, 20, 1, metrics=FULL_METRICS | {"macs": {"per_step": [1] * 20, "total": 20}},
                        generation={"base_model": "black-forest-labs/FLUX.1-dev", "height": 256, "width": 256,
                                    "guidance_scale": 3.5, "scheduler_class": "FlowMatchEulerDiscreteScheduler"},
                        provenance={"search_run": "runs/flux", "generation": 12, "candidate": 3, "ecad_hub_version": "0.1.0"})
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    s.save(a)
    loaded = CacheSchedule.load(a)
    assert loaded == s
    loaded.save(b)
    assert a.read_bytes() == b.read_bytes()
    assert loaded.content_hash == s.content_hash
    for g in FLUX.groups:
        np.testing.assert_array_equal(loaded.masks[g.name], s.masks[g.name])


def test_content_hash_ignores_names_and_metrics_but_not_bits():
    s = random_schedule(PIXART, 20, 2)
    renamed = s.replace(name="other", metrics={"macs": {"per_step": [1] * 20, "total": 20}})
    assert renamed.content_hash == s.content_hash
    assert renamed != s
    flipped = s.masks["transformer_blocks"].copy()
    flipped[5, 3, 1] ^= True
    assert s.replace(masks={"transformer_blocks": flipped}).content_hash != s.content_hash


def test_pixart_file_with_metrics_is_small():
    s = random_schedule(PIXART, 20, 3, metrics=FULL_METRICS,
                        generation={"base_model": "PixArt-alpha/PixArt-XL-2-256x256", "height": 256, "width": 256},
                        provenance={"imported_from": {"format": "ecad-legacy", "file": "ours_fast.json",
                                                      "name": "handcrafted-nsga2-pw-bf_gen_358_cand_014",
                                                      "sha256": "a" * 64}, "ecad_hub_version": "0.1.0"})
    assert len(s.to_json().encode()) < 8 * 1024


def test_mask_is_one_diffable_line_per_step():
    text = random_schedule(PIXART, 20, 4).to_json()
    rows = [line.strip().strip('",') for line in text.splitlines() if set(line.strip().strip('",')) <= {"0", "1"} and len(line.strip().strip('",')) == 28]
    assert len(rows) == 60


def test_absent_components_are_ignored_and_canonical():
    masks = {"transformer_blocks": np.zeros((5, 4, 4), dtype=bool)}
    s = CacheSchedule("sd3", 5, SD3, masks)
    m = s.masks["transformer_blocks"]
    assert m[:, 3, 3].all() and m[:, 2, 1].all() and m[:, 3, 1].all()  # absent -> written as '1'
    present = SD3.groups[0].present()
    assert present.sum() == 4 * 4 - 3
    # fraction computed counts only existing sub-modules: step 0 computes the 13 that exist
    assert s.fraction_computed() == pytest.approx(1 / 5)
    assert CacheSchedule.from_json(s.to_json()) == s


def test_vector_round_trip():
    s = random_schedule(FLUX, 7, 5)
    v = s.to_vector()
    assert v.size == 7 * (19 + 38) * 3
    assert CacheSchedule.from_vector(FLUX, 7, v, name=s.name).content_hash == s.content_hash


# --- validation ----------------------------------------------------------------------------

def _doc():
    return random_schedule(PIXART, 4, 6).to_dict()


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.pop("ecad_schedule_version"), "missing ecad_schedule_version"),
        (lambda d: d.update(ecad_schedule_version=7), "unsupported ecad_schedule_version 7"),
        (lambda d: d.update(ecad_schedule_version="1"), "must be an integer"),
        (lambda d: d.pop("mask"), "'mask' is a required property"),
        (lambda d: d.update(num_inference_steps=5), "4 steps, expected num_inference_steps=5"),
        (lambda d: d["mask"]["transformer_blocks"]["ff"].__setitem__(1, "1" * 27), "27 blocks, expected num_blocks=28"),
        (lambda d: d["mask"]["transformer_blocks"]["ff"].__setitem__(1, "1" * 27 + "x"), "does not match"),
        (lambda d: d["mask"]["transformer_blocks"].__setitem__("attn3", ["1" * 28] * 4), "attn3: unknown component"),
        (lambda d: d["mask"]["transformer_blocks"].pop("attn2"), "missing component 'attn2'"),
        (lambda d: d["mask"]["transformer_blocks"].__setitem__("ff", [True] * 4), "is not type"),
        (lambda d: d.update(name="../../etc/passwd"), "name"),
        (lambda d: d["architecture"]["groups"][0].update(num_blocks=0), "num_blocks"),
        (lambda d: d.update(metrics={"macs": {"per_step": [1, 2], "total": 3}}), "2 entries, expected 4"),
        (lambda d: d.update(metrics={"macs": {"per_step": [1, 2, 3, 4], "total": 3}}), "not the sum"),
        (lambda d: d.update(extra_field=1), "Additional properties"),
    ],
)
def test_invalid_documents_give_one_line_errors(mutate, expected):
    d = _doc()
    mutate(d)
    with pytest.raises(ScheduleError) as err:
        CacheSchedule.from_dict(d, source="x.json")
    message = str(err.value)
    assert expected in message
    assert "\n" not in message and message.startswith("x.json")


def test_validate_file_reports_bad_json_and_huge_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"ecad_schedule_version": 1,,}')
    (problem,) = validate_file(bad)
    assert "not valid JSON (line 1" in problem
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (9 * 1024 * 1024))
    (problem,) = validate_file(huge)
    assert "larger than the 8 MB limit" in problem
    assert validate_file(tmp_path / "missing.json") == [f"{tmp_path / 'missing.json'}: no such file"]
    nan = tmp_path / "nan.json"
    nan.write_text('{"ecad_schedule_version": NaN}')
    assert "NaN" in validate_file(nan)[0]


def test_legacy_document_hint():
    with pytest.raises(ScheduleError, match="legacy ECAD schedule"):
        migrate({"cache_schedule": {}}, source="old.json")


def test_constructor_rejects_bad_shapes_and_values():
    with pytest.raises(ScheduleError, match="shape"):
        CacheSchedule("x", 20, PIXART, {"transformer_blocks": np.ones((20, 27, 3), dtype=bool)})
    with pytest.raises(ScheduleError, match="non-boolean"):
        CacheSchedule("x", 2, PIXART, {"transformer_blocks": np.full((2, 28, 3), 2)})
    with pytest.raises(ScheduleError, match="mask groups"):
        CacheSchedule("x", 2, PIXART, {"blocks": np.ones((2, 28, 3), dtype=bool)})
    with pytest.raises(ScheduleError, match="name"):
        CacheSchedule.all_compute(PIXART, 2, name="has space")


def test_architecture_differences_are_readable():
    other = Architecture("PixArtTransformer2DModel", (BlockGroup("transformer_blocks", 12, ("attn1", "attn2", "ff")),))
    assert PIXART.differences(other) == ["transformer_blocks: 28 blocks vs 12"]
    assert "transformer class" in FLUX.differences(PIXART)[0]


# --- property tests ------------------------------------------------------------------------

ARCHS = st.sampled_from([PIXART, FLUX, SD3])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=ARCHS, steps=st.integers(1, 30), seed=st.integers(0, 2**32 - 1), p=st.floats(0, 1))
def test_property_save_load_round_trip(tmp_path_factory, arch, steps, seed, p):
    s = random_schedule(arch, steps, seed, p)
    path = tmp_path_factory.mktemp("rt") / "s.json"
    s.save(path)
    loaded = CacheSchedule.load(path)
    assert loaded == s and loaded.content_hash == s.content_hash
    assert path.read_text() == s.to_json()


def _corrupt(doc: dict, data) -> dict:
    """Apply one random corruption somewhere in the document."""
    paths = []

    def walk(node, trail):
        paths.append(trail)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, trail + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, trail + [i])

    walk(doc, [])
    target = data.draw(st.sampled_from(paths[1:]))
    parent = doc
    for key in target[:-1]:
        parent = parent[key]
    key = target[-1]
    kind = data.draw(st.sampled_from(["delete", "type", "mask_char", "mask_len", "number", "unknown_key"]))
    value = parent[key]
    if kind == "delete":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif kind == "type":
        parent[key] = data.draw(st.sampled_from([None, [], {}, "x", 1.5, True, -3]).filter(lambda v: type(v) is not type(value)))
    elif kind == "mask_char" and isinstance(value, str) and set(value) <= {"0", "1"} and value:
        i = data.draw(st.integers(0, len(value) - 1))
        parent[key] = value[:i] + data.draw(st.sampled_from(["2", "x", " ", "T"])) + value[i + 1:]
    elif kind == "mask_len" and isinstance(value, str) and set(value) <= {"0", "1"} and value:
        parent[key] = value + "1" if data.draw(st.booleans()) else value[:-1]
    elif kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        parent[key] = value + data.draw(st.sampled_from([-100000, -1, 1, 7]))
    elif kind == "unknown_key" and isinstance(value, dict):
        value["zz_unknown"] = 1
    else:
        parent[key] = {"corrupted": True}
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=ARCHS, data=st.data())
def test_property_validator_never_crashes_on_corruption(arch, data):
    """Any corruption either still describes a valid schedule or gives a ScheduleError — never another exception."""
    s = random_schedule(arch, 3, data.draw(st.integers(0, 1000)),
                        metrics={"macs": {"per_step": [5, 1, 1], "total": 7}}, generation={"height": 256, "width": 256})
    doc = _corrupt(s.to_dict(), data)
    try:
        loaded = CacheSchedule.from_dict(json.loads(json.dumps(doc)), source="c.json")
    except ScheduleError as e:
        assert str(e).startswith("c.json") and "\n" not in str(e)
        assert e.problems
    else:
        # a surviving document must be fully consistent
        assert schema_problems(loaded.to_dict(), "schedule-v1") == []
        for g in loaded.architecture.groups:
            assert loaded.masks[g.name].shape == (loaded.num_inference_steps, g.num_blocks, len(g.components))


# --- hardening: every document that loads is usable, every problem is one line --------------

def _small_doc() -> dict:
    return random_schedule(SD3, 3, 1).to_dict()


@pytest.mark.parametrize("absent, expected", [
    ({"zz": [0]}, "architecture/transformer_blocks/absent: unknown component 'zz'"),
    ({"ff": [4]}, "architecture/transformer_blocks/absent/ff: block 4 out of range (num_blocks 4)"),
])
def test_an_inconsistent_absent_list_is_a_one_line_error(absent, expected):
    doc = _small_doc()
    doc["architecture"]["groups"][0]["absent"] = absent
    with pytest.raises(ScheduleError) as err:
        CacheSchedule.from_dict(doc, source="x.json")
    assert str(err.value) == f"x.json: {expected}" or str(err.value).startswith(f"x.json: {expected}")
    with pytest.raises(ScheduleError, match="unknown component|out of range"):
        BlockGroup("transformer_blocks", 4, ("attn", "ff"), frozenset({(next(iter(absent)), 4)}))
    with pytest.raises(ScheduleError, match="unknown component|out of range"):
        Architecture.from_dict(doc["architecture"])


def test_a_step_count_written_as_a_float_is_refused_not_a_crash():
    for steps in (3.0, 3.5, True):
        doc = _small_doc()
        doc["num_inference_steps"] = steps
        with pytest.raises(ScheduleError, match=r"num_inference_steps: .* is not type 'integer'"):
            CacheSchedule.from_dict(doc, source="x.json")
    doc = _small_doc()
    doc["architecture"]["groups"][0]["num_blocks"] = 4.0
    with pytest.raises(ScheduleError, match="is not type 'integer'"):
        CacheSchedule.from_dict(doc, source="x.json")
    assert CacheSchedule.from_json(json.dumps(_small_doc()).replace('"num_inference_steps": 3',
                                                                    '"num_inference_steps": 3')).num_inference_steps == 3


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E309", "123456789e999"])
def test_numbers_that_overflow_to_infinity_are_refused(tmp_path, number):
    text = random_schedule(PIXART, 2, 0, metrics=FULL_METRICS | {"macs": {"per_step": [1, 2], "total": 3}}).to_json()
    bad = text.replace('"value": 0.9312', f'"value": {number}')
    assert bad != text
    with pytest.raises(ScheduleError, match="too large"):
        CacheSchedule.from_json(bad, source="x.json")
    path = tmp_path / "x.json"
    path.write_text(bad)
    (problem,) = validate_file(path)
    assert "too large (it would be read as infinity)" in problem


def test_infinity_and_nan_in_memory_are_refused_before_anything_is_written(tmp_path):
    for value in (float("inf"), float("-inf"), float("nan"), 10 ** 400):
        s = random_schedule(PIXART, 2, 0, metrics={"quality": [{"metric": "m", "value": value}]})
        with pytest.raises(ScheduleError, match="is not a finite number"):
            s.save(tmp_path / "x.json")
        assert not (tmp_path / "x.json").exists()


def _patterns(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern":
                yield value
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_every_schema_pattern_matches_the_whole_string():
    import re

    from ecad_hub.schemas import load_schema, schema_names

    found = 0
    for name in schema_names():
        for pattern in _patterns(load_schema(name)):
            found += 1
            assert pattern.startswith("^") and pattern.endswith(r"(?![\s\S])"), (name, pattern)
            assert not pattern.endswith("$"), (name, pattern)
            compiled = re.compile(pattern)
            for probe in ("a\n", "1\n", "schedules/a.json\n", "a/b\n", "0" * 64 + "\n"):
                assert not compiled.search(probe), (name, pattern, probe)
    assert found >= 10


def test_a_trailing_newline_never_passes_a_name_or_a_mask_row(tmp_path):
    doc = random_schedule(PIXART, 2, 0).to_dict()
    doc["name"] = "evil\n"
    with pytest.raises(ScheduleError, match=r"name: 'evil\\n' does not match"):
        CacheSchedule.from_dict(doc, source="x.json")
    doc = random_schedule(PIXART, 2, 0).to_dict()
    doc["mask"]["transformer_blocks"]["ff"][1] = "1" * 27 + "\n"  # 28 characters, the last one a newline
    with pytest.raises(ScheduleError, match="does not match"):
        CacheSchedule.from_dict(doc, source="x.json")
    with pytest.raises(ScheduleError, match="not a file-name-safe name"):
        CacheSchedule.all_compute(PIXART, 2, name="evil\n")
    from ecad_hub.legacy import _safe_name

    assert _safe_name("evil\n", "x") == "evil"


def test_problems_with_control_characters_in_keys_stay_one_line_each(tmp_path):
    doc = random_schedule(PIXART, 2, 0).to_dict()
    doc["mask"]["transformer_blocks"]["ev\nil\x1b[31m"] = doc["mask"]["transformer_blocks"].pop("ff")
    other = random_schedule(PIXART, 2, 0).to_dict()
    other["generation"] = {"base_model\u2028x\n": 1, "height": "\r\n"}
    problems = []
    for name, d in (("a.json", doc), ("b.json", other)):
        (tmp_path / name).write_text(json.dumps(d))
        problems += validate_file(tmp_path / name)
        with pytest.raises(ScheduleError) as err:
            CacheSchedule.load(tmp_path / name)
        assert len(str(err.value).splitlines()) == 1
    assert len(problems) >= 4
    for p in problems:
        assert len(p.splitlines()) == 1 and "\x1b" not in p and "\u2028" not in p, repr(p)
    assert any("ev\\nil\\x1b[31m: unknown component" in p for p in problems)
    assert any("missing component 'ff'" in p for p in problems)


def test_saved_files_respect_the_umask(tmp_path):
    import os
    import stat

    s = random_schedule(PIXART, 2, 0)
    old = os.umask(0o022)
    try:
        path = s.save(tmp_path / "a.json")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(s.save(tmp_path / "b.json").stat().st_mode) == 0o600
        os.chmod(path, 0o664)
        s.save(path)  # an existing file keeps its mode
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_a_device_file_is_read_boundedly(tmp_path):
    (problem,) = validate_file("/dev/zero")
    assert "larger than the 8 MB limit" in problem
