"""The `rlaif` command: one module per command group, shared options, and the rendering of every report."""
