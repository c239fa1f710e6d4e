"""Using trained checkpoints: load them safely, run them on files, evaluate and export them."""
