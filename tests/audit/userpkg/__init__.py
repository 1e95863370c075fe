"""A stand-in for a user's own package: a model factory and an unlearning plugin."""
