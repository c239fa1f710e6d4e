"""Procedural demo data sets, deterministic from a seed, generated in seconds; nothing downloaded.

Each generator is `make_<kind>(out, *, seed=0, ...) -> Path`, returning its manifest; see its
module for what the data set teaches. `demo_is_complete(out, make, **arguments)` says whether
`out` already holds a finished run with those arguments.
"""

from vidlearn.demo.cine import make_cine
from vidlearn.demo.completion import demo_is_complete
from vidlearn.demo.images import make_images
from vidlearn.demo.videos import make_videos

__all__ = ["demo_is_complete", "make_cine", "make_images", "make_videos"]
