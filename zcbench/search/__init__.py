"""Search and calibration jobs built on the scoring engine and the results store.

* ``zcbench.search.etas`` — ETAS's regularized evolution over a benchmark's stored pool
  (Yang & Liu, Findings of ACL 2024), with any registered proxy (``none`` = random).
* ``zcbench.search.zerolm_alpha`` — ZeroLM's two strategies for its balance alpha
  (benchmark sampling, heuristic correlation) and the committed ZeroLM tables.
"""
