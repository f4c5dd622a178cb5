"""The matcher shard: tag-filtered 1:N search over templates, durable across restarts."""
