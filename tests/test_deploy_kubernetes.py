"""deploy/kubernetes: what can be checked without a cluster.

* ``values.yaml`` merged over the chart's defaults validates against the z2jh chart's own schema
  (vendored, deploy/kubernetes/z2jh/SOURCE.md), as ``helm install`` validates it.
* The learner's pod is built by KubeSpawner's own ``make_pod`` (the version the chart's hub image
  runs) from those values, the way the chart's ``jupyterhub_config.py`` maps them, and loaded into
  the ``kubernetes`` client's models: non-root, limits, the engine sidecar.
* ``course-mirror.yaml`` loads into the client's models with no field dropped; its NetworkPolicies
  are evaluated: a learner reaches the Hub, the mirror and DNS, never another learner.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import kubernetes.client as k8s
import pytest
import yaml
from kubespawner.objects import make_pod
from traitlets.config import Config

from courseimage import pod as pod_role
from labcore.state import paths

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
NAMESPACE = "dockerlab"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def helm_merge(base: dict, over: dict) -> dict:
    """Helm's coalescing of user values over chart defaults: maps merge, a null deletes."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="module")
def values() -> dict:
    return helm_merge(_load(DEPLOY / "z2jh" / "values.yaml"), _load(DEPLOY / "values.yaml"))


@pytest.fixture(scope="module")
def schema() -> dict:
    return _load(DEPLOY / "z2jh" / "values.schema.yaml")


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "course-mirror.yaml").read_text()) if d]


def _model(data: dict, klass: str) -> Any:
    """A dict (camelCase, as in YAML) -> a kubernetes client model, through the client's own
    deserializer (the one that reads API server answers)."""
    return k8s.ApiClient().deserialize(json.dumps(data), klass, "application/json")


def _sanitized(model: Any) -> Any:
    return k8s.ApiClient().sanitize_for_serialization(model)


# -- values against the chart's schema --------------------------------------------------------

def test_values_validate_against_the_chart_schema(values: dict, schema: dict) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(values), key=lambda e: e.path)
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("path, bad", [
    (("singleuser", "memroy"), {"limit": "1G"}),  # a misspelt key
    (("cull", "timeout"), "an hour"),  # a wrong type
    (("singleuser", "networkPolicy", "egressAllowRules", "privateIP"), False),
])
def test_schema_rejects_a_broken_value(values: dict, schema: dict, path: tuple, bad: object) -> None:
    broken = copy.deepcopy(values)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


# -- the learner's pod, as KubeSpawner builds it ----------------------------------------------

