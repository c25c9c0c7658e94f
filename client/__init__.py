"""Site-side code: the Flower ClientApp and the tools a hospital runs locally."""
