"""Training tools for engagement and emotion classifiers (XR2Learn pipeline): stage configs and the
mapping of the reference ``configuration.json``."""
