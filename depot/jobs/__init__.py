"""Background work: garbage collection and the periodic runner inside `depot serve`."""
