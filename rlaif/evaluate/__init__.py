"""Measurements of the judge and of trained policies: agreement with labels, attacks, win rate, samples,
statistics."""
