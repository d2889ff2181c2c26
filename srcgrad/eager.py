"""The eager runtime's public names under PyTorch's spelling: owned by the eager-runtime work."""

__all__: list[str] = []
