"""The `tickring` command line."""
