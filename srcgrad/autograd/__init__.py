"""Placeholder: filled by the eager-runtime work."""
