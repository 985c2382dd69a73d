"""Test bootstrap: every test talks to an in-process Hub double instead of huggingface.co.

huggingface_hub reads ``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_DISABLE_XET``, ... once, at import
time. pytest imports this file before any test module, so the double is started and the
environment exported here, at import time, before anything imports huggingface_hub, diffusers or
transformers. Keep this file free of those imports at module level.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

if "huggingface_hub" in sys.modules:  # too late: its constants already point at the real Hub
    raise RuntimeError("huggingface_hub was imported before tests/conftest.py could set HF_ENDPOINT")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import hub_double` under any import mode
from hub_double import FAKE_TOKEN, HubDouble  # noqa: E402

HUB = HubDouble(tokens=[FAKE_TOKEN]).start()
atexit.register(HUB.stop)

_HF_HOME = tempfile.mkdtemp(prefix="ecad-hub-tests-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)

for _var in (
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HUGGINGFACE_CO_STAGING",
    "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE", "HF_TOKEN_PATH",
    "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_ENABLE_HF_TRANSFER", "HF_XET_HIGH_PERFORMANCE",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN", "HF_HUB_USER_AGENT_ORIGIN", "HF_DEBUG",
):
    os.environ.pop(_var, None)
os.environ.update({
    "HF_ENDPOINT": HUB.endpoint,
    "HF_HOME": _HF_HOME,  # fresh cache + token path; the developer's ~/.cache/huggingface is never touched
    "HF_TOKEN": FAKE_TOKEN,
    "HF_HUB_DISABLE_TELEMETRY": "1",  # also skips the /api/agent-harnesses lookup for the user agent
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_XET": "1",  # upload_folder would otherwise take the hf_xet pipeline (it is installed)
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "HF_HUB_DISABLE_SYMLINKS_WARNING": "1",
})
for _var in ("NO_PROXY", "no_proxy"):  # never send 127.0.0.1 through a proxy
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))

# The test models are tiny: one torch thread is several times faster than two on a busy 2-core
# machine (thread hand-offs dominate), and keeps float results independent of the core count.
import torch  # noqa: E402  (torch does not import huggingface_hub)

torch.set_num_threads(int(os.environ.get("ECAD_TEST_THREADS", "1")))


@pytest.fixture
def hub() -> HubDouble:
    """The running Hub double, emptied (repos, injected failures, request log) for this test.

    The HF cache under ``HF_HOME`` is shared by the session; pass ``cache_dir=tmp_path`` to
    downloads that must not see files cached by an earlier test.
    """
    HUB.reset()
    return HUB


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A saved tiny random PixArt pipeline folder (read-only for tests), with the search tests'
    calibration prompts in ``prompts.txt`` beside it."""
    from tiny_models import SEARCH_PROMPTS, save_tiny_pipeline, tiny_pixart_pipeline

    path = tmp_path_factory.mktemp("tiny-pixart")
    save_tiny_pipeline(tiny_pixart_pipeline(0), path)
    (path.parent / "prompts.txt").write_text("\n".join(SEARCH_PROMPTS) + "\n")
    return path
