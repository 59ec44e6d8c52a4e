"""The sandbox sees the project wherever it is checked out, even under /tmp."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from glossary import runner
from tests.conftest import require


def test_a_read_only_path_under_tmp_is_visible_in_the_sandbox():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    with tempfile.TemporaryDirectory(dir="/tmp") as checkout:
        os.chmod(checkout, 0o755)
        module = Path(checkout) / "module.py"
        module.write_text("print('found')\n")
        argv = runner.bwrap_argv(
            [runner.base_python(), "-I", str(module)], read_only=[sys.base_prefix, checkout]
        )

        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)

    assert result.stdout == "found\n", result.stderr
