"""recgym: Gymnasium environments that replay real MovieLens users for RL recommenders."""

__version__ = "0.1.0"
