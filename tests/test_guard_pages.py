"""The tail contract: no kernel reads past the end of its input arrays.

Each input is placed so that its last byte is the last byte before a page
that may not be read (PROT_NONE); a read past the end faults. The checks run in
a subprocess so that a fault is reported as a failing test, not a dead run.
"""
import subprocess
import sys
import textwrap

import pytest

import intquant_kernels as iq

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses mmap/mprotect")

SCRIPT = textwrap.dedent(
    r"""
    import ctypes, mmap, sys
    import numpy as np
    import intquant_kernels as iq

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    PAGE = mmap.PAGESIZE
    keep = []

    def guarded(arr, before):
        # A copy of arr whose last byte sits right before an unreadable page,
        # or with `before`, whose first byte sits right after one.
        arr = np.ascontiguousarray(arr)
        n = arr.nbytes
        pages = (n + PAGE - 1) // PAGE + 1
        buf = mmap.mmap(-1, pages * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        assert libc.mprotect(base if before else base + (pages - 1) * PAGE, PAGE, 0) == 0
        start = PAGE if before else (pages - 1) * PAGE - n
        out = np.frombuffer(buf, dtype=np.uint8, count=n, offset=start).view(arr.dtype).reshape(arr.shape)
        out[...] = arr
        keep.append(buf)
        return out

    def at_page_end(arr):
        return guarded(arr, False)

    def at_page_start(arr):
        return guarded(arr, True)

    iq.set_isa(sys.argv[1])
    rng = np.random.default_rng(0)
    for n in list(range(0, 70)) + [127, 129, 1000, 4097]:
        x = at_page_end(rng.standard_normal(n).astype(np.float32))
        q = iq.quantize(x, 0.1)
        assert np.array_equal(q, iq.reference.quantize(np.array(x), 0.1))
        qe = at_page_end(q)
        assert np.array_equal(iq.dequantize(qe, 0.1), iq.reference.dequantize(q, 0.1))
        xc = at_page_end(rng.standard_normal((max(n, 1) // 7 + 1, 7)).astype(np.float32))
        assert np.array_equal(iq.quantize(xc, np.full(7, 0.2), axis=1, dtype=np.uint8),
                              iq.reference.quantize(np.array(xc), np.full(7, 0.2), axis=1, dtype=np.uint8))
    for m, k, n in [(1, 4, 1), (5, 16, 3), (7, 64, 65), (3, 17, 5), (6, 1, 2), (11, 128, 130)]:
        for dt in (np.uint8, np.int8):
            info = np.iinfo(dt)
            a = at_page_end(rng.integers(info.min, info.max + 1, (m, k), dtype=dt))
            b = at_page_end(rng.integers(-128, 128, (k, n), dtype=np.int8))
            want = iq.reference.gemm(np.array(a), np.array(b))
            assert np.array_equal(iq.gemm(a, b), want)
            assert np.array_equal(iq.gemm(a, iq.pack_weights(b)), want)
    # Convolutions: general, 1x1 NHWC (the in-place GEMM) and depthwise, in
    # both layouts; channel counts off the vector widths.
    for c, oc, k, groups, pad in [(3, 5, 3, 1, 1), (17, 33, 1, 1, 0), (8, 8, 3, 2, 0), (7, 7, 3, 7, 1),
                                  (33, 33, 5, 33, 2), (1, 1, 3, 1, 1)]:
        for layout in ("NCHW", "NHWC"):
            for dt in (np.uint8, np.int8):
                info = np.iinfo(dt)
                shape = (2, c, 9, 11) if layout == "NCHW" else (2, 9, 11, c)
                x = at_page_end(rng.integers(info.min, info.max + 1, shape, dtype=dt))
                w = rng.integers(-128, 128, (oc, c // groups, k, k), dtype=np.int8)
                kw = dict(padding=pad, groups=groups, layout=layout, x_zero_point=int(info.min) + 1)
                assert np.array_equal(iq.conv2d(x, w, **kw), iq.reference.conv2d(np.array(x), w, **kw))
    # NCHW depthwise read from the planes as given (DwconvPlanes kernels),
    # with padding on every side: the loads of the first and last rows
    # (masked, or moved into place at the row edges, or byte by byte in rows
    # narrower than 16) must not touch the pages around the input.
    for (kh, kw_), stride, pad, (h, w_) in [((3, 3), 1, 1, (9, 11)), ((3, 3), 2, (1, 2, 2, 3), (7, 40)),
                                            ((3, 3), 1, (0, 1, 1, 2), (2, 16)), ((1, 4), (1, 2), 2, (3, 17)),
                                            # output rows of 24 and more, which every path's kernel takes
                                            ((3, 3), 1, 1, (4, 30)), ((3, 3), 2, 1, (5, 50)),
                                            ((3, 3), 1, (1, 12, 1, 12), (3, 2)),
                                            ((1, 4), (1, 2), (0, 25, 0, 25), (2, 3)),
                                            ((2, 4), (1, 2), 3, (3, 5)), ((5, 1), 1, 2, (1, 1))]:
        for dt in (np.uint8, np.int8):
            info = np.iinfo(dt)
            x0 = rng.integers(info.min, info.max + 1, (2, 3, h, w_), dtype=dt)
            w = rng.integers(-128, 128, (3, 1, kh, kw_), dtype=np.int8)
            kw = dict(stride=stride, padding=pad, groups=3, x_zero_point=int(info.max))
            want = iq.reference.conv2d(x0, w, **kw)
            for x in (at_page_end(x0), at_page_start(x0)):
                assert np.array_equal(iq.conv2d(x, w, **kw), want)
    # 1x1 NCHW (the GEMM with its roles swapped, packing pixel strips of 16,
    # or whole panels of 64 at once): planes of 63 pixels end one byte short
    # of a whole strip, 16 exactly on one, 128 exactly on a panel.
    for c, h, w_ in [(17, 7, 9), (5, 1, 16), (4, 1, 1), (9, 3, 5), (5, 2, 64), (3, 1, 127)]:
        for dt in (np.uint8, np.int8):
            info = np.iinfo(dt)
            x = at_page_end(rng.integers(info.min, info.max + 1, (2, c, h, w_), dtype=dt))
            w = rng.integers(-128, 128, (6, c, 1, 1), dtype=np.int8)
            kw = dict(x_zero_point=int(info.max), w_zero_point=3)
            want = iq.reference.conv2d(np.array(x), w, **kw)
            assert np.array_equal(iq.conv2d(x, w, **kw), want)
            # The output straight into the caller's array, its last element before the page too.
            out = at_page_end(np.zeros(want.shape, np.int32))
            iq.conv2d(x, w, out=out, **kw)
            assert np.array_equal(out, want)
    print("ok")
    """
)


@pytest.mark.parametrize("isa", iq.available_isas())
def test_no_read_past_the_end(isa):
    r = subprocess.run([sys.executable, "-c", SCRIPT, isa], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (
        f"{isa}: exit {r.returncode} (a negative code is the signal: -11 is a read past the end)\n{r.stderr[-2000:]}"
    )
