"""Device agents: how the farm reaches one device. Agents never import Ray or ``farm.run``."""
