"""fedharmonize: federated MRI harmonization. The command line lives in fedharmonize.cli."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fedharmonize")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
