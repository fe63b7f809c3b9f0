"""Internal helpers: random numbers, saving, compile-cache housekeeping, trees."""

__all__ = []
