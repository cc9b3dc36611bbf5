"""The bench package (intquant_kernels.bench): how it is imported, and its
parts that need no timing. Correctness only: no timing assertions."""
import subprocess
import sys


def test_import_does_not_import_the_bench():
    code = ("import intquant_kernels, sys\n"
            "loaded = [m for m in sys.modules if m.startswith('intquant_kernels.bench')]\n"
            "assert not loaded, loaded\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
