"""The registry domain: names, digests, manifests and the rules of push and pull."""
