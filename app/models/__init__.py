"""Qt table models: thin adapters over the project store (architecture practice 3)."""
