"""Training and evaluation protocols (pre-train, linear probe, fine-tune, semi-supervised, evaluate)."""
