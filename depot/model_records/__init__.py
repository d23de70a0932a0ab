"""Model records: governance metadata of model artifacts, their attached files and releases."""
