"""PixArt-alpha / Sigma (``PixArtTransformer2DModel``)."""

from families import FamilyCase
from tiny_models import tiny_pixart_config

CASES = [
    FamilyCase("pixart", {"_class_name": "PixArtTransformer2DModel", **tiny_pixart_config(num_layers=3)}),
    FamilyCase("pixart-sigma-1024", {"_class_name": "PixArtTransformer2DModel",
                                     **tiny_pixart_config(num_layers=2, num_attention_heads=3,
                                                          use_additional_conditions=True)},
               notes="resolution/aspect-ratio conditioning (PixArt-1024)"),
]
