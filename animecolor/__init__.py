"""animecolor: colorize black-and-white video, anime first."""
__version__ = "0.1.0"

__all__ = ["colorize_video", "__version__"]


def __getattr__(name: str):
    """Lazy exports: ``import animecolor`` stays light (no torch/av until used)."""
    if name == "colorize_video":
        from .pipeline import colorize_video

        return colorize_video
    raise AttributeError(f"module 'animecolor' has no attribute {name!r}")
