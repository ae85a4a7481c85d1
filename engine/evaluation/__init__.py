"""Offline evaluation of rankings (metrics for search quality, ANN recall, latency)."""
