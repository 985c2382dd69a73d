"""FLUX.1 (``FluxTransformer2DModel``): double- and single-stream groups."""

from families import FamilyCase
from tiny_models import tiny_flux_config

CASES = [
    FamilyCase("flux", {"_class_name": "FluxTransformer2DModel", **tiny_flux_config()}, timestep_scale=1.0),
    FamilyCase("flux-schnell", {"_class_name": "FluxTransformer2DModel", **tiny_flux_config(guidance_embeds=False)},
               batch_size=1, timestep_scale=1.0, notes="no guidance embedding"),
]
