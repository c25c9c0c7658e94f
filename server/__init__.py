"""Consortium-side code: the Flower ServerApp, strategy, checkpoints and publishing."""
