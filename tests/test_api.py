from __future__ import annotations

import subprocess
import sys


def test_api_functions_survive_subpackage_imports() -> None:
    code = (
        "import dlcheck\n"
        "import dlcheck.env.records, dlcheck.profile.records, dlcheck.doctor.records\n"
        "assert callable(dlcheck.env) and callable(dlcheck.profile) and callable(dlcheck.doctor)\n"
        "report = dlcheck.env(checks=['host'])\n"
        "assert report.checks, report\n"
        "import dlcheck.watch.records, dlcheck.trace.records\n"
        "assert callable(dlcheck.watch) and callable(dlcheck.trace)\n"
        "assert list(dlcheck.watch(range(3), verdict=False)) == [0, 1, 2]\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", "import sys\n" + code], check=True, timeout=120)
