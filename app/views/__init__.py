"""The workstation's modes, one view per file (Capture, Label, Train, Explain, Live sort)."""
