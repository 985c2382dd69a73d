"""The ecad-hub release (one place; ``ecad_hub.__version__`` re-exports it)."""

__version__ = "0.1.0"
