"""Manifests, decoding, clip sampling, transforms, samplers, datasets and DataModules."""
