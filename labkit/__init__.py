"""labkit: the helper library of Sidecar Lab.

It drives kind and kubectl (or the embedded simulator) from notebooks, records container
lifecycles as traces, plots them and checks them. ``import labkit`` stays light: the
Kubernetes client, matplotlib and papermill are imported only when used.
"""

import sys

from .errors import (BackendUnavailable, CheckFailed, Invalid, InvalidInput, LabkitError, NotFound, ToolError,
                     TraceError, WaitTimeout, WillNeverHappen)
from .lab import connect
from .printers import PodTable
from .trace import Event, Pod, Span, Trace, load_trace

__version__ = "0.1.0"


def register_notebook_views(shell=None) -> bool:
    """Show traces and pod tables in IPython and Jupyter the way ``labkit.display`` draws them.

    The trace and ``labkit.printers.PodTable`` are data and import no view; the package registers the view with the running
    IPython shell instead (done on import; ``labkit.display`` itself loads only when a trace
    is shown). Returns whether a shell was found.
    """
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(Trace, _trace_html)
    formatters["text/plain"].for_type(Trace, _trace_pretty)
    formatters["text/html"].for_type(PodTable, _pods_html)
    return True


def _pods_html(table: PodTable) -> str:
    from .display import pods_html

    return pods_html(table)


def _trace_html(trace: Trace) -> str:
    from .display import trace_html

    return trace_html(trace)


def _trace_pretty(trace: Trace, printer, cycle: bool) -> None:
    from .display import trace_text

    printer.text(trace_text(trace))


register_notebook_views()

__all__ = [
    "BackendUnavailable", "CheckFailed", "Event", "Invalid", "InvalidInput", "LabkitError", "NotFound", "Pod",
    "Span", "ToolError", "Trace", "TraceError", "WaitTimeout", "WillNeverHappen", "connect", "load_trace", "register_notebook_views",
    "__version__",
]
