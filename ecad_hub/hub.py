"""Hugging Face Hub I/O for frontiers: download, push (one commit), pull, browse, model card.

Everything goes through :mod:`huggingface_hub` (``HfApi``, ``snapshot_download``,
``hf_hub_download``, ``ModelCard``); the endpoint is whatever ``HF_ENDPOINT`` says.

    >>> from ecad_hub import browse
    >>> for s in browse(base_model="PixArt-alpha/PixArt-XL-2-256x256"):
    ...     print(s.repo_id, s.speedups, s.qualities)
    user/pixart-ecad (1.0, 1.52, 2.68) (0.93, 0.92, 0.88)

    >>> from ecad_hub.hub import pull
    >>> pull("user/pixart-ecad", out="pixart-ecad")     # JSON + README + PNGs, nothing else
    PosixPath('pixart-ecad')
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .errors import EcadError, FrontierError, HubError

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import CommitInfo, ModelCard

    from .frontier import Frontier

logger = logging.getLogger(__name__)

#: Tags every ECAD repo carries (``browse`` lists repos tagged ``ecad``).
ECAD_TAGS = ("ecad", "diffusion-caching", "diffusers")

CITATION = """\
@inproceedings{ecad2026,
  title     = {Evolutionary Caching to Accelerate Your Off-the-Shelf Diffusion Model},
  author    = {Aggarwal, Anirud and Shrivastava, Abhinav and Gwilliam, Matthew},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2026}
}"""


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------

def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _server_message(err: Exception) -> str:
    """The one-line reason of a huggingface_hub HTTP error (status and the server's message)."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    message = getattr(err, "server_message", None) or ""
    if not message:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    message = " ".join(message.split())
    if len(message) > 200:
        message = message[:197] + "..."
    return f"HTTP {status}: {message}" if status else message


def _hub_error(err: Exception, repo_id: str, what: str, revision: str | None = None) -> HubError:
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(err, GatedRepoError):
        return HubError(f"{repo_id}: {what} failed: the repo is gated; accept its terms on the Hub and pass a token",
                        path=repo_id)
    if isinstance(err, RepositoryNotFoundError):
        return HubError(f"{repo_id}: no such model repo on {_endpoint()} (or it is private and no valid token "
                        f"was given)", path=repo_id)
    if isinstance(err, RevisionNotFoundError):
        return HubError(f"{repo_id}: no revision {revision!r} (branch, tag or commit sha)", path=repo_id)
    if isinstance(err, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return HubError(f"{repo_id}: {what} failed: not in the local cache and the Hub cannot be reached "
                        f"(offline mode or no network); run once online first", path=repo_id)
    return HubError(f"{repo_id}: {what} failed ({_server_message(err)})", path=repo_id)


def _hub_exceptions() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import EntryNotFoundError, HTTPError

    return (HTTPError, EntryNotFoundError, OSError, ValueError)


# --------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------

def download_files(
    repo_id: str,
    allow_patterns: list[str],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> tuple[Path, str]:
    """``snapshot_download`` only the files matching ``allow_patterns``; returns ``(folder, commit sha)``.

    Files outside the patterns (weights, pickles, code) are never requested.
    """
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(
            repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
            allow_patterns=list(allow_patterns),
        ))
    except _hub_exceptions() as e:
        raise _hub_error(e, repo_id, "download", revision) from None
    # snapshot_download returns <cache>/models--ns--name/snapshots/<commit sha>
    commit = folder.name if len(folder.name) == 40 and all(c in "0123456789abcdef" for c in folder.name) else None
    return folder, commit


def pull(
    repo_id: str,
    *,
    revision: str | None = None,
    out: str | os.PathLike | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> Path:
    """Download an ECAD repo's JSON files, model card and PNGs (nothing else) and validate them.

    With ``out``, the files are copied into that folder (atomically, as
    :meth:`Frontier.save_pretrained` writes); otherwise the cache snapshot folder is returned.
    ``Frontier.load(folder)`` then works offline.
    """
    from .frontier import CONFIG_FILE, PULL_PATTERNS, Frontier, write_folder

    folder, commit = download_files(repo_id, PULL_PATTERNS, revision=revision, token=token, cache_dir=cache_dir,
                                    local_files_only=local_files_only)
    label = f"{repo_id}@{commit[:7]}" if commit else repo_id
    if not (folder / CONFIG_FILE).is_file():
        raise FrontierError(f"{label} is not an ECAD repo: it has no {CONFIG_FILE}", path=repo_id)
    Frontier._load_folder(folder, label=label, repo_id=repo_id, commit=commit)  # validate before copying
    if out is None:
        return folder
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    write_folder(Path(out), files)
    return Path(out)


# --------------------------------------------------------------------------------------------
# push
# --------------------------------------------------------------------------------------------

def git_blob_sha(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's ``blob_id``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _same_file(sibling, data: bytes) -> bool:
    lfs = getattr(sibling, "lfs", None)
    if lfs is not None:
        return getattr(lfs, "sha256", None) == hashlib.sha256(data).hexdigest()
    return sibling.blob_id == git_blob_sha(data)


def push_frontier(
    frontier: "Frontier",
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
) -> "CommitInfo | None":
    """See :meth:`Frontier.push_to_hub`."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    from .frontier import CONFIG_FILE, HEATMAPS_DIR, SCHEDULES_DIR

    files = frontier.render(repo_id=repo_id)  # before touching the Hub: a failure here changes nothing
    api = HfApi(token=token)
    branch = revision or "main"
    try:
        created = not api.repo_exists(repo_id)
        if created:
            api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.model_info(repo_id, revision=branch, files_metadata=True)
    except _hub_exceptions() as e:
        raise _hub_error(e, repo_id, "push", branch) from None
    remote = {s.rfilename: s for s in info.siblings or []}
    foreign = sorted(p for p in remote if p != ".gitattributes")
    if foreign and CONFIG_FILE not in remote:
        raise HubError(f"{repo_id} already holds files ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}) "
                       f"and is not an ECAD repo (no {CONFIG_FILE}); push to a new repo", path=repo_id)
    ops: list = [CommitOperationAdd(path, data) for path, data in files.items()
                 if path not in remote or not _same_file(remote[path], data)]
    stale = sorted(p for p in remote if p.startswith((f"{SCHEDULES_DIR}/", f"{HEATMAPS_DIR}/")) and p not in files)
    ops += [CommitOperationDelete(p) for p in stale]
    if not ops:
        logger.info("%s@%s already holds this frontier; nothing to commit", repo_id, branch)
        return None
    added = sorted(op.path_in_repo for op in ops if isinstance(op, CommitOperationAdd))
    message = commit_message or f"ECAD frontier: {len(frontier)} schedules for {frontier.base_model}"
    description = "\n".join([f"- update {p}" for p in added] + [f"- delete {p}" for p in stale])
    try:
        return api.create_commit(repo_id, ops, commit_message=message, commit_description=description,
                                 revision=branch, create_pr=create_pr, parent_commit=info.sha)
    except _hub_exceptions() as e:
        if created:  # leave no empty repo behind: it did not exist before this push
            try:
                api.delete_repo(repo_id)
            except _hub_exceptions():
                pass
        state = "the repo was not created" if created else "the repo is unchanged"
        raise HubError(f"{repo_id}: push failed ({_server_message(e)}); nothing was committed, {state}",
                       path=repo_id) from None


# --------------------------------------------------------------------------------------------
# model card
# --------------------------------------------------------------------------------------------

def _prompt_set(frontier: "Frontier") -> tuple[str | None, str | None]:
    prompts = (frontier.search or {}).get("prompt_set") or {}
    if prompts.get("name"):
        return prompts["name"], prompts.get("sha256")
    for s in frontier:
        for q in s.metrics.get("quality", []):
            if q.get("prompt_set"):
                return q["prompt_set"], q.get("prompt_set_sha256")
    return None, None


def _eval_results(frontier: "Frontier") -> list:
    from huggingface_hub import EvalResult

    prompt_set, _ = _prompt_set(frontier)
    dataset = prompt_set or "unspecified-prompts"
    results = []
    for s in frontier:
        common = dict(task_type="text-to-image", task_name=f"Text-to-image with schedule {s.name}",
                      dataset_type=dataset, dataset_name=dataset, dataset_config=s.name)
        for q in s.metrics.get("quality", []):
            results.append(EvalResult(metric_type=q["metric"], metric_name=q["metric"],
                                      metric_value=float(q["value"]), **common))
        if s.mac_speedup is not None:
            results.append(EvalResult(metric_type="mac_speedup", metric_name="MAC speedup",
                                      metric_value=round(float(s.mac_speedup), 4), **common))
        latency = s.metrics.get("latency") or {}
        if "speedup" in latency:
            results.append(EvalResult(metric_type="latency_speedup", metric_name="Latency speedup",
                                      metric_value=float(latency["speedup"]), **common))
    return results


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def model_card(frontier: "Frontier", repo_id: str | None = None) -> "ModelCard":
    """The README of an ECAD repo: Hub metadata (base model, tags, model-index) and a usage guide.

    Deterministic: the same frontier and ``repo_id`` always give the same text.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from .frontier import REPO_ID

    repo = repo_id or "your-username/your-ecad-repo"
    tags = list(ECAD_TAGS) + ([frontier.family] if frontier.family else [])
    data = ModelCardData(
        base_model=frontier.base_model,
        base_model_relation="adapter",  # schedules act on the base model's own weights
        library_name="ecad-hub",
        pipeline_tag="text-to-image",
        tags=tags,
        model_name=repo.split("/")[-1],
        eval_results=_eval_results(frontier) or None,
    )
    names = frontier.names
    fastest = names[-1]
    steps = frontier.num_inference_steps
    size = f"{frontier.height}x{frontier.width}" if frontier.resolutions else "the base model's default size"
    metric = frontier.metric
    base_link = (f"[`{frontier.base_model}`](https://huggingface.co/{frontier.base_model})"
                 if REPO_ID.match(frontier.base_model) else f"`{frontier.base_model}`")
    lines = [
        f"# ECAD caching schedules for {frontier.base_model}",
        "",
        f"Learned caching schedules for {base_link} "
        f"({frontier.architecture.transformer_class}), found with ECAD, *Evolutionary Caching to Accelerate "
        f"Your Off-the-Shelf Diffusion Model* (ICLR 2026). A schedule says, for each of the {steps} denoising "
        f"steps, which transformer sub-modules are recomputed and which reuse their output from an earlier step. "
        f"The {len(frontier)} schedules below trade compute for quality along a Pareto frontier searched at "
        f"{size}. This repo holds no weights: the base model is loaded from its own repo"
        + (f" at revision `{frontier.base_model_revision}`" if frontier.base_model_revision else "") + ".",
        "",
        "## Usage",
        "",
        "```python",
        "import torch",
        "from ecad_hub import ECADPipeline",
        "",
        f'pipe = ECADPipeline.from_pretrained("{repo}", schedule="{frontier.default}", torch_dtype=torch.float16)',
        'pipe.to("cuda")',
        f'image = pipe("a photo of a red fox in the snow").images[0]  # {steps} steps, the schedule\'s',
        "",
        f'pipe.set_schedule("{fastest}")   # or by MAC speedup: pipe.set_schedule(2.0)',
        "pipe.disable_cache()            # the unmodified base model",
        "```",
        "",
        f"From the command line: `ecad-hub generate --repo {repo} --schedule {frontier.default} "
        f'--prompt "a photo of a red fox" -o fox.png`. Install with `pip install ecad-hub`.',
        "",
        "## Schedules",
        "",
        f"MAC speedups count the transformer's multiply-accumulates against computing everything at every step"
        f" ({steps} steps). `{frontier.default}` is the default.",
        "",
        f"| Schedule | MAC speedup | {_md(metric) if metric else 'Quality'} | Latency | Computed |",
        "|---|---|---|---|---|",
    ]
    for s in frontier:
        latency = s.metrics.get("latency") or {}
        lat = f"{latency['ms_per_image']:.1f} ms" if "ms_per_image" in latency else "-"
        if "speedup" in latency:
            lat += f" ({latency['speedup']:.2f}x)"
        quality = frontier.quality(s)
        mark = " (default)" if s.name == frontier.default else ""
        lines.append(f"| `{s.name}`{mark} | " + (f"{s.mac_speedup:.2f}x" if s.mac_speedup else "-")
                     + f" | {'-' if quality is None else format(quality, '.4g')} | {lat} | "
                     f"{100 * s.fraction_computed():.1f}% |")
    lines += ["", "## Frontier", "", "![Quality against MAC speedup](frontier.png)", "",
              "## Caching masks", "",
              "Rows are denoising steps, columns are transformer blocks; dark cells are recomputed, light cells "
              "reuse the cached output.", ""]
    for s in frontier:
        lines += [f"### {s.name}", "", f"![{s.name}](heatmaps/{s.name}.png)", ""]
    lines += ["## Provenance", ""]
    search = frontier.search
    prompt_set, prompt_sha = _prompt_set(frontier)
    facts = [("Base model", f"`{frontier.base_model}`"
              + (f" @ `{frontier.base_model_revision}`" if frontier.base_model_revision else "")),
             ("Pipeline", f"`{frontier.pipeline_class}`" if frontier.pipeline_class else None),
             ("Transformer", f"`{frontier.architecture.describe()}`"),
             ("Resolution", ", ".join(f"{h}x{w}" for h, w in frontier.resolutions) or None),
             ("Steps", str(steps)),
             ("Guidance scale", f"{frontier.guidance_scale:g}" if frontier.guidance_scale is not None else None),
             ("Quality metric", f"`{metric}`" if metric else None),
             ("Prompt set", f"`{prompt_set}`" + (f" (sha256 `{prompt_sha}`)" if prompt_sha else "")
              if prompt_set else None)]
    if search:
        facts += [("Population", str(search["population"]) if "population" in search else None),
                  ("Generations", str(search["generations"]) if "generations" in search else None),
                  ("Seed", str(search["seed"]) if "seed" in search else None),
                  ("ecad-hub version", f"`{search['ecad_hub_version']}`" if "ecad_hub_version" in search else None)]
    else:
        facts.append(("Search", "assembled from schedule files (no search provenance recorded)"))
    lines += [f"- {k}: {v}" for k, v in facts if v is not None]
    lines += ["", "Files: `ecad_config.json` (settings), `frontier.json` (index), `schedules/*.json` "
              "(one schedule each, format v1).", "",
              "## Citation", "", "```bibtex", CITATION, "```", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


# --------------------------------------------------------------------------------------------
# browse
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrontierSummary:
    """One ECAD repo as :func:`browse` lists it, read from its ``frontier.json`` and Hub info.

    Attributes:
        repo_id: the ECAD repo.
        base_model: the model its schedules are for.
        resolution: ``(height, width)`` searched, if recorded.
        steps: denoising steps of the schedules.
        names, speedups, qualities: per schedule (most to least compute); a speedup or
            quality is ``None`` when not recorded.
        metric: the quality metric, if any.
        default: the default schedule.
        transformer_class: the transformer the schedules are written for.
        likes, downloads, last_modified, sha: Hub info of the repo (``sha``: the commit read).
    """

    repo_id: str
    base_model: str
    resolution: tuple[int, int] | None
    steps: int
    names: tuple[str, ...]
    speedups: tuple[float | None, ...]
    qualities: tuple[float | None, ...]
    metric: str | None
    default: str
    transformer_class: str
    likes: int = 0
    downloads: int = 0
    last_modified: _dt.datetime | None = None
    sha: str | None = None

    @property
    def max_speedup(self) -> float | None:
        known = [s for s in self.speedups if s is not None]
        return max(known) if known else None

    def points(self) -> list[tuple[float, float]]:
        """``(speedup, quality)`` of every schedule recording both (for plots)."""
        return [(s, q) for s, q in zip(self.speedups, self.qualities) if s is not None and q is not None]


def _summary(model, token) -> FrontierSummary:
    from huggingface_hub import hf_hub_download

    from .utils.io import read_json
    from .frontier import INDEX_FILE, _check_document

    siblings = getattr(model, "siblings", None)
    if siblings is not None and INDEX_FILE not in {s.rfilename for s in siblings}:
        raise FrontierError(f"no {INDEX_FILE}")
    try:
        path = hf_hub_download(model.id, INDEX_FILE, revision=getattr(model, "sha", None) or None, token=token)
    except _hub_exceptions() as e:
        raise _hub_error(e, model.id, f"download of {INDEX_FILE}") from None
    index = read_json(path, error_cls=FrontierError)
    _check_document(index, "frontier-v1", INDEX_FILE)
    metric = index.get("metric")
    entries = index["schedules"]

    def quality(entry) -> float | None:
        return next((q["value"] for q in entry["quality"] if metric is None or q["metric"] == metric), None)

    if index["default_schedule"] not in {e["name"] for e in entries}:
        raise FrontierError(f"{INDEX_FILE}: default schedule {index['default_schedule']!r} is not listed")
    res = index.get("resolutions")
    return FrontierSummary(
        repo_id=model.id,
        base_model=index["base_model"],
        resolution=(res[0]["height"], res[0]["width"]) if res else None,
        steps=index["num_inference_steps"],
        names=tuple(e["name"] for e in entries),
        speedups=tuple(e["mac_speedup"] for e in entries),
        qualities=tuple(quality(e) for e in entries),
        metric=metric,
        default=index["default_schedule"],
        transformer_class=index["transformer_class"],
        likes=getattr(model, "likes", 0) or 0,
        downloads=getattr(model, "downloads", 0) or 0,
        last_modified=getattr(model, "last_modified", None),
        sha=getattr(model, "sha", None),
    )


def browse(
    base_model: str | None = None,
    author: str | None = None,
    search: str | None = None,
    limit: int | None = 50,
    token: str | bool | None = None,
) -> list[FrontierSummary]:
    """List ECAD repos on the Hub (tag ``ecad``), reading only each repo's ``frontier.json``.

    Args:
        base_model: only repos whose card declares this base model (``base_model:<id>`` tag).
        author: only repos of this user or organisation.
        search: a substring of the repo id.
        limit: at most this many repos (Hub listing order).
        token: for private repos.

    Repos whose ``frontier.json`` is missing, invalid or unreadable are skipped with a
    ``UserWarning`` naming the repo and the reason; the listing itself never fails because
    of one repo. Raises :class:`~ecad_hub.errors.HubError` if the listing cannot be fetched.

    Example::

        >>> [s.repo_id for s in browse(base_model="black-forest-labs/FLUX.1-dev")]
        ['user/flux-ecad']
    """
    from huggingface_hub import HfApi

    filters = ["ecad"] + ([f"base_model:{base_model}"] if base_model else [])
    try:
        models = list(HfApi(token=token).list_models(filter=filters, author=author, search=search, limit=limit,
                                                     full=True, token=token))
    except _hub_exceptions() as e:
        raise HubError(f"cannot list ECAD repos on {_endpoint()} ({_server_message(e)})") from None

    def one(model):
        try:
            return _summary(model, token), None
        except EcadError as e:
            return None, str(e)
        except Exception as e:  # noqa: BLE001 - one odd repo never breaks the listing
            return None, f"{type(e).__name__}: {e}"

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(models)))) as pool:
        outcomes = list(pool.map(one, models))
    summaries = []
    for model, (summary, problem) in zip(models, outcomes):
        if summary is None:
            warnings.warn(f"browse: skipping {model.id}: {problem}", stacklevel=2)
        elif base_model and summary.base_model != base_model:
            warnings.warn(f"browse: skipping {model.id}: its frontier.json is for {summary.base_model}, "
                          f"its card says {base_model}", stacklevel=2)
        else:
            summaries.append(summary)
    return summaries


def summaries_table(summaries: Iterable[FrontierSummary]) -> str:
    """A text table of :func:`browse` results: repo, base model, resolution, steps, speedups, quality."""
    rows = [["repo", "base model", "resolution", "steps", "MAC speedups", "quality"]]
    for s in summaries:
        speedups = ", ".join("-" if v is None else f"{v:.2f}x" for v in s.speedups)
        known = [q for q in s.qualities if q is not None]
        quality = f"{s.metric or 'quality'} {min(known):.4g}..{max(known):.4g}" if known else "-"
        rows.append([s.repo_id, s.base_model, f"{s.resolution[0]}x{s.resolution[1]}" if s.resolution else "-",
                     str(s.steps), speedups, quality])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
