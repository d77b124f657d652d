import os
import sys
from pathlib import Path

import pytest

# The fake network and the other helpers live next to the tests and are
# imported by name, from tests/cli/ too.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture()
def report_script(tmp_path: Path) -> Path:
    """``scripts/report.py``: prints what it sees of itself and of eyeshim
    (interpreters.REPORT_SCRIPT), then exits with the code in its argument."""
    from interpreters import REPORT_SCRIPT

    script = tmp_path / "scripts" / "report.py"
    script.parent.mkdir()
    script.write_text(REPORT_SCRIPT)
    return script