def _env(values: dict, extra: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(values["singleuser"]["extraEnv"])
    env.update(extra or {})
    return env


def learner_pod(values: dict, profile: str = "learner") -> k8s.V1Pod:
    """The pod of ``profile`` as KubeSpawner 7.0 (the chart's hub image) would create it."""
    su = values["singleuser"]
    ks = values["hub"]["config"]["KubeSpawner"]
    override = next(p for p in su["profileList"] if p["slug"] == profile).get("kubespawner_override", {})
    storage = su["storage"]
    volumes = [*storage["extraVolumes"], {"name": "home", "persistentVolumeClaim": {"claimName": "claim-x"}}]
    mounts = [*storage["extraVolumeMounts"], {"name": "home", "mountPath": storage["homeMountPath"]}]
    labels = {"component": "singleuser-server", "app.kubernetes.io/name": "jupyterhub",
              "app.kubernetes.io/component": "singleuser-server", **su["extraLabels"]}
    init = list(su["initContainers"])
    if su["cloudMetadata"]["blockWithIptables"]:  # the chart adds this one (root, privileged)
        init.append({"name": "block-cloud-metadata", "image": "network-tools",
                     "securityContext": {"privileged": True, "runAsUser": 0}})
    pod = make_pod(
        name="jupyter-learner1", cmd=su["cmd"], port=8888,
        image=f"{su['image']['name']}:{su['image']['tag']}",
        image_pull_policy=su["image"]["pullPolicy"],
        uid=su["uid"], fs_gid=su["fsGid"],
        allow_privilege_escalation=su["allowPrivilegeEscalation"],
        container_security_context=ks["container_security_context"],
        pod_security_context=ks["pod_security_context"],
        env=_env(values, override.get("environment")),
        volumes=volumes, volume_mounts=mounts, labels=labels,
        cpu_limit=override.get("cpu_limit", su["cpu"]["limit"]), cpu_guarantee=su["cpu"]["guarantee"],
        mem_limit=override.get("mem_limit", su["memory"]["limit"]),
        mem_guarantee=su["memory"]["guarantee"],
        extra_resource_limits=su["extraResource"]["limits"],
        extra_resource_guarantees=su["extraResource"]["guarantees"],
        init_containers=init, extra_containers=su["extraContainers"],
        extra_pod_config=su["extraPodConfig"],
    )
    # kubernetes_asyncio's models (KubeSpawner's) have the sync client's shape: same serializer.
    data = _sanitized(pod)
    for c in [*data["spec"].get("initContainers", []), *data["spec"]["containers"]]:
        for kind in ("limits", "requests"):  # KubeSpawner writes cpu as a JSON number, which the
            res = c.get("resources", {}).get(kind) or {}  # API server takes as a Quantity; the
            res.update({k: str(v) for k, v in res.items()})  # client's models want the string
    return _model(data, "V1Pod")


@pytest.fixture(scope="module", params=["learner", "instructor"])
def pod(request: pytest.FixtureRequest, values: dict) -> k8s.V1Pod:
    return learner_pod(values, request.param)


def _notebook(pod: k8s.V1Pod) -> k8s.V1Container:
    return next(c for c in pod.spec.containers if c.name == "notebook")


def _effective(pod: k8s.V1Pod, c: k8s.V1Container, field: str) -> Any:
    own = getattr(c.security_context, field, None) if c.security_context else None
    return own if own is not None else getattr(pod.spec.security_context, field, None)


def test_notebook_runs_as_non_root(pod: k8s.V1Pod) -> None:
    nb = _notebook(pod)
    sc = nb.security_context
    assert sc.run_as_non_root is True and sc.run_as_user not in (None, 0)
    assert sc.privileged in (None, False) and sc.allow_privilege_escalation is False
    assert sc.capabilities.drop == ["ALL"] and not sc.capabilities.add
    assert sc.read_only_root_filesystem is True
    assert _effective(pod, nb, "seccomp_profile").type == "RuntimeDefault"


def test_no_container_of_the_pod_is_root_or_privileged(pod: k8s.V1Pod) -> None:
    for c in [*pod.spec.init_containers, *pod.spec.containers]:
        assert _effective(pod, c, "run_as_user") not in (None, 0), c.name
        assert _effective(pod, c, "run_as_non_root") is True, c.name
        assert not (c.security_context and c.security_context.privileged), c.name


def test_the_pod_has_its_own_user_namespace_and_no_api_token(pod: k8s.V1Pod) -> None:
    assert pod.spec.host_users is False
    assert pod.spec.automount_service_account_token is False


def test_engine_is_a_rootless_sidecar_with_only_what_the_rootless_engine_needs(pod: k8s.V1Pod, values: dict) -> None:
    engine = next(c for c in pod.spec.init_containers if c.name == "engine")
    assert engine.restart_policy == "Always"  # a native sidecar: up before JupyterLab, down after
    assert engine.startup_probe is not None
    sc = engine.security_context
    assert sc.run_as_user == 1000 and sc.run_as_non_root is True and not sc.privileged
    assert sc.capabilities.drop == ["ALL"]
    assert set(sc.capabilities.add) == {"SETUID", "SETGID"}  # newuidmap/newgidmap's file capabilities
    assert sc.seccomp_profile.type == "Unconfined" and sc.app_armor_profile.type == "Unconfined"
    assert sc.proc_mount == "Unmasked"  # allowed by Kubernetes only with hostUsers: false
    # One socket, shared with the notebook through a volume: no TCP listener for the engine.
    assert engine.args[0] == "engine" and not engine.command  # the course image's engine role
    assert not any("tcp" in a for a in engine.args)
    sock = values["singleuser"]["extraEnv"]["DOCKER_HOST"].removeprefix("unix://")
    assert f"--socket={sock}" in engine.args
    shared = {m.name: m.mount_path for m in engine.volume_mounts}
    assert shared["engine-sock"] == str(Path(sock).parent)
    assert {m.name: m.mount_path for m in _notebook(pod).volume_mounts}["engine-sock"] == shared["engine-sock"]


def test_every_container_has_limits(pod: k8s.V1Pod) -> None:
    for c in [*pod.spec.init_containers, *pod.spec.containers]:
        limits = c.resources.limits or {}
        for kind in ("memory", "cpu", "ephemeral-storage"):
            assert kind in limits, f"{c.name}: no {kind} limit"
        assert set(c.resources.requests) >= {"memory", "cpu"}, c.name
    sized = {v.name: v.empty_dir.size_limit for v in pod.spec.volumes if v.empty_dir}
    assert sized and all(sized.values()), sized


def test_the_engine_uses_the_course_mirror_service(values: dict, objects: list[dict]) -> None:
    svc = _model(next(o for o in objects if o["kind"] == "Service"), "V1Service")
    addr = f"{svc.metadata.name}.{NAMESPACE}.svc.cluster.local:{svc.spec.ports[0].port}"
    engine = next(c for c in values["singleuser"]["initContainers"] if c["name"] == "engine")
    assert f"--registry-mirror={addr}" in engine["args"]
    assert f"--insecure-registry={addr}" in engine["args"]
    assert values["singleuser"]["extraEnv"]["DOCKERLAB_MIRROR"] == addr


def test_nbgrader_profile_only_for_admins(values: dict) -> None:
    c = Config()
    c.KubeSpawner.profile_list = copy.deepcopy(values["singleuser"]["profileList"])
    for snippet in values["hub"]["extraConfig"].values():
        exec(compile(snippet, "hub.extraConfig", "exec"), {"c": c})  # noqa: S102 - the chart does the same
    slugs = {admin: [p["slug"] for p in c.KubeSpawner.profile_list(SimpleNamespace(user=SimpleNamespace(admin=admin)))]
             for admin in (True, False)}
    assert slugs == {True: ["learner", "instructor"], False: ["learner"]}
    instructor = next(p for p in values["singleuser"]["profileList"] if p["slug"] == "instructor")
    assert instructor["kubespawner_override"]["environment"]["DOCKERLAB_ROLE"] == "instructor"


def test_idle_servers_are_culled(values: dict) -> None:
    assert values["cull"]["enabled"] is True and 0 < values["cull"]["timeout"] <= 3600
    assert values["cull"]["users"] is False  # the learner's account and home stay


# -- the extra objects ------------------------------------------------------------------------

MODELS = {"ConfigMap": "V1ConfigMap", "Deployment": "V1Deployment", "Service": "V1Service",
          "NetworkPolicy": "V1NetworkPolicy"}


def test_extra_objects_load_into_the_client_models_with_nothing_dropped(objects: list[dict]) -> None:
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "Deployment", "NetworkPolicy", "NetworkPolicy",
                                                  "Service"]
    for o in objects:
        model = _model(o, MODELS[o["kind"]])
        assert _sanitized(model) == o, f"{o['kind']} {o['metadata']['name']}: a field the API does not know"


