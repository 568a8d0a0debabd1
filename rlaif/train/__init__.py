"""Training from the exported data: one module per trainer, listed in `registry`, sharing `common`."""
