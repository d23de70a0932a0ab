"""The `depot` command line: one module per command group."""
