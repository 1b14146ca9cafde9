"""Imported only by tests/test_zygote.py's preload: leaves a Python thread running (fork-unsafe)."""
import isolate_targets

isolate_targets.starts_thread_on_import()
