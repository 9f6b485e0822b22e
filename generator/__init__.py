"""DermGAN: pure PyTorch generator library (no Django)."""

__version__ = "0.1.0"