def test_mirror_is_read_only_and_non_root(objects: list[dict]) -> None:
    cm = next(o for o in objects if o["kind"] == "ConfigMap")
    cfg = yaml.safe_load(cm["data"]["config.yml"])
    assert cfg["storage"]["maintenance"]["readonly"]["enabled"] is True
    assert cfg["storage"]["delete"]["enabled"] is False
    dep = _model(next(o for o in objects if o["kind"] == "Deployment"), "V1Deployment")
    spec = dep.spec.template.spec
    assert spec.security_context.run_as_non_root and spec.security_context.run_as_user != 0
    (c,) = spec.containers
    assert c.security_context.read_only_root_filesystem and c.resources.limits
    svc = _model(next(o for o in objects if o["kind"] == "Service"), "V1Service")
    assert svc.spec.selector.items() <= dep.spec.template.metadata.labels.items()


# NetworkPolicy semantics, enough of them for these policies: matchLabels selectors and ports.
LEARNER_A = {"component": "singleuser-server", "app.kubernetes.io/name": "jupyterhub",
             "hub.jupyter.org/network-access-hub": "true"}
LEARNER_B = dict(LEARNER_A)
HUB = {"component": "hub", "app.kubernetes.io/name": "jupyterhub"}
PROXY = {"component": "proxy", "app.kubernetes.io/name": "jupyterhub",
         "hub.jupyter.org/network-access-singleuser": "true"}
