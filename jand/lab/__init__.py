"""The lab: what the experiment notebooks share, one job per module (see `jand.reproduce` for the map)."""
