"""RQ jobs, the queues they run on, and the clock."""
