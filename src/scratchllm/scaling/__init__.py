"""Scaling laws on the user's own runs: IsoFLOP sweeps, Chinchilla fits, compute-optimal sizing."""
