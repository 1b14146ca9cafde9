"""Device and host facts: sysfs, NVML, Jetson rails, power sampling, energy, provenance, environment."""
