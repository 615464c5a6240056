"""The run profiles (tiny, small, full; validated when loaded) and the paths a run uses."""
