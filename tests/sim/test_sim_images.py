"""The image table (labkit/data/images.yaml) and the stop signal, as timelines.

Every expected value below is written out from the row's upstream source (named in the
comment), not read from the table: a wrong row makes its test fail.
"""

from __future__ import annotations

import re

import pytest

from labkit.errors import InvalidInput
from labkit.sim import SimLab, images, simulate
from labkit.sim import timing as T
from labkit.sim.behaviour import BEHAVIOUR_ANNOTATION
from labkit.sim.infer import infer
from labkit.sim.shell import read_script
from labkit.sim.cli import format_timeline
from labkit.versions import KubeVersion, behaviour

PROMPT = T.SERVER_SHUTDOWN_S  # an idle server's quick shutdown

# (image, args, row, stop signal, seconds from the stop signal to the exit, exit code, a port it listens on)
ROWS = [
    # envoy ci/Dockerfile-envoy: no STOPSIGNAL; server.cc: SIGTERM -> shutdown; EXPOSE 10000
    ("envoyproxy/envoy:v1.31.0", [], "envoy", "SIGTERM", PROMPT, 0, 10000),
    # Dockerfile.proxyv2: no STOPSIGNAL, pilot-agent; terminationDrainDuration default 5 s; 15021 health
    ("docker.io/istio/proxyv2:1.23.0", ["proxy", "sidecar"], "istio-proxy", "SIGTERM", 5, 0, 15021),
    # linkerd2-proxy: graceful shutdown on SIGTERM; 4143 inbound
    ("cr.l5d.io/linkerd/proxy:stable-2.14.10", [], "linkerd-proxy", "SIGTERM", PROMPT, 0, 4143),
    # fluent-bit Dockerfile: no STOPSIGNAL, EXPOSE 2020; engine stops within a second when nothing is pending
    ("cr.fluentbit.io/fluent/fluent-bit:3.1", [], "fluent-bit", "SIGTERM", 1, 0, 2020),
    # fluentd-docker-image: tini forwards SIGTERM; graceful stop; EXPOSE 24224
    ("fluent/fluentd:v1.17-1", [], "fluentd", "SIGTERM", PROMPT, 0, 24224),
    # vector Dockerfile: tini, no STOPSIGNAL, no EXPOSE; graceful shutdown on SIGTERM
    ("timberio/vector:0.40.0-debian", [], "vector", "SIGTERM", PROMPT, 0, None),
    # otelcol Dockerfile: FROM scratch, no STOPSIGNAL, EXPOSE 4317
    ("otel/opentelemetry-collector-contrib:0.108.0", [], "otel-collector", "SIGTERM", PROMPT, 0, 4317),
    # cloud-sql-proxy --help: "Exit with 0 exit code when Sigterm received (default is 143)"; --port
    ("gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1", ["--port=5432", "p:r:i"], "cloud-sql-proxy",
     "SIGTERM", PROMPT, 143, 5432),
    # vault Dockerfile: no STOPSIGNAL, EXPOSE 8200 (server -dev)
    ("hashicorp/vault:1.17", [], "vault", "SIGTERM", PROMPT, 0, 8200),
    # oauth2-proxy: distroless, no STOPSIGNAL; --http-address :4180
    ("quay.io/oauth2-proxy/oauth2-proxy:v7.6.0", [], "oauth2-proxy", "SIGTERM", PROMPT, 0, 4180),
    # docker-nginx: STOPSIGNAL SIGQUIT (graceful quit), EXPOSE 80
    ("nginx:1.27", [], "nginx", "SIGQUIT", PROMPT, 0, 80),
    # docker-nginx-unprivileged: STOPSIGNAL SIGQUIT, EXPOSE 8080
    ("nginxinc/nginx-unprivileged:1.27", [], "nginx-unprivileged", "SIGQUIT", PROMPT, 0, 8080),
    # docker-library/httpd: STOPSIGNAL SIGWINCH (graceful-stop), EXPOSE 80
    ("httpd:2.4", [], "httpd", "SIGWINCH", PROMPT, 0, 80),
    # caddy-docker: no STOPSIGNAL; SIGTERM graceful exit; EXPOSE 80
    ("caddy:2.8", [], "caddy", "SIGTERM", PROMPT, 0, 80),
    # docker-library/haproxy: STOPSIGNAL SIGUSR1 (soft stop); ports come from the mounted config
    ("haproxy:3.0", [], "haproxy", "SIGUSR1", PROMPT, 0, None),
    # redis image: no STOPSIGNAL, EXPOSE 6379; SIGTERM -> shutdown, exit 0
    ("redis:7.4", [], "redis", "SIGTERM", PROMPT, 0, 6379),
    # static-web-server docker/*/Dockerfile: STOPSIGNAL SIGQUIT; signals.rs exits on it; port 80 (v2)
    ("joseluisq/static-web-server:2", [], "static-web-server", "SIGQUIT", PROMPT, 0, 80),
    # agnhost netexec: no STOPSIGNAL; --http-port 8080
    # k8s.io/kubernetes v1.37.2 test/images/agnhost: netexec/netexec.go exits 0 on SIGTERM
    ("registry.k8s.io/e2e-test-images/agnhost:2.66.1", ["netexec"], "agnhost", "SIGTERM", PROMPT, 0, 8080),
    # pause/pause.go: `case syscall.SIGTERM: result = 2` ... os.Exit(result)
    ("registry.k8s.io/e2e-test-images/agnhost:2.66.1", ["pause"], "agnhost", "SIGTERM", PROMPT, 2, None),
    # test-webserver.go: no handler; the Go runtime's dieFromSignal cannot kill PID 1 and exits 2
    ("registry.k8s.io/e2e-test-images/agnhost:2.66.1", ["test-webserver"], "agnhost", "SIGTERM", PROMPT, 2, 80),
    # pause.c: SIGTERM -> sigdown() -> exit 0 at once
    ("registry.k8s.io/pause:3.10", [], "pause", "SIGTERM", 0, 0, None),
]


