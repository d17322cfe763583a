"""One table of what each Kubernetes version does with native sidecars.

Every per-version difference in labkit (API validation, kubelet behaviour, kind configs)
is read from here, so that "what changed in 1.29" has exactly one answer in the code.
Sources: ../reference in the design notes, KEP-753's kep.yaml, and the kind release notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import InvalidInput

SIDECAR_GATE = "SidecarContainers"

OLDEST_MINOR = 27
NEWEST_MINOR = 37


@dataclass(frozen=True, order=True)
class KubeVersion:
    """A Kubernetes version given as ``1.29`` or ``1.29.3`` (a leading ``v`` is accepted)."""

    major: int
    minor: int
    patch: int | None = None

    @classmethod
    def parse(cls, text: str | "KubeVersion", *, field: str = "k8s_version") -> "KubeVersion":
        if isinstance(text, KubeVersion):
            return text
        match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?", str(text).strip())
        if not match:
            raise InvalidInput(f"not a Kubernetes version: {text!r} (expected e.g. 1.29 or 1.29.3)", field=field)
        major, minor, patch = match.groups()
        version = cls(int(major), int(minor), int(patch) if patch is not None else None)
        if version.major != 1 or not OLDEST_MINOR <= version.minor <= NEWEST_MINOR:
            raise InvalidInput(
                f"unsupported Kubernetes version {text!r}: labkit knows 1.{OLDEST_MINOR} to 1.{NEWEST_MINOR}",
                field=field,
            )
        return version

    @property
    def minor_str(self) -> str:
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch if self.patch is not None else 0}"


@dataclass(frozen=True)
class Behaviour:
    """What one Kubernetes minor does, after applying the feature gates in force."""

    minor: int
    # The SidecarContainers gate: "absent" (<=1.27, the field does not exist), "alpha"
    # (1.28, default off), "beta" (1.29-1.32, default on), "ga" (1.33-1.35, locked on),
    # "removed" (1.36+, setting it breaks the components).
    sidecar_gate: str
    sidecars_enabled: bool
    # Sidecars stopped after the app containers, in reverse order (PR #120620, 1.29).
    ordered_termination: bool
    # Regular containers may set restartPolicy (ContainerRestartRules, alpha 1.34, on 1.35).
    container_restart_rules: bool
    # The pod worker requeues at the exact CrashLoopBackOff expiry (PR #133066, 1.35);
    # before that a backed-off restart waits for a resync in [10 s, 15 s).
    exact_backoff_requeue: bool
    # The Job controller writes SuccessCriteriaMet before Complete (1.31+).
    job_success_criteria_met: bool
    feature_gates: dict[str, bool] = field(default_factory=dict)


def _gate_stage(minor: int) -> str:
    if minor <= 27:
        return "absent"
    if minor == 28:
        return "alpha"
    if minor <= 32:
        return "beta"
    if minor <= 35:
        return "ga"
    return "removed"


def gate_default(minor: int) -> bool | None:
    """The SidecarContainers gate's default, or None where the gate does not exist."""
    stage = _gate_stage(minor)
    return {"alpha": False, "beta": True, "ga": True}.get(stage)


def gate_settable(minor: int) -> bool:
    """Whether ``SidecarContainers`` may appear in a component's ``--feature-gates`` at all."""
    return _gate_stage(minor) in ("alpha", "beta", "ga")


def lab_feature_gates(version: str | KubeVersion) -> dict[str, bool]:
    """The gates a labkit-made cluster runs with: the blog's kind config turns sidecars on in 1.28.

    Every backend uses these when the caller gives no gates, so "1.28" means the blog's
    cluster everywhere; pass ``{"SidecarContainers": False}`` to see 1.28's default.
    """
    minor = KubeVersion.parse(version).minor
    return {SIDECAR_GATE: True} if _gate_stage(minor) == "alpha" else {}


