"""Offline evaluation: metrics, the trending replay on MIND-format logs,
relatedness on real text, tuning and the HTML report."""
