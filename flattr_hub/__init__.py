"""Flattr Hub application glue: configuration, command line, demo."""
