"""latfarm: the measurement farm (inventory, protocol, builds, store, Ray dispatch)."""

__version__ = "0.1.0"
