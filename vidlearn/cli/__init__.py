"""Console scripts: thin Hydra apps that compose a config, instantiate and run."""
