"""ocmembers: open-cluster membership in Gaia DR3 with Deep Sets.

An implementation of van Groeningen et al. (2023, A&A 675, A68) as a tool,
and the pipeline that reproduces that paper end to end.
"""

__version__ = "0.1.0"

from .config import Config, load_config  # noqa: E402

__all__ = ["__version__", "Config", "load_config"]
