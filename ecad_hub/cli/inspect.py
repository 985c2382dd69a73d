"""``ecad-hub inspect``: what ecad-hub would schedule in a transformer, before any search.

    ecad-hub inspect transformer/config.json              # a transformer config.json
    ecad-hub inspect path/to/model                        # a folder with config.json or transformer/config.json
    ecad-hub inspect owner/name --json                    # a Hub repo: its transformer/config.json
    ecad-hub inspect owner/name --base-revision SHA       # ... at that commit

It prints the adapter used (hand-written, or derived automatically for a diffusers transformer
class no adapter knows), the block groups x components, absent sub-modules, the candidates the
automatic adapter excluded and why, the dummy inputs it verified with, and the MAC split of one
step at the default resolution (:func:`ecad_hub.profile_macs`). Only the config is read: the
model is built weightless on the ``meta`` device.

Added by :func:`add_parsers` (see :mod:`ecad_hub.cli`); bad input raises
:class:`~ecad_hub.errors.EcadError` subclasses with one-line messages (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

from ..errors import EcadError, UnsupportedModelError
from .common import add_deprecated_alias

#: a Hub model repo id (``owner/name``)
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
#: guidance scale assumed when choosing the profiled batch (a CFG pair unless guidance-distilled)
_TYPICAL_GUIDANCE = 4.5


class InspectError(EcadError, ValueError):
    """``ecad-hub inspect`` was given something that is not a transformer config, folder or Hub repo."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show the blocks and sub-modules ecad-hub schedules in a transformer, "
                                       "and the MACs of one step")
    p.set_defaults(handler=cmd_inspect)
    p.add_argument("model", metavar="MODEL_OR_CONFIG",
                   help="a transformer config.json, a folder with config.json or transformer/config.json, or a Hub repo id")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--base-revision", metavar="REV", help="the model's Hub revision (branch, tag or commit sha)")
    add_deprecated_alias(p, "inspect", "--revision", "--base-revision", dest="base_revision", metavar="REV")
    p.add_argument("--height", type=int, help="image height in pixels (default: the model's default resolution)")
    p.add_argument("--width", type=int, help="image width in pixels (default: the model's default resolution)")
    p.add_argument("--num-frames", type=int, help="video models: frames in pixels (default: the model's)")
    p.add_argument("--batch-size", type=int, help="images per forward (default 2, a CFG pair; 1 if guidance-distilled)")
    p.add_argument("--text-len", type=int, help="text tokens (default: the architecture's usual count)")
    p.add_argument("--vae-scale-factor", type=int, default=8, help="pixels per latent (default 8)")
    p.add_argument("--no-macs", action="store_true", help="skip the MAC profile")


# --------------------------------------------------------------------------------------------
# the config
# --------------------------------------------------------------------------------------------

