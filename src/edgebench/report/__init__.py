"""From logs of many devices to tables, plots and an HTML report."""
