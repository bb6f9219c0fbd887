"""CLI commands, one module per area; host/cli.py registers them."""
