"""Knowledge sources: documents promoted into a namespace's searchable knowledge."""
