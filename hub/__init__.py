"""The webhook hub: an aiohttp application that verifies, normalises and durably accepts events."""
