"""Reports on data, training runs and evaluations: metric tables and PNG plots."""
