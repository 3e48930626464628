"""What the three services share: event contracts, ids, settings and Kafka plumbing."""
