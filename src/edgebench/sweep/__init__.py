"""What to measure: the sweep spec, TOML spec files, units, shipped suites and the plan."""
