"""Human spot-checks: sessions, sampling, agreement, the gate before training, and the reviewers (hook,
files, terminal, web)."""
