"""Packages for setuptools; everything else is in setup.cfg.

setup.cfg cannot add a package outside `find:`, and the configs need one: conf/ stays at the
repository root (the one source, read in place by a checkout or an editable install) and is
installed as the package data of `vidlearn.conf`, so a wheel carries it inside vidlearn/.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["vidlearn", "vidlearn.*"]), "vidlearn.conf"],
    package_dir={"vidlearn.conf": "conf"},
)
