"""Offline analysis: analytic memory model, statistics, crossover search, operator categories."""
