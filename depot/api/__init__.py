"""HTTP surfaces: thin adapters from requests to the services."""
