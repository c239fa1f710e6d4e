"""Where the Hydra configs live, for the console scripts and for tests that compose them."""

from pathlib import Path

# conf/ sits at the repository root, beside the package (editable install or source checkout).
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
# What @hydra.main takes as config_path.
CONFIG_PATH = str(CONF_DIR)
