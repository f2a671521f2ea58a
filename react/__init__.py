"""react: dyadic facial reaction generation and affect recognition."""

__version__ = "0.1.0"
