"""ims-nb's benchmarks (``python -m benchmarks.bench_NAME``, ``make bench``); the long drills are in ``drills``."""
