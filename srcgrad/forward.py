"""Forward mode (jvp) by source transformation: owned by the forward-mode work (issue 5)."""
