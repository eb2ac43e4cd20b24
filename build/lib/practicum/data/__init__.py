"""LightningDataModules, one file per data family."""
