"""Training: the config, the loop and its callbacks, DDP, background jobs and the runs it writes."""
