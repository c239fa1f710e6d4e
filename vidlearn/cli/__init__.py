"""Console scripts: thin apps (Hydra, or argparse for vidlearn-manifest) that compose and run."""
