"""Model catalog (published architectures as data, no weights), loaders and backends."""
