"""Where the Hydra configs live, for the console scripts and for tests that compose them.

conf/ at the repository root is the one source of the configs. A source checkout or an editable
install reads it in place; a wheel or sdist install carries a copy as the package data of
`vidlearn.conf` (see setup.py), i.e. vidlearn/conf/ inside the installed package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def find_conf_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The config folder of the vidlearn package at `package_dir`: its installed copy, else the
    checkout's conf/ beside it."""
    installed = package_dir / "conf"
    return installed if installed.is_dir() else package_dir.parent / "conf"


CONF_DIR = find_conf_dir()
# What @hydra.main takes as config_path.
CONFIG_PATH = str(CONF_DIR)