MIRROR = {"app.kubernetes.io/name": "course-mirror", "app.kubernetes.io/part-of": "dockerlab"}
DNS = {"k8s-app": "kube-dns"}


def _selects(selector: k8s.V1LabelSelector | None, labels: dict) -> bool:
    assert selector is None or not selector.match_expressions, "matchExpressions: not evaluated here"
    return selector is None or (selector.match_labels or {}).items() <= labels.items()


def _peer_matches(peer: k8s.V1NetworkPolicyPeer, labels: dict, ns: str) -> bool:
    assert peer.ip_block is None, "ipBlock: not evaluated here"
    ns_labels = {"kubernetes.io/metadata.name": ns}
    if peer.namespace_selector is None and ns != NAMESPACE:
        return False
    if peer.namespace_selector is not None and not _selects(peer.namespace_selector, ns_labels):
        return False
    return peer.pod_selector is None or _selects(peer.pod_selector, labels)


def _rule_allows(rule: Any, peers: list | None, labels: dict, ns: str, port: int) -> bool:
    ports_ok = not rule.ports or any(p.port == port for p in rule.ports)
    return ports_ok and (not peers or any(_peer_matches(p, labels, ns) for p in peers))


def allowed(policies: list[k8s.V1NetworkPolicy], src: dict, dst: dict, port: int,
            src_ns: str = NAMESPACE, dst_ns: str = NAMESPACE) -> bool:
    def side(direction: str, me: dict, me_ns: str, other: dict, other_ns: str) -> bool:
        mine = [p for p in policies if me_ns == NAMESPACE and direction in p.spec.policy_types
                and _selects(p.spec.pod_selector, me)]
        if not mine:
            return True  # not isolated in this direction
        rules = [r for p in mine for r in (getattr(p.spec, direction.lower()) or [])]
        return any(_rule_allows(r, r._from if direction == "Ingress" else r.to, other, other_ns, port)
                   for r in rules)

    return side("Egress", src, src_ns, dst, dst_ns) and side("Ingress", dst, dst_ns, src, src_ns)


