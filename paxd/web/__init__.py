"""The twisted.web resource tree for the registry API."""
