"""genzoo: a reproducible zoo of generative models on MNIST."""

__version__ = "0.1.0"
