"""FazAI: an AI operations pilot for Linux servers and OPNsense firewalls."""

__version__ = "0.1.0"