def resolve_config(model: str, revision: str | None = None) -> tuple[dict, str]:
    """(transformer config, where it was read) for a config file, a model folder or a Hub repo id."""
    from ..utils.io import read_json

    path = Path(model)
    if path.is_dir():
        for name in ("config.json", "transformer/config.json"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise InspectError(f"{model}: no config.json or transformer/config.json in this folder")
    elif not path.exists():
        if not _REPO_ID.fullmatch(model) or model.endswith(".json"):
            raise InspectError(f"{model}: no such file or folder, and not a Hub repo id (owner/name)")
        path = Path(_download_config(model, revision))
        source = f"{model}:{path.parent.name}/{path.name}" if path.parent.name == "transformer" else f"{model}:{path.name}"
        return _config_dict(read_json(path, error_cls=InspectError), source), source
    return _config_dict(read_json(path, error_cls=InspectError), str(path)), str(path)


def resolve_transformer_config(args) -> dict | None:
    """``args.transformer_config`` (a config file, a model folder or a Hub model id, at ``args.base_revision``)
    as a config dict; ``None`` when not given. A bad one is one :class:`InspectError` line naming the flag."""
    value = getattr(args, "transformer_config", None)
    if value is None:
        return None
    try:
        config, _ = resolve_config(value, getattr(args, "base_revision", None))
    except InspectError as e:
        raise InspectError(f"--transformer-config {e}", path=e.path) from None
    return config


def _download_config(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    from ..frontier.remote import hub_errors

    with hub_errors(repo_id, "reading the transformer config", revision):
        for filename in ("transformer/config.json", "config.json"):  # a pipeline repo, or the transformer's alone
            try:
                return hf_hub_download(repo_id, filename, revision=revision)
            except RemoteEntryNotFoundError:
                continue
    raise InspectError(f"{repo_id}: the repo has neither transformer/config.json nor config.json", path=repo_id)


def _config_dict(doc: Any, source: str) -> dict:
    if not isinstance(doc, dict):
        raise InspectError(f"{source}: a transformer config must be a JSON object, got {type(doc).__name__}")
    if any(isinstance(v, list) and len(v) == 2 and all(isinstance(x, (str, type(None))) for x in v) for v in doc.values()):
        raise InspectError(f"{source}: a pipeline's model_index.json, not a transformer config; pass the model "
                           "folder or its transformer/config.json")
    if "_class_name" not in doc:
        raise InspectError(f"{source}: no _class_name: not a diffusers model config")
    return doc


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------

def inspect_config(config: Mapping, source: str = "<config>", *, height: int | None = None, width: int | None = None,
                   num_frames: int | None = None, batch_size: int | None = None, text_len: int | None = None,
                   vae_scale_factor: int = 8, macs: bool = True) -> dict:
    """The inspection report of a transformer config (a JSON-ready dict; see :func:`format_report`)."""
    from ..adapters import adapter_for, find_adapter
    from ..adapters.auto import AutoAdapter

    config = dict(config)
    name = str(config["_class_name"])
    adapter = adapter_for(config)  # UnsupportedModelError: neither a hand adapter nor a diffusers transformer
    report: dict[str, Any] = {"source": source, "transformer_class": name}
    if isinstance(adapter, AutoAdapter):
        d = adapter.derivation
        report["adapter"] = {"kind": "derived", "class": "ecad_hub.adapters.auto.AutoAdapter", "family": adapter.family,
                             "usable": d.usable}
        report.update({k: v for k, v in d.to_dict().items() if k != "transformer_class"})
        arch = d.architecture
    else:
        hand = find_adapter(name)
        report["adapter"] = {"kind": "hand-written", "class": f"{type(hand).__module__}.{type(hand).__qualname__}",
                             "family": hand.family, "usable": True}
        arch = adapter.architecture(config)
        report.update({"architecture": arch.to_dict(), "excluded": []})
    report["describe"] = arch.describe() if arch is not None else None
    report["macs"], report["macs_error"] = None, None
    if macs and report["adapter"]["usable"]:
        try:
            report["macs"] = _mac_split(adapter, config, height, width, num_frames, batch_size, text_len, vae_scale_factor)
        except (ValueError, EcadError, NotImplementedError) as e:
            report["macs_error"] = " ".join(str(e).split())
    elif macs:
        report["macs_error"] = "the derived adapter is not verified: " + str(report.get("problem"))
    return report


def _mac_split(adapter, config, height, width, num_frames, batch_size, text_len, vae_scale_factor) -> dict:
    from ..adapters.auto import AutoAdapterWarning
    from ..macs import profile_macs

    side = adapter.default_resolution(config, vae_scale_factor)
    height, width = height or side, width or side
    if batch_size is None:
        batch_size = 2 if adapter.uses_cfg(_TYPICAL_GUIDANCE) else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutoAdapterWarning)  # this report is what the warning points to
        profile = profile_macs(config, height, width, batch_size=batch_size, text_len=text_len,
                               vae_scale_factor=vae_scale_factor, num_frames=num_frames)
    groups = []
    for g in profile.architecture.groups:
        arr = profile.component_macs[g.name]
        groups.append({"name": g.name, "num_blocks": g.num_blocks,
                       "components": {c: int(arr[:, i].sum()) for i, c in enumerate(g.components)},
                       "total": int(arr.sum())})
    return {**profile.profile_settings(), "full_step_macs": profile.full_step_macs, "always_macs": profile.always_macs,
            "outside_blocks_macs": profile.outside_blocks_macs, "groups": groups}


def format_report(report: Mapping) -> str:
    """The text ``ecad-hub inspect`` prints."""
    a = report["adapter"]
    lines = [f"{report['transformer_class']}  ({report['source']})"]
    if a["kind"] == "derived":
        state = "verified on a dummy forward" + (f" ({report.get('verified_on')})" if report.get("verified_on") else "")
        if not report.get("verified"):
            state = "NOT verified: " + str(report.get("problem"))
        lines.append(f"adapter: derived automatically (no hand-written adapter for this class; family tag "
                     f"{a['family']!r}); {state}")
    else:
        lines.append(f"adapter: hand-written ({a['class']}, family {a['family']!r})")
    arch = report.get("architecture")
    if arch:
        lines.append("groups (execution order) x components:")
        width = max(len(g["name"]) for g in arch["groups"])
        kinds = report.get("component_kinds") or {}
        for g in arch["groups"]:
            comps = ", ".join(c + (f" ({kinds[g['name'] + '.*.' + c]})" if g["name"] + ".*." + c in kinds else "")
                              for c in g["components"])
            lines.append(f"  {g['name']:<{width}}  {g['num_blocks']:>3} blocks x {{{comps}}}")
            for comp, blocks in (g.get("absent") or {}).items():
                lines.append(f"  {'':<{width}}  absent: {comp} in block{'s' if len(blocks) > 1 else ''} "
                             f"{_ranges(blocks)}")
    elif a["kind"] == "derived":
        lines.append(f"no groups derived: {report.get('problem')}")
    excluded = report.get("excluded") or []
    if excluded:
        lines.append("excluded candidates:")
        lines.extend(f"  {e['path']}: {e['reason']}" for e in excluded)
    elif a["kind"] == "derived":
        lines.append("excluded candidates: none")
    inputs = report.get("inputs")
    if inputs:
        if inputs.get("shapes"):
            shapes = ", ".join(f"{k} {v}" for k, v in inputs["shapes"].items())
            lines.append(f"dummy inputs ({inputs.get('source')}{', ' + inputs['layout'] if inputs.get('layout') else ''}): "
                         f"{shapes}")
        if inputs.get("problem"):
            lines.append(f"inputs: {inputs['problem']} (pass example inputs to "
                         "ecad_hub.adapters.auto.derive_adapter(model, example_inputs=...))")
    m = report.get("macs")
    if m:
        frames = f"x{m['num_frames']} frames" if m.get("num_frames") else ""
        lines.append(f"MACs of one step at {m['height']}x{m['width']}{frames}, batch {m['batch_size']}, "
                     f"{m['text_len']} text tokens (attention score/value products not counted):")
        full = m["full_step_macs"] or 1
        rows = [("full step", m["full_step_macs"]), ("always (outside the scheduled sub-modules)", m["always_macs"])]
        for g in m["groups"]:
            for c, v in g["components"].items():
                rows.append((f"{g['name']}.*.{c}", v))
        w = max(len(r[0]) for r in rows)
        lines.extend(f"  {label:<{w}}  {value:>22,}  {100 * value / full:5.1f}%" for label, value in rows)
    elif report.get("macs_error"):
        lines.append(f"MACs: unavailable ({report['macs_error']})")
    return "\n".join(lines) + "\n"


def _ranges(values) -> str:
    from ..adapters.auto import block_ranges

    return block_ranges(list(values))


def cmd_inspect(args) -> int:
    """Print the architecture ecad-hub schedules for a transformer config, folder or Hub repo."""
    config, source = resolve_config(args.model, args.base_revision)
    try:
        report = inspect_config(config, source, height=args.height, width=args.width, num_frames=args.num_frames,
                                batch_size=args.batch_size, text_len=args.text_len,
                                vae_scale_factor=args.vae_scale_factor, macs=not args.no_macs)
    except UnsupportedModelError as e:
        raise UnsupportedModelError(f"{source}: {e}", path=source) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report), end="")
    return 0
