"""``ecad-hub compare``: ECAD schedules against the caches people already use, on held-out prompts.

    >>> from ecad_hub.compare import compare
    >>> result = compare(frontier="runs/digits", preset="quick")      # the embedded model by default
    >>> print(result.table())
    >>> result.save_json("compare.json"); result.plot("compare.png")
    >>> for line in result.summary_lines(): print(line)

Methods (:mod:`.baselines`): ECAD schedules (a frontier or schedule files); FORA-style
recompute-every-N, Delta-DiT-style stage-wise block caching and attention-every-N written as
schedules; diffusers' FirstBlockCache, PyramidAttentionBroadcast, FasterCache, TaylorSeer and
MagCache (calibrated on calibration prompts first), each over a sweep of its main knob; cache-dit's
DBCache with and without TaylorSeer (``pip install 'ecad-hub[compare]'``; skipped with a note
otherwise). Cost is measured (:mod:`.runner`): executed MACs of every transformer forward that ran,
wall-clock of the pipeline call and of the denoising loop (interleaved rounds, medians).
:mod:`.card` records a result in a frontier folder (model-card section, ``frontier.json``).
"""

from __future__ import annotations

from .result import TARGET_SPEEDUPS, CompareResult, CompareRow
from .runner import CompareError, compare

__all__ = ["compare", "CompareResult", "CompareRow", "CompareError", "TARGET_SPEEDUPS"]
