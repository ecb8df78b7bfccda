"""Readers and writers of other tools' files; they know nothing of the CLI or the server."""
