"""imagine-assist: annotation assistant for aquatic-science imagery."""

__version__ = "0.1.0"
