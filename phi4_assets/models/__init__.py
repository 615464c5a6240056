"""Model directories: building the base model, the model store, model references."""
