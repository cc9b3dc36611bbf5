"""The command line: info and validate, and that validate catches a broken kernel."""
import subprocess
import sys

import numpy as np

import intquant_kernels as iq
from intquant_kernels import __main__ as cli


def test_info_runs(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"active ISA: {iq.active_isa()}" in out
    for name in iq.ISA_NAMES:
        assert name in out


def test_validate_passes_on_every_isa(capsys):
    assert cli.main(["validate"]) == 0
    out = capsys.readouterr().out
    for isa in iq.available_isas():
        for op in ("quantize", "dequantize", "gemm", "qgemm"):
            assert any(line.split()[:3] == [op, isa, "PASS"] for line in out.splitlines()), (op, isa)


def test_validate_unavailable_isa_is_an_error(capsys):
    missing = next(n for n in iq.ISA_NAMES if n not in iq.available_isas())
    assert cli.main(["validate", "--isa", missing]) == 2


def _off_by_one(fn):
    def broken(*args, **kwargs):
        y = fn(*args, **kwargs)
        if y.size:
            y.reshape(-1)[-1] += 1
        return y

    return broken


def test_validate_fails_on_a_wrong_gemm(monkeypatch, capsys):
    monkeypatch.setattr(iq, "gemm", _off_by_one(iq.gemm))
    assert cli.main(["validate", "--isa", iq.available_isas()[-1]]) == 1
    out = capsys.readouterr().out
    fail = [line for line in out.splitlines() if line.startswith("gemm") and "FAIL" in line]
    assert fail and "mismatch" in fail[0]


def test_validate_fails_on_a_wrong_quantize(monkeypatch, capsys):
    original = iq.quantize

    def nan_not_zero_point(x, *args, **kwargs):
        y = original(x, *args, **kwargs)
        y[np.isnan(x)] = 0 if y.dtype == np.uint8 else 1
        return y

    monkeypatch.setattr(iq, "quantize", nan_not_zero_point)
    assert cli.main(["validate", "--isa", "scalar"]) == 1
    assert "quantize     scalar        FAIL" in capsys.readouterr().out


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "intquant_kernels", "info"], capture_output=True, text=True)
    assert r.returncode == 0 and "available ISAs" in r.stdout
