"""Storage drivers: where blobs, manifests and links live."""
