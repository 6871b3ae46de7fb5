"""Authentication and access control: htpasswd through twisted.cred."""
