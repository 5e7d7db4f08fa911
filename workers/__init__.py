"""Background work: the durable inbox, RQ jobs (drain, sweep, settlement) and the worker."""