def behaviour(version: str | KubeVersion, feature_gates: dict[str, bool] | None = None) -> Behaviour:
    """The behaviour of ``version`` with ``feature_gates`` applied; bad gates are InvalidInput."""
    version = KubeVersion.parse(version)
    minor = version.minor
    gates = dict(feature_gates or {})
    stage = _gate_stage(minor)
    for name, value in gates.items():
        if name != SIDECAR_GATE:
            raise InvalidInput(f"unknown feature gate {name!r} (labkit models only {SIDECAR_GATE})", field="feature_gates")
        if not isinstance(value, bool):
            raise InvalidInput(f"feature gate {name} must be true or false, got {value!r}", field="feature_gates")
    if SIDECAR_GATE in gates:
        if stage == "absent":
            raise InvalidInput(f"unrecognized feature gate: {SIDECAR_GATE} (it does not exist in 1.{minor})", field="feature_gates")
        if stage == "removed":
            raise InvalidInput(
                f"unrecognized feature gate: {SIDECAR_GATE} (removed in 1.36; sidecars are always on in 1.{minor})",
                field="feature_gates",
            )
        if stage == "ga" and gates[SIDECAR_GATE] is False:
            raise InvalidInput(f"cannot set feature gate {SIDECAR_GATE} to false, feature is locked to true (GA in 1.33)", field="feature_gates")
    default = gate_default(minor)
    enabled = gates.get(SIDECAR_GATE, default) if stage != "removed" else True
    effective_gates = {SIDECAR_GATE: bool(enabled)} if gate_settable(minor) else {}
    return Behaviour(
        minor=minor,
        sidecar_gate=stage,
        sidecars_enabled=bool(enabled),
        ordered_termination=bool(enabled) and minor >= 29,
        container_restart_rules=minor >= 35,
        exact_backoff_requeue=minor >= 35,
        job_success_criteria_met=minor >= 31,
        feature_gates=effective_gates,
    )


# kind releases and the node images their release notes list, pinned by digest. kind
# requires the digest: "You must use the @sha256 digest to guarantee an image built for
# this release". Newest release first; labkit picks the newest image of a minor that the
# installed kind release lists.
KIND_NODE_IMAGES: dict[str, dict[str, str]] = {
    "v0.33.0": {
        "1.37": "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
        "1.36": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
        "1.35": "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
        "1.34": "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
    },
    "v0.32.0": {
        "1.36": "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
    },
    "v0.31.0": {
        "1.35": "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
    },
    "v0.30.0": {
        "1.34": "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
        "1.33": "kindest/node:v1.33.4@sha256:25a6018e48dfcaee478f4a59af81157a437f15e6e140bf103f85a2e7cd0cbbf2",
        "1.32": "kindest/node:v1.32.8@sha256:abd489f042d2b644e2d033f5c2d900bc707798d075e8186cb65e3f1367a9d5a1",
        "1.31": "kindest/node:v1.31.12@sha256:0f5cc49c5e73c0c2bb6e2df56e7df189240d83cf94edfa30946482eb08ec57d2",
    },
    "v0.29.0": {
        "1.33": "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
        "1.32": "kindest/node:v1.32.5@sha256:e3b2327e3a5ab8c76f5ece68936e4cafaa82edf58486b769727ab0b3b97a5b0d",
        "1.31": "kindest/node:v1.31.9@sha256:b94a3a6c06198d17f59cca8c6f486236fa05e2fb359cbd75dabbfc348a10b211",
        "1.30": "kindest/node:v1.30.13@sha256:397209b3d947d154f6641f2d0ce8d473732bd91c87d9575ade99049aa33cd648",
    },
    "v0.27.0": {
        "1.33": "kindest/node:v1.33.0@sha256:02f73d6ae3f11ad5d543f16736a2cb2a63a300ad60e81dac22099b0b04784a4e",
        "1.29": "kindest/node:v1.29.14@sha256:8703bd94ee24e51b778d5556ae310c6c0fa67d761fae6379c8e0bb480e6fea29",
    },
    "v0.25.0": {
        "1.29": "kindest/node:v1.29.10@sha256:3b2d8c31753e6c8069d4fc4517264cd20e86fd36220671fb7d0a5855103aa84b",
        "1.28": "kindest/node:v1.28.15@sha256:a7c05c7ae043a0b8c818f5a06188bc2c4098f6cb59ca7d1856df00375d839251",
    },
    "v0.22.0": {
        "1.29": "kindest/node:v1.29.2@sha256:51a1434a5397193442f0be2a297b488b6c919ce8a3931be0ce822606ea5ca245",
        "1.28": "kindest/node:v1.28.7@sha256:9bc6c451a289cf96ad0bbaf33d416901de6fd632415b076ab05f5fa7e4f65c58",
    },
    "v0.20.0": {
        "1.28": "kindest/node:v1.28.0@sha256:b7a4cad12c197af3ba43202d3efe03246b3f0793f162afb40a33c923952d5b31",
        "1.27": "kindest/node:v1.27.3@sha256:3966ac761ae0136263ffdb6cfd4db23ef8a83cba8a463690e98317add2c9ba72",
    },
}
