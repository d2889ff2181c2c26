"""Derivative checkers (gradcheck): owned by the foundation work."""
