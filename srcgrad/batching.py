"""Batched tangents: a leading axis of basis vectors through one call of generated forward code."""

from __future__ import annotations

from typing import Any

NB = "_nb"
