"""gdbench: a distributed benchmarking workflow for the dynamics of gradient descent."""
__version__ = "0.1.0"
