"""vidlearn/cli/console.py: what every console script loads before its task."""

import subprocess
import sys


def test_the_shared_entry_point_loads_no_lightning() -> None:
    """Lightning (with torch, torchmetrics and what they pull in) takes seconds to import; the
    scripts that need no model (vidlearn-demo, `--cfg job`, `--help`) should not pay for it at
    start. Failed before the fix: console.py imported Lightning's MisconfigurationException."""
    program = "import sys, vidlearn.cli.console; print('lightning_fabric' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
