"""Benchmarks of ``make bench``; each prints its figures next to a baseline of the same run."""

import warnings

# nameko imports eventlet, which announces its own deprecation on import.
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
