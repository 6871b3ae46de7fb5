"""TLS: certificates from files (and, later, from ACME)."""
