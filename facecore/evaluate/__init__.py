"""Evaluation: metrics on a split, predictions, open set, comparison reports, figures and speed
benchmarks.
"""
