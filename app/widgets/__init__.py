"""Reusable widgets of the workstation (canvas, part list, dialogs)."""
