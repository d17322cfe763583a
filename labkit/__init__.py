"""labkit: the helper library of Sidecar Lab.

It drives kind and kubectl (or the embedded simulator) from notebooks, records container
lifecycles as traces, plots them and checks them. ``import labkit`` stays light: the
Kubernetes client, matplotlib and papermill are imported only when used.
"""

from .errors import (BackendUnavailable, CheckFailed, InvalidInput, LabkitError, ToolError,
                     TraceError, WaitTimeout)
from .lab import connect
from .trace import Event, Pod, Span, Trace, load_trace

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable", "CheckFailed", "Event", "InvalidInput", "LabkitError", "Pod", "Span",
    "ToolError", "Trace", "TraceError", "WaitTimeout", "connect", "load_trace", "__version__",
]
