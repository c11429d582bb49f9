"""Real Postgres, Kafka and S3 servers for integration tests, isolated per test."""
