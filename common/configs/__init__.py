"""Pydantic configs, one module per topic, each validated once at the edge."""
