"""Test helper: is a rendered page really showing something (not blank, and our colours are on it)?"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

FAILING_RED = (201, 25, 11)  # view.HEALTH_COLORS["failing"]


def ink_share(path: Path) -> float:
    """Share of pixels that are not (near) white."""
    img = Image.open(path).convert("L")
    hist = img.histogram()
    return 1.0 - sum(hist[245:]) / (img.width * img.height)


def color_pixels(path: Path, rgb: tuple[int, int, int], tol: int = 40) -> int:
    img = Image.open(path).convert("RGB").reduce(2)
    r0, g0, b0 = rgb
    return sum(1 for r, g, b in img.getdata() if abs(r - r0) < tol and abs(g - g0) < tol and abs(b - b0) < tol)
