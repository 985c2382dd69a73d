"""The typed result of a comparison, its table, verdicts, JSON and plot."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: MAC speedups at which every baseline is compared with ECAD in :meth:`CompareResult.at_speedups`.
TARGET_SPEEDUPS = (1.5, 2.0, 3.0, 4.0)
#: Relative MAC-speedup slack when matching "the same or higher speedup" (measurement granularity).
SPEEDUP_TOLERANCE = 0.01


@dataclass
class CompareRow:
    """One measured (method, setting): speedups against all-compute, held-out quality and fidelity."""

    method: str
    setting: str
    kind: str
    mac_speedup: float | None
    wall_speedup: float
    quality: float
    metric: str
    fidelity_psnr: float
    num_images: int
    loop_speedup: float | None = None
    calibration_quality: float | None = None
    macs_per_image: int | None = None
    wall_ms: float | None = None
    loop_ms: float | None = None
    knob: float | None = None
    note: str | None = None
    profile_mac_speedup: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("mac_speedup", "calibration_quality")}


@dataclass
class CompareResult:
    """Everything ``ecad-hub compare`` measured (``rows``: all-compute first, then ECAD, then baselines)."""

    rows: list[CompareRow]
    metric: str
    skipped: list[str] = field(default_factory=list)
    prompt_set: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    base_model: str | None = None
    preset: str | None = None
    seconds: float | None = None
    mag_ratios: list[float] | None = None

    # --- views ------------------------------------------------------------------------------
    @property
    def ecad_rows(self) -> list[CompareRow]:
        return [r for r in self.rows if r.kind == "ecad"]

    @property
    def baseline_rows(self) -> list[CompareRow]:
        return [r for r in self.rows if r.kind not in ("ecad", "reference")]

    @property
    def reference(self) -> CompareRow:
        return next(r for r in self.rows if r.kind == "reference")

    def methods(self) -> list[str]:
        out: list[str] = []
        for r in self.baseline_rows:
            if r.method not in out:
                out.append(r.method)
        return out

    def best_ecad_at(self, speedup: float) -> CompareRow | None:
        """The best held-out-quality ECAD schedule with MAC speedup >= ``speedup`` (less the tolerance)."""
        ok = [r for r in self.ecad_rows if r.mac_speedup and r.mac_speedup >= speedup * (1 - SPEEDUP_TOLERANCE)]
        return max(ok, key=lambda r: (r.quality, r.mac_speedup)) if ok else None

    def verdicts(self) -> list[dict]:
        """Per baseline row: the best ECAD schedule at the same or higher MAC speedup and whether it
        is at least as good on the held-out prompts (``None``: no ECAD schedule is that fast)."""
        out = []
        for r in self.baseline_rows:
            e = self.best_ecad_at(r.mac_speedup or 1.0)
            out.append({"method": r.method, "setting": r.setting, "mac_speedup": r.mac_speedup, "quality": r.quality,
                        "ecad": None if e is None else e.setting,
                        "ecad_mac_speedup": None if e is None else e.mac_speedup,
                        "ecad_quality": None if e is None else e.quality,
                        "ecad_at_least_as_good": None if e is None else bool(e.quality >= r.quality)})
        return out

    def at_speedups(self, targets=TARGET_SPEEDUPS) -> list[dict]:
        """Per baseline method and target MAC speedup: its best setting reaching the target vs ECAD's."""
        out = []
        for method in self.methods():
            rows = [r for r in self.baseline_rows if r.method == method]
            for t in targets:
                ok = [r for r in rows if r.mac_speedup and r.mac_speedup >= t * (1 - SPEEDUP_TOLERANCE)]
                b = max(ok, key=lambda r: r.quality) if ok else None
                e = self.best_ecad_at(t)
                if b is None and e is None:
                    verdict = "neither reaches it"
                elif b is None:
                    verdict = f"only ECAD reaches it ({e.setting}: {e.quality:.4g})"
                elif e is None:
                    verdict = f"only {method} reaches it ({b.setting}: {b.quality:.4g}); ECAD's fastest is slower"
                elif e.quality >= b.quality:
                    verdict = f"ECAD at least as good ({e.quality:.4g} vs {b.quality:.4g})"
                else:
                    verdict = f"{method} better ({b.quality:.4g} vs ECAD {e.quality:.4g})"
                out.append({"method": method, "target": t, "baseline": None if b is None else b.setting,
                            "baseline_quality": None if b is None else b.quality,
                            "ecad": None if e is None else e.setting, "ecad_quality": None if e is None else e.quality,
                            "ecad_at_least_as_good": None if (b is None or e is None) else bool(e.quality >= b.quality),
                            "verdict": verdict})
        return out

    def summary_lines(self) -> list[str]:
        """One plain sentence per baseline method: where ECAD is at least as good, and where it is not."""
        lines = []
        by = {}
        for v in self.verdicts():
            by.setdefault(v["method"], []).append(v)
        for method, vs in by.items():
            wins = [v for v in vs if v["ecad_at_least_as_good"] is True]
            losses = [v for v in vs if v["ecad_at_least_as_good"] is False]
            none = [v for v in vs if v["ecad_at_least_as_good"] is None]
            parts = [f"{method}: ECAD is at least as good at the same or higher MAC speedup for {len(wins)} of {len(vs)} settings"]
            if losses:
                parts.append("; " + method + " wins at " + ", ".join(
                    f"{v['setting']} ({v['mac_speedup']:.2f}x: {v['quality']:.4g} vs ECAD {v['ecad']} {v['ecad_quality']:.4g})"
                    for v in losses))
            if none:
                parts.append("; no ECAD schedule is as fast as " + ", ".join(
                    f"{v['setting']} ({v['mac_speedup']:.2f}x)" for v in none))
            lines.append("".join(parts) + ".")
        return lines

    # --- output -----------------------------------------------------------------------------
    def table(self, markdown: bool = False) -> str:
        """The comparison table (method, setting, MAC / wall / loop speedup, held-out quality, PSNR, calibration quality)."""
        head = ["method", "setting", "MAC speedup", "wall speedup", "loop speedup", f"{self.metric} (held-out)",
                "PSNR vs all-compute", f"{self.metric} (calibration)"]

        def f(v, spec, suffix=""):
            return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{format(v, spec)}{suffix}"

        body = []
        for r in self.rows:
            note = f" ({r.note})" if r.note else ""
            body.append([r.method, r.setting + note, f(r.mac_speedup, ".2f", "x"), f(r.wall_speedup, ".2f", "x"),
                         f(r.loop_speedup, ".2f", "x"), f(r.quality, ".4g"),
                         "-" if r.kind == "reference" else f(r.fidelity_psnr, ".1f", " dB"),
                         f(r.calibration_quality, ".4g")])
        if markdown:
            esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
            return "\n".join(lines)
        widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
        fmt = lambda row: "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)  # noqa: E731
                                    for i, (c, w) in enumerate(zip(row, widths)))
        return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body])

    def to_dict(self) -> dict:
        return {
            "rows": [r.to_dict() for r in self.rows], "metric": self.metric, "skipped": list(self.skipped),
            "prompt_set": self.prompt_set, "calibration": self.calibration, "settings": self.settings,
            "machine": self.machine, "timing": self.timing, "base_model": self.base_model, "preset": self.preset,
            "seconds": self.seconds, "mag_ratios": self.mag_ratios, "verdicts": self.verdicts(),
            "at_speedups": self.at_speedups(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CompareResult":
        names = set(CompareRow.__dataclass_fields__)
        rows = [CompareRow(**{k: v for k, v in r.items() if k in names}) for r in d["rows"]]
        keep = {k: d.get(k) for k in ("skipped", "prompt_set", "calibration", "settings", "machine", "timing",
                                       "base_model", "preset", "seconds", "mag_ratios") if d.get(k) is not None}
        return cls(rows=rows, metric=d["metric"], **keep)

    def save_json(self, path) -> Path:
        """The rows (and the rest) as JSON: ``{"rows": [...], ...}``."""
        from ..utils.io import dumps_json, atomic_write_text

        path = Path(path)
        atomic_write_text(path, dumps_json(self.to_dict()))
        return path

    def figure(self, title: str | None = None):
        """ECAD's frontier as a line, each baseline's sweep as its own marker series (held-out quality vs MAC speedup)."""
        from ..plotting import new_figure, plot_style

        markers = ["s", "^", "v", "D", "P", "X", "<", ">", "h", "*", "p", "d"]
        with plot_style():
            fig = new_figure(7.2, 4.8)
            fig.subplots_adjust(left=0.11, right=0.7, bottom=0.12, top=0.9 if title else 0.96)
            ax = fig.add_subplot()
            ref = self.reference
            ecad = sorted(((r.mac_speedup, r.quality) for r in self.ecad_rows if r.mac_speedup), key=lambda p: p[0])
            pts = [(1.0, ref.quality)] + ecad
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="#1f4e79", linewidth=2.2, markersize=5,
                    label="ECAD frontier", zorder=4)
            for i, method in enumerate(self.methods()):
                rows = sorted((r for r in self.baseline_rows if r.method == method and r.mac_speedup),
                              key=lambda r: r.mac_speedup)
                ax.plot([r.mac_speedup for r in rows], [r.quality for r in rows], markers[i % len(markers)],
                        linestyle=":", linewidth=0.8, markersize=6, label=method, zorder=3)
            ax.plot([1.0], [ref.quality], "k*", markersize=11, label="all-compute", zorder=5)
            ax.set_xlabel("executed MAC speedup (x)")
            ax.set_ylabel(f"{self.metric} on held-out prompts")
            if title:
                ax.set_title(title, fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return fig

    def plot(self, path, title: str | None = None) -> Path:
        from ..plotting import save_png_deterministic

        return save_png_deterministic(self.figure(title), path)

    def describe_machine(self) -> str:
        m = self.machine or {}
        load = m.get("loadavg_at_start")
        return (f"{m.get('cpu', '?')}, {m.get('cpu_count', '?')} CPUs, {m.get('torch_threads', '?')} torch threads, "
                f"torch {m.get('torch', '?')}" + (f", load average {load[0]:.2f} at start" if load else ""))


