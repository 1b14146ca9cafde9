"""The log schema, the writer, the readers and the importers of foreign logs."""
