"""Faust agents, one module per concern; each exposes ``register(app, settings)``."""
