"""Benchmarks, run as modules from the repository's root (``make bench``): ``bench.load`` over
HTTP against servers of its own, ``bench.cpu`` the CPU a request costs in one process without
HTTP, ``bench.engine`` on the engine without HTTP; ``bench.seed_joins``,
``bench.seed_payments`` and ``bench.reference_app`` are the programs ``bench.load`` starts."""
