"""Compiler transforms (grad, value_and_grad, vjp, jvp, ...): owned by the compiler work."""

__all__: list[str] = []
