"""The tables the CLI prints, one module per command group (`pipeline`, `evaluate`, `review`, `train`,
`bench`, `constitution`), each rendered from the typed reports' fields. A rate is always printed by
`rlaif.reports.rate_text`."""
