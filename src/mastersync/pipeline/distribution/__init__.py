"""Distribution: change events -> per-subscription queues -> consumer systems."""
