"""What differs between the diffusers versions ecad-hub supports."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def diffusers_takes_dtype() -> bool:
    """diffusers >= 0.36 takes ``from_pretrained(dtype=...)`` (and warns about ``torch_dtype=``);
    0.35 takes only ``torch_dtype=``."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        try:
            from diffusers.pipelines.pipeline_utils import _resolve_dtype  # noqa: F401,F811
        except ImportError:
            return False
    return True


def dtype_kwargs(dtype) -> dict:
    """``{"dtype": dtype}`` or, on a diffusers without it, ``{"torch_dtype": dtype}``: the keyword
    ``from_pretrained`` takes a dtype by, without a FutureWarning."""
    return {"dtype": dtype} if diffusers_takes_dtype() else {"torch_dtype": dtype}
