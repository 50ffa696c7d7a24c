"""The synthfactory dashboard: live job progress and a dataset catalog read from manifests."""
