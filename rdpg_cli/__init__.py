"""rdpg: recurrent deterministic policy gradients with inverting gradients."""

__version__ = "0.1.0"
