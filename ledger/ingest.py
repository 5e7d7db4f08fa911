"""Ingestion of normalised events into flattrs: the one path every source (queue, import) uses.

(interface placeholder — being implemented)
"""
