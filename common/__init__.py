"""The library both sides of the federation use: configs, I/O, augmentation, model, training."""
