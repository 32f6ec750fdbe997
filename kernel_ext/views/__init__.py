"""Views: pure functions from a snapshot to something displayable. They never call the engine."""

__all__: list[str] = []
