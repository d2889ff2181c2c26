"""jvp, jacobian, hessian, hvp, vhp by source transformation: owned by the forward-mode work (issue 5)."""

__all__: list[str] = []
