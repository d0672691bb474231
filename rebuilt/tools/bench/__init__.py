"""Benchmarks: specs (TOML) → commands → runs → parsed records → stored runs → compare, plot.

Modules stay import-light (no torch, no matplotlib at import time):
``spec`` loads and expands bench specs, ``preflight`` checks the GPU and the target
environment in seconds, ``run`` executes a spec, ``parse`` reads sglang's printed
logs and JSONL, ``store`` keeps each run in ``<workdir>/bench/<run-id>/``,
``stats``/``compare`` judge two runs, ``plot`` draws them, and ``gpu_health`` is a
stand-alone torch microbenchmark run with the target interpreter.
"""
