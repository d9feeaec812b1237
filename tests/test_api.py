from __future__ import annotations

import subprocess
import sys


def test_api_functions_survive_subpackage_imports() -> None:
    code = (
        "import dlcheck\n"
        "import dlcheck.env.report, dlcheck.profile.records, dlcheck.doctor.records\n"
        "assert callable(dlcheck.env) and callable(dlcheck.profile) and callable(dlcheck.doctor)\n"
        "report = dlcheck.env(checks=['host'])\n"
        "assert report.checks, report\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", "import sys\n" + code], check=True, timeout=120)
