"""Metrics and accounting helpers; import each from its own module."""
