"""Phantoms, local simulation runner, evaluation against baselines and the report."""
