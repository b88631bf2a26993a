"""okng package."""
