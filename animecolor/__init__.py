"""animecolor: colorize black-and-white video, anime first."""
__version__ = "0.1.0"