def run_pod(container: dict, *, version="1.29", gates=None, delete_at=10.0, grace=30, os_name=None,
            annotations=None) -> tuple:
    """Run one container in a pod, delete the pod ``delete_at`` s in; returns (trace, warnings)."""
    spec = {"restartPolicy": "Never", "terminationGracePeriodSeconds": grace, "containers": [container]}
    if os_name:
        spec["os"] = {"name": os_name}
    meta = {"name": "p", **({"annotations": annotations} if annotations else {})}
    lab = SimLab(version, feature_gates=gates, quiet=True)
    lab.apply({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    lab.sleep(delete_at)
    lab.delete("pod/p", wait=True)
    trace = lab.trace()
    return trace, trace.extra["warnings"]


def stop_and_end(trace, name="c"):
    sig = trace.first("SIGTERM", container=name)
    end = next(e for e in trace.events if e.container == name and e.type in ("Exited", "Killed"))
    return sig, end


def test_every_row_of_the_table_has_a_timeline_test():
    assert {row.row for row in images.table()} == {r[2] for r in ROWS} | {"shell"}


@pytest.mark.parametrize(("image", "args", "row", "signal", "after", "code", "port"), ROWS,
                         ids=[r[2] for r in ROWS])
def test_each_row_stops_the_way_its_source_says(image, args, row, signal, after, code, port):
    container = {"name": "c", "image": image, "args": args}
    if port is not None:
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    trace, warnings = run_pod(container)
    assert warnings == []
    model, _ = infer(container)
    assert model.image_row == row and f"image table row {row!r}" in model.description
    sig, end = stop_and_end(trace)
    assert sig.extra.get("signal") == (None if signal == "SIGTERM" else signal)
    assert end.type == "Exited" and end.exit_code == code
    assert end.t - sig.t == pytest.approx(after)
    if port is not None:
        assert trace.first("Ready", container="c") is not None      # it listens on that port


def test_agnhost_pause_exits_1_on_sigint_and_serve_hostname_outlives_a_short_grace():
    # pause.go: `case syscall.SIGINT: result = 1`; the pod's stopSignal (1.33+) picks SIGINT
    container = {"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1", "args": ["pause"],
                 "lifecycle": {"stopSignal": "SIGINT"}}
    trace, _ = run_pod(container, version="1.33", gates={"ContainerStopSignals": True}, os_name="linux")
    sig, end = stop_and_end(trace)
    assert sig.extra.get("signal") == "SIGINT" and (end.type, end.exit_code) == ("Exited", 1)
    # serve_hostname.go: on SIGTERM it logs, sleeps 60 s and returns: SIGKILL when the grace is 30 s
    trace, _ = run_pod({"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
                        "args": ["serve-hostname"]})
    sig, end = stop_and_end(trace)
    assert end.type == "Killed" and end.t - sig.t == pytest.approx(30)


def test_a_shell_image_without_a_command_exits_at_once():
    # docker-library busybox/alpine/debian/ubuntu: CMD sh/bash, no stdin in a pod -> exits 0
    for image in ("busybox:1.36", "alpine:3.20", "debian:bookworm", "ubuntu:24.04"):
        trace, warnings = run_pod({"name": "c", "image": image}, delete_at=5)
        started, exited = trace.first("Started", container="c"), trace.first("Exited", container="c")
        assert warnings == [] and exited.exit_code == 0 and exited.t - started.t < 0.1
        assert trace.first("SIGTERM", container="c") is None


@pytest.mark.parametrize(("image", "row"), [
    ("docker.io/library/nginx", "nginx"),
    ("nginx:1.27", "nginx"),
    ("nginx@sha256:" + "a" * 64, "nginx"),
    ("docker.io/library/nginx:1.27@sha256:" + "b" * 64, "nginx"),
    ("mirror.gcr.io/library/nginx:1.27", "nginx"),
    ("public.ecr.aws/docker/library/nginx:1.27", "nginx"),
    ("harbor.example.com/dockerhub/library/nginx:1.27", "nginx"),
    ("localhost:5000/nginx:1.27", "nginx"),
    ("ghcr.io/static-web-server/static-web-server:2.44.0", "static-web-server"),
    ("joseluisq/static-web-server", "static-web-server"),
    ("docker.io/joseluisq/static-web-server:2-alpine@sha256:" + "c" * 64, "static-web-server"),
    ("mirror.gcr.io/joseluisq/static-web-server:2", "static-web-server"),
    ("registry.example.com/cache/envoyproxy/envoy:v1.31.0", "envoy"),
    ("k8s.gcr.io/pause:3.2", "pause"),
    ("gcr.io/google_containers/pause-amd64:3.1", "pause"),
    ("bitnami/nginx:1.27", None),            # another image (its own Dockerfile): not the nginx row
    ("example.com/nginx-fork/app:1", None),
])
def test_registry_and_path_variants_resolve_to_the_same_row(image, row):
    found = images.lookup(image)
    assert (found.row if found else None) == row


def test_static_web_server_port_follows_its_version_flag_and_env():
    # src/settings/cli.rs: --port/-p, env SERVER_PORT; default 80 in v2, 8787 in v3
    assert infer({"name": "s", "image": "ghcr.io/static-web-server/static-web-server:3.0.0"})[0].listen_ports == (8787,)
    assert infer({"name": "s", "image": "joseluisq/static-web-server:2", "args": ["-p", "8080"]})[0].listen_ports == (8080,)
    env = [{"name": "SERVER_PORT", "value": "9000"}]
    assert infer({"name": "s", "image": "joseluisq/static-web-server:2", "env": env})[0].listen_ports == (9000,)


def test_cloud_sql_proxy_exits_zero_with_its_flag():
    args = ["--exit-zero-on-sigterm", "--port=5432", "p:r:i"]
    trace, _ = run_pod({"name": "c", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1", "args": args})
    assert stop_and_end(trace)[1].exit_code == 0


def test_an_unknown_image_without_a_command_handles_its_stop_signal_and_says_how_to_describe_it():
    trace, warnings = run_pod({"name": "mystery", "image": "example.com/mystery:1"})
    sig, end = stop_and_end(trace, "mystery")
    assert end.type == "Exited" and end.exit_code == 0 and end.t - sig.t == pytest.approx(PROMPT)
    (warning,) = warnings
    assert "handles its stop signal" in warning and "docs/images.md" in warning
    # The copy-paste example in the warning describes this very container, and works.
    example = re.search(rf"{re.escape(BEHAVIOUR_ANNOTATION)}: '(.*?)'", warning).group(1)
    assert example == "{mystery: {handles_sigterm: false}}"
    trace, warnings = run_pod({"name": "mystery", "image": "example.com/mystery:1"}, grace=5,
                              annotations={BEHAVIOUR_ANNOTATION: example})
    sig, end = stop_and_end(trace, "mystery")
    assert warnings == [] and end.type == "Killed" and end.t - sig.t == pytest.approx(5)


def test_scripts_keep_the_pid1_rule():
    # the blog's app: a shell loop as PID 1 ignores SIGTERM, killed at the end of the grace period
    loop = {"name": "c", "image": "alpine", "command": ["sh", "-c", "while true; do sleep 1; done"]}
    trace, warnings = run_pod(loop, grace=3)
    sig, end = stop_and_end(trace)
    assert warnings == [] and end.type == "Killed" and end.exit_code == 137 and end.t - sig.t == pytest.approx(3)


def test_a_known_program_started_by_its_command_or_a_script_gets_its_row():
    direct = infer({"name": "c", "image": "example.com/web:1", "command": ["nginx", "-g", "daemon off;"]})[0]
    assert direct.image_row == "nginx" and direct.stop_signal == "SIGQUIT" and direct.handles("SIGQUIT")
    script = infer({"name": "c", "image": "example.com/web:1",
                    "command": ["sh", "-c", "echo starting; sleep 2; exec nginx -g 'daemon off;'"]})[0]
    assert script.image_row == "nginx" and script.start_delay == pytest.approx(2 + T.SERVER_LISTEN_S)
    trapped = infer({"name": "c", "image": "x", "command": ["sh", "-c", "trap 'exit 0' TERM; nginx"]})
    assert trapped[0].image_row is None      # a trap keeps the shell as PID 1: not modelled as nginx


def test_a_script_handles_only_the_signals_it_traps():
    m = read_script("trap 'exit 3' QUIT; while true; do sleep 1 & wait $!; done")
    assert m.handles("SIGQUIT") and not m.handles("SIGTERM")
    assert m.trap_delay(2.5, "SIGQUIT") == 0.0 and m.trap_delay(2.5, "SIGTERM") is None
    assert m.exit_after("SIGQUIT") == (0.0, 3)


def test_without_pid1_an_unhandled_signal_takes_its_default_action():
    # signal(7): SIGQUIT's default action ends the process (128 + 3); SIGWINCH's is to ignore it
    loop = {"name": "c", "image": "alpine", "command": ["sh", "-c", "while true; do sleep 1; done"]}
    lab = SimLab("1.33", feature_gates={"ContainerStopSignals": True}, quiet=True)
    for name, signal in (("quit", "SIGQUIT"), ("winch", "SIGWINCH")):
        lab.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                   "spec": {"shareProcessNamespace": True, "os": {"name": "linux"}, "terminationGracePeriodSeconds": 4,
                            "containers": [{**loop, "lifecycle": {"stopSignal": signal}}]}})
    lab.sleep(5)
    lab.delete("pod/quit", wait=False)
    lab.delete("pod/winch", wait=True)
    trace = lab.trace()
    quit_end = next(e for e in trace.events if e.pod == "quit" and e.type in ("Exited", "Killed"))
    winch_end = next(e for e in trace.events if e.pod == "winch" and e.type in ("Exited", "Killed"))
    assert (quit_end.type, quit_end.exit_code) == ("Exited", 131)
    assert (winch_end.type, winch_end.exit_code) == ("Killed", 137)


# -- lifecycle.stopSignal ----------------------------------------------------------------------

def nginx(signal: str | None = None) -> dict:
    c = {"name": "c", "image": "nginx:1.27"}
    if signal:
        c["lifecycle"] = {"stopSignal": signal}
    return c


def test_the_pod_overrides_the_image_stop_signal_with_the_gate_on():
    # nginx.org control.html: TERM is a fast shutdown, also prompt when idle
    trace, _ = run_pod(nginx("SIGTERM"), version="1.33", gates={"ContainerStopSignals": True}, os_name="linux")
    sig, end = stop_and_end(trace)
    assert "signal" not in sig.extra and end.exit_code == 0 and end.t - sig.t == pytest.approx(PROMPT)
    assert trace.feature_gates == {"SidecarContainers": True, "ContainerStopSignals": True}


@pytest.mark.parametrize(("image", "signal", "expect"), [
    # static-web-server signals.rs has no SIGUSR1 handler: as PID 1 it is ignored -> SIGKILL
    ("joseluisq/static-web-server:2", "SIGUSR1", ("Killed", 137, 5)),
    # httpd stopping.html: SIGHUP restarts, the server keeps running -> SIGKILL
    ("httpd:2.4", "SIGHUP", ("Killed", 137, 5)),
    # httpd stopping.html: SIGTERM stops at once
    ("httpd:2.4", "SIGTERM", ("Exited", 0, PROMPT)),
    # haproxy management.txt: SIGTERM quits immediately
    ("haproxy:3.0", "SIGTERM", ("Exited", 0, PROMPT)),
    # SIGKILL cannot be caught, not even by PID 1
    ("nginx:1.27", "SIGKILL", ("Killed", 137, 0)),
])
def test_a_program_reacts_to_the_signal_it_gets(image, signal, expect):
    container = {"name": "c", "image": image, "lifecycle": {"stopSignal": signal}}
    trace, _ = run_pod(container, version="1.34", gates={"ContainerStopSignals": True}, os_name="linux", grace=5)
    sig, end = stop_and_end(trace)
    assert sig.extra.get("signal") == (None if signal == "SIGTERM" else signal)
    assert (end.type, end.exit_code) == expect[:2] and end.t - sig.t == pytest.approx(expect[2])


def test_with_the_gate_off_the_api_server_drops_the_field():
    # pkg/api/pod/util.go dropContainerStopSignals: the default on 1.33-1.37 (alpha, off)
    trace, warnings = run_pod(nginx("SIGTERM"), version="1.35", os_name="linux")
    assert any("lifecycle.stopSignal was dropped" in w for w in warnings)
    assert stop_and_end(trace)[0].extra.get("signal") == "SIGQUIT"        # the image's STOPSIGNAL


def test_before_1_33_the_field_does_not_exist():
    with pytest.raises(InvalidInput) as err:
        run_pod(nginx("SIGTERM"), version="1.32", os_name="linux")
    assert err.value.field == "spec.containers[0].lifecycle.stopSignal" and "unknown field" in err.value.message


@pytest.mark.parametrize(("os_name", "signal", "message"), [
    (None, "SIGTERM", "Forbidden"),                       # KEP-4960: spec.os.name must be set
    ("windows", "SIGQUIT", 'Unsupported value: "SIGQUIT"'),  # Windows: SIGTERM and SIGKILL only
    ("linux", "SIGFOO", 'Invalid value: "SIGFOO"'),
])
def test_the_gate_on_validates_the_signal_against_the_pod_os(os_name, signal, message):
    with pytest.raises(InvalidInput) as err:
        run_pod(nginx(signal), version="1.33", gates={"ContainerStopSignals": True}, os_name=os_name)
    assert err.value.field == "spec.containers[0].lifecycle.stopSignal" and message in err.value.message


def test_the_gate_exists_from_1_33_and_is_off_by_default():
    # kube_features.go: ContainerStopSignals {1.33, Default: false, Alpha}, no later stage up to 1.37
    assert [behaviour(f"1.{m}").container_stop_signals for m in range(33, 38)] == [False] * 5
    assert behaviour("1.33", {"ContainerStopSignals": True}).container_stop_signals is True
    with pytest.raises(InvalidInput, match="ContainerStopSignals .*arrived in 1.33"):
        behaviour("1.32", {"ContainerStopSignals": True})


# -- the issue's Deployment ---------------------------------------------------------------------

ENVOY_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
      - name: envoy
        image: envoyproxy/envoy:v1.31.0
        restartPolicy: Always
      containers:
      - name: app
        image: nginx
"""


@pytest.mark.parametrize("version", ["1.29", "1.33", "1.37"])
def test_the_envoy_deployment_stops_in_about_a_second_with_envoy_last(tmp_path, version):
    path = tmp_path / "web.yaml"
    path.write_text(ENVOY_DEPLOYMENT)
    trace = simulate([str(path)], k8s_version=version, delete_after=20)
    deleted = trace.first("DeleteRequested")
    app_sig, app_end = stop_and_end(trace, "app")
    envoy_sig, envoy_end = stop_and_end(trace, "envoy")
    assert app_sig.extra.get("signal") == "SIGQUIT" and "signal" not in envoy_sig.extra
    assert app_end.exit_code == 0 and envoy_end.type == "Exited" and envoy_end.exit_code == 0
    assert app_end.t <= envoy_sig.t                 # 1.29+: the sidecar gets its signal after the app ended
    assert envoy_end.t - deleted.t <= 1.0
    text = format_timeline(trace)
    assert "container envoy: envoy (image table row 'envoy')" in text
    assert "container app: nginx (image table row 'nginx')" in text and "Warning" not in text


def test_describing_an_unknown_image_keeps_its_probes_answering():
    # a program of unknown ports: a probe succeeds once it runs (it is not a script that listens nowhere)
    container = {"name": "m", "image": "example.com/mystery:1", "readinessProbe": {"tcpSocket": {"port": 9000}}}
    trace, warnings = run_pod(container, annotations={BEHAVIOUR_ANNOTATION: "{m: {handles_sigterm: false}}"})
    assert warnings == [] and trace.first("Ready", container="m") is not None


def test_a_kind_cluster_gets_the_stop_signal_gate_it_is_asked_for():
    # the simulator and a kind cluster must agree: the gate goes into kind's featureGates
    from labkit.kind import kind_feature_gates

    assert kind_feature_gates(KubeVersion.parse("1.33"), {"ContainerStopSignals": True}) == {"ContainerStopSignals": True}
    assert kind_feature_gates(KubeVersion.parse("1.33")) == {}


def _envoy_job(port: int) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "with-envoy"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "initContainers": [{"name": "envoy", "image": "envoyproxy/envoy:v1.33-latest", "restartPolicy": "Always",
                                    "startupProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 1}}],
                "containers": [{"name": "app", "image": "alpine:3.20", "command": ["sh", "-c", "sleep 2"]}]}}}}


def test_envoy_probed_on_its_admin_port_starts_the_app():
    """The image's default config (/etc/envoy/envoy.yaml) has the admin interface on 9901."""
    from labkit.sim import SimLab

    lab = SimLab("1.36", quiet=True)
    lab.apply(_envoy_job(9901))
    lab.wait("job/with-envoy", "Complete", timeout=60)
    assert not [w for w in lab.cluster.warnings if "probe" in w]


def test_a_probe_on_a_port_the_image_table_does_not_know_is_a_warning():
    """The simulator takes such a probe to fail: a guess that holds the pod in Init, so it says so."""
    from labkit.sim import SimLab

    lab = SimLab("1.36", quiet=True)
    lab.apply(_envoy_job(9999))
    lab.sleep(30)
    warned = [w for w in lab.cluster.warnings if "startup probe checks port 9999" in w]
    assert warned and "9901, 10000" in warned[0] and "taken to fail" in warned[0]
    assert "No warnings" not in warned[0]


def test_image_table_rows_issue_20():
    from labkit.sim.images import lookup as for_image

    assert for_image("otel/opentelemetry-collector:0.115.0").ports == (4317, 4318, 55679)
    fluent = for_image("fluent/fluent-bit:3.2")
    assert fluent.on_signal["SIGQUIT"].exit_after is not None and fluent.on_signal["SIGHUP"].exit_after is None
