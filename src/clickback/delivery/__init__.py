"""Sending outbound postbacks: the dispatcher that claims deliveries, the HTTP sender."""
