"""Notebook 05's machinery: one experiment run on several Kubernetes versions, and the blog's
sentences turned into verdicts. It lives here so that the notebook reads like a lab.

A *row* is one version: the blog's cluster (1.28 with the SidecarContainers gate on), the
newest release, and the learner's own lab when its version is neither. The learner's lab plays
the row of its version; the simulator plays the others (one kind cluster runs one version).
A verdict "holds from 1.29" needs a 1.29 run as well: unless a row is 1.29, that run is made
on the simulator, checked and not drawn::

    rows = VersionRows(lab, blog_version="1.28", newest_version="1.37")
    start = rows.run(figures, "1-start-order", "Claim 1", start_order)   # {row label: trace}
    claims = blog_claims(rows, {"start": start, ...}, gate_off=gate_off_trace)
    table, found = verdict_table(claims)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import CheckFailed
from .versions import KubeVersion

# The first release that stops sidecars after the app (kubernetes/kubernetes#120620, v1.29.0).
FIRST_ORDERED = "1.29"


def minor(version: str) -> str:
    """``"1.29.4"`` -> ``"1.29"``."""
    return KubeVersion.parse(version).minor_str


def passes(check: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Whether a check from :mod:`labkit.checks` passes (instead of raising CheckFailed)."""
    try:
        check(*args, **kwargs)
        return True
    except CheckFailed:
        return False


class VersionRows:
    """The versions every experiment of notebook 05 runs on, each with its lab."""

    def __init__(self, lab, *, blog_version: str, newest_version: str, first_ordered: str = FIRST_ORDERED,
                 connect: Callable[..., Any] | None = None):
        if connect is None:
            from .lab import connect
        self.lab = lab
        blog, newest, mine = minor(blog_version), minor(newest_version), minor(lab.kubernetes_version)
        roles = {blog: f"The blog's cluster: {blog} with the SidecarContainers gate",
                 newest: f"The newest release: {newest}"}
        if mine not in roles:
            roles[mine] = f"Your lab: {mine}"
        self.rows: dict[str, Any] = {}
        for version, role in roles.items():
            label = role + (" (your lab)" if version == mine and not role.startswith("Your") else "")
            self.rows[label] = lab if version == mine else connect("sim", version, quiet=True)
        self.blog, self.newest = list(self.rows)[:2]
        self.yours = next(label for label, row_lab in self.rows.items() if row_lab is lab)
        self.checked_only: dict[str, Any] = {} if first_ordered in roles else {
            f"{first_ordered} (simulated, checked only)": connect("sim", first_ordered, quiet=True)}
        self.first = next((label for label, row_lab in self.rows.items()
                           if minor(row_lab.kubernetes_version) == first_ordered), next(iter(self.checked_only), None))
        self.newest_minor = newest

    def __iter__(self) -> Iterator[str]:
        """The labels of the drawn rows, top first."""
        return iter(self.rows)

    def __str__(self) -> str:
        return "Rows of every timeline:\n" + "\n".join(f"  {label}" for label in self.rows)

    def run(self, figures, name: str, title: str, steps: Callable[[Any], None]) -> dict[str, Any]:
        """Run ``steps(lab)`` on a clean slate on every version (yours first), draw the rows one
        above the other as ``<name>.png``, and return each row's trace by label."""
        traces = {}
        everything = {**self.rows, **self.checked_only}
        for label, row_lab in sorted(everything.items(), key=lambda item: item[1] is not self.lab):
            if row_lab is not self.lab:
                print(f"# the same on the simulator: {label}")
            row_lab.reset()
            steps(row_lab)
            traces[label] = row_lab.trace()
        figures.compare([traces[label] for label in self.rows], list(self.rows), name, title=title)
        return traces

    def verdict(self, holds: Callable[[str], bool]) -> str:
        """The verdict from whether a sentence held on the blog's cluster, on 1.29 and on the
        newest release: holds / holds from 1.29 / no longer holds / does not hold."""
        seen = (holds(self.blog), holds(self.first), holds(self.newest))
        named = {(True, True, True): "holds", (False, True, True): "holds from 1.29",
                 (True, True, False): "no longer holds", (False, False, False): "does not hold"}
        return named.get(seen, f"changed: 1.28 {seen[0]}, 1.29 {seen[1]}, {self.newest_minor} {seen[2]}")

    def close(self) -> None:
        """Close the simulated rows' labs (the learner's own lab stays open)."""
        for row_lab in [*self.rows.values(), *self.checked_only.values()]:
            if row_lab is not self.lab:
                row_lab.close()


@dataclass(frozen=True)
class Claim:
    """One sentence of the blog: what it says, the verdict upstream's code gives and where it
    comes from, and how the lab's traces decide it (``found()`` returns a verdict).

    ``holds(row)`` says whether the sentence held on one row's traces (None when it is decided
    by one run, not per version); ``on(rules)`` whether it should hold on a version whose
    behaviour is ``rules`` (a :class:`labkit.versions.Behaviour`)."""

    number: int
    says: str
    upstream: str
    source: str
    found: Callable[[], str]
    holds: Callable[[str], bool] | None = None
    on: Callable[[Any], bool] | None = None


# manifests/claims/4-poststart.yaml: the sidecar's postStart hook is `sleep 6`.
POSTSTART_HOOK_S = 6.0