@pytest.fixture(scope="module")
def policies(objects: list[dict]) -> list[k8s.V1NetworkPolicy]:
    return [_model(o, "V1NetworkPolicy") for o in objects if o["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("port", [8888, 5102, 2375, 8080, 22])
def test_a_learner_cannot_reach_another_learner(policies: list, port: int) -> None:
    assert not allowed(policies, LEARNER_A, LEARNER_B, port)


def test_a_learner_reaches_the_hub_the_mirror_and_dns_only(policies: list) -> None:
    assert allowed(policies, LEARNER_A, HUB, 8081)
    assert allowed(policies, LEARNER_A, MIRROR, 5000)
    assert allowed(policies, LEARNER_A, DNS, 53, dst_ns="kube-system")
    assert not allowed(policies, LEARNER_A, MIRROR, 5001)
    assert not allowed(policies, LEARNER_A, {"app": "anything-else"}, 443)
    assert not allowed(policies, LEARNER_A, DNS, 53, dst_ns="elsewhere")


def test_only_the_proxy_and_hub_reach_jupyterlab_and_only_learners_the_mirror(policies: list) -> None:
    assert allowed(policies, PROXY, LEARNER_A, 8888)
    assert not allowed(policies, PROXY, LEARNER_A, 5102)
    assert not allowed(policies, {"app": "anything-else"}, MIRROR, 5000)
    assert not allowed(policies, MIRROR, {"app": "anything-else"}, 443)


def test_the_policy_evaluator_can_say_yes_to_learner_traffic() -> None:
    """The evaluator itself: with a policy that lets learners talk, it must say so."""
    open_policy = _model({"metadata": {"name": "open"}, "spec": {
        "podSelector": {"matchLabels": {"component": "singleuser-server"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{"to": [{"podSelector": {}}]}]}},
        "V1NetworkPolicy")
    assert allowed([open_policy], LEARNER_A, LEARNER_B, 8888)


def test_the_charts_own_learner_policy_opens_nothing_more(values: dict) -> None:
    """The chart renders its singleuser NetworkPolicy from these values (not rendered here: no
    helm): no extra ingress, and egress to private addresses (other pods) and the internet off."""
    np = values["singleuser"]["networkPolicy"]
    assert np["enabled"] and not np["ingress"] and not np["allowedIngressPorts"]
    rules = np["egressAllowRules"]
    assert not rules["privateIPs"] and not rules["nonPrivateIPs"] and not rules["cloudMetadataServer"]
    assert values["singleuser"]["extraLabels"]["hub.jupyter.org/network-access-hub"] == "true"


# -- the image's start ------------------------------------------------------------------------

def test_every_container_is_a_role_of_the_course_image(pod: k8s.V1Pod, values: dict, objects: list[dict]) -> None:
    """One image for the notebook, the engine, the learner's registry and the course mirror
    (./lab image build): no other image, and no Docker Hub."""
    course = f"{values['singleuser']['image']['name']}:{values['singleuser']['image']['tag']}"
    assert course.rsplit("/", 1)[-1].startswith("course:")
    images = {c.name: c.image for c in [*pod.spec.init_containers, *pod.spec.containers]}
    assert set(images.values()) == {course}, images
    assert _notebook(pod).args == ["notebook"]
    mirror = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in mirror] == [course]
    config = yaml.safe_load(next(o for o in objects if o["kind"] == "ConfigMap")["data"]["config.yml"])
    assert config["storage"]["filesystem"]["rootdirectory"] == "/opt/dockerlab/seed/registry/upstream"


@pytest.mark.parametrize("role", ["learner", "instructor"])
def test_pod_start_writes_the_state_and_hides_nbgrader_from_learners(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: dict, role: str) -> None:
    env = values["singleuser"]["extraEnv"]
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "nowhere"))
    for key in ("DOCKER_HOST", "DOCKERLAB_MIRROR", "DOCKERLAB_REGISTRY_PORT"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("POD_IP", "10.1.2.3")
    monkeypatch.setenv("DOCKERLAB_ROLE", role)
    run = paths().run  # /tmp/dockerlab-<uid>-<tag>, as in a pod without a runtime directory: removed afterwards
    try:
        kernel_env = pod_role.prepare()
    finally:
        shutil.rmtree(run, ignore_errors=True)
    state = json.loads((tmp_path / "lab" / "state.json").read_text())
    assert state["registry"] == "10.1.2.3:5102" and state["mirror"] == env["DOCKERLAB_MIRROR"]
    assert kernel_env["DOCKER_HOST"] == env["DOCKER_HOST"]
    server_cfg = tmp_path / "lab" / "jupyter" / "config" / "jupyter_server_config.json"
    assert server_cfg.exists() == (role == "learner")
    assert sorted(p.name for p in (tmp_path / "lab" / "course" / "notebooks").glob("*.ipynb"))
