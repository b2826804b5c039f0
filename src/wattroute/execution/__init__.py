"""Execution engines that run real work for the controller: Ray (sites as Ray nodes, batch
jobs as checkpointing actors, inference replicas behind a gateway)."""
