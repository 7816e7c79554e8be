"""clickback: self-hosted server-to-server affiliate tracking."""
