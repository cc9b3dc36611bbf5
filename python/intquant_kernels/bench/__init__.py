"""The benchmark of ``python -m intquant_kernels bench``, imported only by it
(and by benchmarks/), never by ``import intquant_kernels``.

- :mod:`.cases`: the GEMM shapes and conv layers (shared with benchmarks/);
- :mod:`.peers`: float32 baselines (NumPy, torch) and int8 peers (onnxruntime, torch);
- :mod:`.peaks`: the peak table (instructions per cycle of each path's inner loop);
- :mod:`.machine`: the CPU, the clock estimate, versions;
- :mod:`.measure`: how a call is timed, and the progress line;
- :mod:`.runner`: the run itself (:func:`.runner.run` returns the JSON document);
- :mod:`.report` and :mod:`.plot`: the tables, the JSON file and the PNG.
"""
