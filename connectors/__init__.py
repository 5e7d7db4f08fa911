"""Platform connectors: each turns a platform's own events into normalised events."""
