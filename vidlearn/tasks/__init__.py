"""LightningModules (loss, metrics, optimiser wiring) for multiclass, binary and regression tasks."""
