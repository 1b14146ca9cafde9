"""How a sweep runs: planners, the runner, isolated workers, the fork server, budget, progress."""
