"""Subcommands of the `edgebench` CLI; see edgebench.cli for the contract each module follows."""
