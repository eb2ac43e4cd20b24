"""What the machine is: SLURM clusters (cluster.py), process ranks (ranks.py), GPUs (gpu.py),
durable files (files.py) and the random state of a process (rng.py)."""