def blog_claims(rows: VersionRows, traces: dict[str, dict[str, Any]], gate_off: Any) -> list[Claim]:
    """The seven sentences of the blog notebook 05 checks, decided on its traces.

    ``traces`` holds each experiment's traces by row label (``start``, ``restarts``,
    ``shutdown``, ``hooks``, ``policies``, ``unstarted``); ``gate_off`` is the one run of claim 5
    (1.28 with the gate off)."""
    from . import checks

    def t(name: str, row: str):
        return traces[name][row]

    def sidecars_start_before_init_containers(row: str) -> bool:
        return passes(checks.started_before, t("start", row), "proxy", "prepare")

    def sidecar_restarts_while_terminating(row: str) -> bool:
        return passes(checks.gap, t("restarts", row), "DeleteRequested", "flaky Started")

    def app_stops_before_sidecar(row: str) -> bool:
        return passes(checks.stopped_before, t("shutdown", row), "sidecar-deploy", "sws-init")

    def next_waits_for_poststart_and_probe(row: str) -> bool:
        waited = passes(checks.gap, t("hooks", row), "proxy PostStart", "app Started") and \
            float(checks.gap(t("hooks", row), "proxy PostStart", "app Started")) >= POSTSTART_HOOK_S
        return waited and passes(checks.gap, t("shutdown", row), "sws-init StartupProbeSucceeded", "sidecar-deploy Started")

    def only_always_is_valid(row: str) -> bool:
        return not t("policies", row).pods                       # the API server refused the Pod

    def restarted_only_once_started(row: str) -> bool:
        return not passes(checks.restarted, t("unstarted", row), "proxy", 1)

    def gate_in_the_kubelet_is_enough() -> str:
        role = next(c.role for c in gate_off.pods[0].containers if c.name == "proxy")
        return "holds" if role == "sidecar" else "does not hold"

    def per_row(holds: Callable[[str], bool]) -> Callable[[], str]:
        return lambda: rows.verdict(holds)

    return [
        Claim(1, "sidecars start before the init containers", "does not hold",
              "computeInitContainerActions (v1.28.0+); e2e 'three init container and two restartable init containers'",
              per_row(sidecars_start_before_init_containers), sidecars_start_before_init_containers, lambda r: False),
        Claim(2, "sidecars restart while the Pod terminates", "does not hold",
              "KEP-4438 unreleased (kubernetes/kubernetes#140133 open); e2e 'does not restart during termination'",
              per_row(sidecar_restarts_while_terminating), sidecar_restarts_while_terminating, lambda r: False),
        Claim(3, "the app is stopped first, the sidecar last", "holds from 1.29",
              "kubernetes/kubernetes#120620, v1.29.0 (kuberuntime_termination_order.go)",
              per_row(app_stops_before_sidecar), app_stops_before_sidecar, lambda r: r.ordered_termination),
        Claim(4, "the next container waits for postStart and the startup probe", "holds",
              "KEP-753; startContainer runs postStart synchronously; computeInitContainerActions waits for the probe",
              per_row(next_waits_for_poststart_and_probe), next_waits_for_poststart_and_probe, lambda r: True),
        Claim(5, "the gate is needed in the kubelet (only)", "does not hold",
              "dropDisabledPodFields, pkg/api/pod/util.go: the API server drops the field with its gate off",
              gate_in_the_kubelet_is_enough),
        Claim(6, "the only valid restartPolicy is Always", "no longer holds",
              "ContainerRestartRules beta, on from 1.35 (kube_features.go v1.37.2); validateInitContainerRestartPolicy",
              per_row(only_always_is_valid), only_always_is_valid,
              lambda r: not r.container_restart_rules and not r.container_restart_rules_dropped),
        Claim(7, "a sidecar is restarted only if it first started", "does not hold",
              "computeInitContainerActions (v1.37.2); e2e 'starts and exits with exit code 1 continuously'",
              per_row(restarted_only_once_started), restarted_only_once_started, lambda r: False),
    ]


def verdict_table(claims: list[Claim]) -> tuple[str, dict[int, str]]:
    """A Markdown table of the claims with the verdict from the traces next to upstream's."""
    lines = ["| claim | the blog says | verdict from the traces | upstream | source |", "|---|---|---|---|---|"]
    found = {}
    for claim in claims:
        found[claim.number] = claim.found()
        lines.append(f"| {claim.number} | {claim.says} | **{found[claim.number]}** | {claim.upstream} | {claim.source} |")
    return "\n".join(lines), found


def check_your_lab(claims: list[Claim], rows: VersionRows, rules: Any) -> None:
    """CheckFailed unless every per-version claim came out on the learner's own lab as that
    version's kubelet says (``rules``: its :class:`labkit.versions.Behaviour`)."""
    for claim in claims:
        if claim.holds is None or claim.on is None:
            continue
        want, got = claim.on(rules), claim.holds(rows.yours)
        if want != got:
            raise CheckFailed(f"claim {claim.number} ({claim.says}) {'held' if got else 'did not hold'} on your lab "
                              f"({rows.yours}); Kubernetes {rows.lab.kubernetes_version}'s kubelet says it "
                              f"{'holds' if want else 'does not hold'}")


def check_verdicts(claims: list[Claim], found: dict[int, str]) -> None:
    """CheckFailed unless every verdict from the traces is the one upstream's code gives."""
    for claim in claims:
        if found[claim.number] != claim.upstream:
            raise CheckFailed(f"claim {claim.number} ({claim.says}): upstream says '{claim.upstream}' "
                              f"({claim.source}), but the traces say '{found[claim.number]}'")
        print(f"✓ claim {claim.number}: {found[claim.number]}, as upstream")
