"""Experiments that reproduce results from the literature with rnnkit (``rnnkit experiment ...``)."""

from rnnkit.experiments.memory import CELLS, PRESETS, MemoryConfig, make_config, results_table, run_memory

__all__ = ["MemoryConfig", "PRESETS", "CELLS", "make_config", "run_memory", "results_table"]
