"""The command-line interface: one module per command group, no business logic here."""
