"""One module per Make target, each with ``run(cfg)``; no stage imports another.

Shared by the stages: :mod:`.products` (every product's path and reader),
:mod:`.runner` (per-cluster execution, failures, timings) and :mod:`.plots`.
"""
