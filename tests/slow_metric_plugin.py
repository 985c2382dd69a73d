"""A search plugin for the interruption test: ``fidelity`` that sleeps before scoring.

It gives the test a wide, load-independent window to deliver SIGINT / SIGKILL in the middle of
a search (a tiny model finishes a generation in well under a second). The delay comes from
``ECAD_TEST_METRIC_DELAY`` (seconds, default 0) and does not change any score.
"""

from __future__ import annotations

import os
import time

from ecad_hub.metrics import register_metric
from ecad_hub.metrics.fidelity import FidelityMetric


class SlowFidelity(FidelityMetric):
    name = "slow-fidelity"

    def score(self, images, prompts, reference_images=None):
        time.sleep(float(os.environ.get("ECAD_TEST_METRIC_DELAY", "0")))
        return super().score(images, prompts, reference_images)


register_metric("slow-fidelity", SlowFidelity)
