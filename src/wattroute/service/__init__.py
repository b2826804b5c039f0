"""The control plane as a service: HTTP API, durable state, auth, metrics."""
