"""The benchmark: every method on the same held-out queries, quality with intervals and latency.

``python -m engine bench`` (and ``make bench``) runs it and writes ``reports/``; this is the one
meaning of "bench" in the project. ``harness`` runs the methods, ``report`` writes JSON, Markdown
and the README section, ``judgments`` scores methods against human grades, ``robustness`` tries
every bad input and artifact fault, ``jobs`` runs a quick benchmark in the background for the app.
"""
