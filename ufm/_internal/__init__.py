"""ufm's private toolbox: pytree arithmetic, argument validation, float64 switches, the process
runtime (compilation cache, memory-map guard) and scalar numerics.

These are the only private names other ufm modules may import; nothing here is public API.
"""
