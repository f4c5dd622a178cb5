"""Model files: the pinned catalog, the fetcher and the on-disk manifest."""
