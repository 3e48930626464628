"""dohawatch: alerts on the Doha ceasefire and hostage talks from news feeds, via Kafka."""
