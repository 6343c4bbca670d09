"""Graph passes. Each module holds one pass with the entry point ``run(graph) -> graph``."""
