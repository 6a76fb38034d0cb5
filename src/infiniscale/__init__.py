"""infiniscale: an ownCloud Infinite Scale compatible file sync-and-share server."""

__version__ = "0.1.0"
