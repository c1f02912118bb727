#!/usr/bin/env python3
"""Offline checks of the skua Helm chart, for each values set given:

1. values.schema.json accepts the values (and rejects known-bad ones);
2. `helm lint --strict` finds nothing (helm-python-sdk: Helm's Go SDK as a
   shared library, no helm binary, no cluster, no network);
3. the chart renders, and every rendered object validates against the
   Kubernetes OpenAPI schema in strict mode (kubernetes-validate, schemas
   shipped in the package);
4. the invariants the deployment relies on: the worker's requests equal its
   limits with integer CPUs (Guaranteed QoS for the static CPU manager),
   hugepages requested equal to their limits and mounted from an
   emptyDir of medium HugePages, IPC_LOCK/SYS_NICE/NET_RAW added, nothing
   privileged, /dev/vfio from the host, the SR-IOV resource name taken from
   the values, RBAC for pods and the agents ConfigMap; the workers' link to
   the hub: link.hub in skua.yaml is the hub Service's URL, workers get
   SKUA_TOKEN from the tokens Secret, the hub mounts that Secret's tokens
   file where hub.tokens_file says, and no ConfigMap holds a token (and,
   with the Secret's lookup stubbed, an upgrade keeps the tokens it has);
5. the worker entrypoint, run with sh against a stand-in skua, turns
   PCIDEVICE_* (and, failing that, Multus' network-status annotation) into
   the EAL allow-list;
6. with --skua, the rendered skua.yaml is a configuration skua accepts and
   the hugepages the pod requests cover what `skua hugepages plan` needs.

Usage: test_chart.py --chart deploy/helm/skua [--values FILE ...] [--skua BIN]
(no --values: the chart's defaults only). Exits 1 on any failure.
"""

import argparse
import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import helm_python as helm
import kubernetes_validate
import yaml

KUBE_VERSION = "1.30.0"
NAMESPACE = "skua"
REQUIRED_CAPS = {"IPC_LOCK", "SYS_NICE", "NET_RAW"}
QUANTITY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "": 1}


class Checks:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failures = []

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
        return ok


def quantity_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|)", str(q))
    if not m:
        raise ValueError(f"unsupported quantity {q!r}")
    return int(m.group(1)) * QUANTITY[m.group(2)]


def render(chart, values):
    manifests = chart.render(values=values, name="skua", namespace=NAMESPACE, is_install=True)
    objects, notes = [], ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append((path, doc))
    return objects, notes


def pod_specs(objects):
    for _, o in objects:
        if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
            yield o, o["spec"]["template"]


def find(objects, kind, suffix):
    for _, o in objects:
        if o["kind"] == kind and o["metadata"]["name"].endswith(suffix):
            return o
    return None


def check_invariants(c, values, objects):
    w = values["worker"]
    sriov = values["sriov"]
    # Nothing privileged anywhere.
    for o, tpl in pod_specs(objects):
        spec = tpl["spec"]
        for ctr in spec.get("containers", []) + spec.get("initContainers", []):
            sc = ctr.get("securityContext", {})
            c.check(sc.get("privileged") is not True, f"{o['kind']}/{ctr['name']} is privileged")
        c.check(not spec.get("hostNetwork") and not spec.get("hostPID"), f"{o['kind']} uses host namespaces")

    ds = find(objects, "DaemonSet", "-worker")
    if not c.check(ds is not None, "no worker DaemonSet"):
        return
    tpl = ds["spec"]["template"]
    spec = tpl["spec"]
    ctrs = spec["containers"] + spec.get("initContainers", [])
    for ctr in ctrs:
        res = ctr.get("resources", {})
        req, lim = res.get("requests", {}), res.get("limits", {})
        # Guaranteed QoS: cpu and memory limits set, requests = limits.
        c.check("cpu" in lim and "memory" in lim, f"worker/{ctr['name']}: cpu/memory limits missing")
        c.check(req == lim, f"worker/{ctr['name']}: requests {req} != limits {lim}")
        c.check(re.fullmatch(r"[1-9][0-9]*", str(req.get("cpu", ""))) is not None,
                f"worker/{ctr['name']}: cpu {req.get('cpu')!r} is not a whole number of CPUs")
    main = spec["containers"][0]
    req, lim = main["resources"]["requests"], main["resources"]["limits"]
    c.check(str(req["cpu"]) == str(w["cpus"]), f"worker cpu {req['cpu']} != worker.cpus {w['cpus']}")
    hp = f"hugepages-{w['hugepages']['size']}"
    c.check(hp in req and req.get(hp) == lim.get(hp) == w["hugepages"]["amount"],
            f"worker {hp}: requests {req.get(hp)} limits {lim.get(hp)} values {w['hugepages']['amount']}")
    if sriov["enabled"]:
        rn = sriov["resourceName"]
        c.check(str(req.get(rn)) == str(lim.get(rn)) == str(sriov["count"]),
                f"SR-IOV resource {rn} not requested from values: {req}")
        env = {e["name"]: e.get("value") for e in main.get("env", [])}
        c.check(env.get("SKUA_SRIOV_RESOURCE") == rn, f"SKUA_SRIOV_RESOURCE {env.get('SKUA_SRIOV_RESOURCE')} != {rn}")
        ann = tpl["metadata"].get("annotations", {})
        if sriov.get("networks"):
            c.check(ann.get("k8s.v1.cni.cncf.io/networks") == ",".join(sriov["networks"]),
                    f"Multus networks annotation {ann.get('k8s.v1.cni.cncf.io/networks')}")
    caps = set(main["securityContext"]["capabilities"].get("add", []))
    c.check(REQUIRED_CAPS <= caps, f"worker capabilities {sorted(caps)} lack {sorted(REQUIRED_CAPS - caps)}")
    c.check(main["securityContext"].get("privileged") is False, "worker privileged is not explicitly false")
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    huge = [n for n, v in vols.items() if v.get("emptyDir", {}).get("medium", "").startswith("HugePages")]
    c.check(len(huge) == 1 and huge[0] in mounts, f"no mounted emptyDir of medium HugePages: {vols}")
    vfio = [n for n, v in vols.items() if v.get("hostPath", {}).get("path") == w.get("vfioHostPath", "/dev/vfio")]
    c.check(len(vfio) == 1 and mounts.get(vfio[0]) == "/dev/vfio", "no /dev/vfio hostPath mounted at /dev/vfio")
    c.check(spec.get("nodeSelector", {}) == w.get("nodeSelector", {}), f"nodeSelector {spec.get('nodeSelector')}")
    downward = [v for v in vols.values() if "downwardAPI" in v]
    c.check(any(i["fieldRef"]["fieldPath"] == "metadata.annotations" for v in downward for i in v["downwardAPI"]["items"]),
            "annotations not exposed to the worker (network-status fallback)")

    hub = find(objects, "Deployment", "-hub")
    svc = find(objects, "Service", "-hub")
    if values["hub"]["enabled"] and c.check(hub is not None and svc is not None, "hub Deployment/Service missing"):
        labels = hub["spec"]["template"]["metadata"]["labels"]
        c.check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "hub Service selects no hub pod")
        names = {p["name"] for ctr in hub["spec"]["template"]["spec"]["containers"] for p in ctr.get("ports", [])}
        c.check(svc["spec"]["ports"][0]["targetPort"] in names, "hub Service targetPort is no container port")

    agents = find(objects, "ConfigMap", "-agents")
    c.check(agents is not None, "agents ConfigMap missing")
    if agents is not None:
        c.check(set((agents.get("data") or {}).keys()) == set((values.get("agents") or {}).keys()), "agents ConfigMap keys != values.agents")
    if not values.get("existingSecret"):
        c.check(find(objects, "Secret", "-env") is not None, "env Secret missing")
    if values["rbac"]["create"]:
        cr = find(objects, "ClusterRole", "-pods")
        c.check(cr is not None and any("pods" in r["resources"] and {"get", "list", "watch"} <= set(r["verbs"]) for r in cr["rules"]),
                "no ClusterRole to watch pods")
        store = find(objects, "Role", "-store")
        cm = agents["metadata"]["name"] if agents else None
        c.check(store is not None and any("configmaps" in r["resources"] and r.get("resourceNames") == [cm]
                                          and {"get", "update", "patch"} <= set(r["verbs"]) for r in store["rules"]),
                "no Role to read/write the agents ConfigMap")
        if values["hub"].get("store") == "kube":
            c.check(store is not None and any("create" in r["verbs"] and "secrets" in r["resources"] for r in store["rules"]),
                    "hub.store is kube but the hub may not create its ConfigMap and Secret")
        sas = {o["metadata"]["name"] for _, o in objects if o["kind"] == "ServiceAccount"}
        for _, o in objects:
            if o["kind"] in ("RoleBinding", "ClusterRoleBinding"):
                for s in o["subjects"]:
                    c.check(s["name"] in sas, f"{o['kind']} {o['metadata']['name']} binds unknown ServiceAccount {s['name']}")
    cfg = find(objects, "ConfigMap", "-config")
    if c.check(cfg is not None, "config ConfigMap missing"):
        skua_yaml = yaml.safe_load(cfg["data"]["skua.yaml"])
        want = {"1Gi": "1G", "2Mi": "2M"}[w["hugepages"]["size"]]
        c.check(skua_yaml["hugepages"]["page_size"] == want, f"skua.yaml hugepages.page_size {skua_yaml['hugepages']}")
        c.check(skua_yaml.get("dataplane", {}).get("cores", 1) <= w["cpus"], "dataplane.cores exceed worker.cpus")
        if values["hub"].get("store") == "kube":
            hub_cfg = skua_yaml.get("hub", {})
            secret = values.get("existingSecret") or next((o["metadata"]["name"] for _, o in objects if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-env")), None)
            c.check(hub_cfg.get("store") == "kube" and hub_cfg.get("kube_configmap") == (agents or {}).get("metadata", {}).get("name")
                    and hub_cfg.get("kube_secret") == secret, f"skua.yaml hub store is not the chart's ConfigMap and Secret: {hub_cfg}")
            c.check(not any(v.get("emptyDir") is not None and v["name"] == "store" for v in (hub or {}).get("spec", {}).get("template", {}).get("spec", {}).get("volumes", [])),
                    "hub.store is kube but the hub still mounts an emptyDir store")


def secret_data(secret):
    """A Secret's values as text (data is base64, stringData plain)."""
    out = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out


def parse_tokens_file(text):
    """[(role, token)] as skua's hub reads a tokens file (hub/auth.rs,
    read_tokens_file), or raises ValueError."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"line {i}: expected `ROLE TOKEN`")
        role, token = parts
        if role not in ("admin", "read", "worker"):
            raise ValueError(f"line {i}: role must be admin, read or worker")
        if len(token) < 16:
            raise ValueError(f"line {i}: a token must be at least 16 characters")
        out.append((role, token))
    return out


def check_link(c, values, objects):
    """Workers reach the hub (link.hub) with a worker token the hub accepts."""
    cfg = find(objects, "ConfigMap", "-config")
    ds = find(objects, "DaemonSet", "-worker")
    secret = find(objects, "Secret", "-tokens")
    if not (c.check(cfg is not None and ds is not None, "config ConfigMap or worker DaemonSet missing")
            and c.check(secret is not None, "tokens Secret missing")):
        return
    skua_yaml = yaml.safe_load(cfg["data"]["skua.yaml"])
    link = skua_yaml.get("link") or {}
    data = secret_data(secret)
    worker_token = data.get("worker-token", "")
    admin_token = data.get("admin-token", "")
    c.check(len(worker_token) >= 16 and not any(ch.isspace() or ch == "#" for ch in worker_token),
            f"worker token of {len(worker_token)} characters (at least 16, no spaces or #)")
    c.check(len(admin_token) >= 16, f"admin token of {len(admin_token)} characters")
    for key, given in (("worker-token", values["hub"].get("workerToken")), ("admin-token", values["hub"].get("adminToken"))):
        if given:
            c.check(data.get(key) == given, f"tokens Secret {key} is not the one the values give")

    # Workers: SKUA_TOKEN from the Secret, no leftover SKUA_HUB_URL.
    main = ds["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in main.get("env", [])}
    ref = env.get("SKUA_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
    c.check(ref.get("name") == secret["metadata"]["name"] and ref.get("key") == "worker-token",
            f"worker SKUA_TOKEN is not the tokens Secret's worker-token: {env.get('SKUA_TOKEN')}")
    c.check("SKUA_HUB_URL" not in env, "worker still sets SKUA_HUB_URL (skua reads link.hub)")
    c.check(not link.get("token"), "skua.yaml link.token is set: the token would sit in a ConfigMap")

    # No token in any ConfigMap (nor anywhere outside its Secret).
    for _, o in objects:
        if o["kind"] == "ConfigMap":
            text = json.dumps(o.get("data") or {}) + json.dumps(o.get("binaryData") or {})
            c.check(worker_token not in text and admin_token not in text, f"ConfigMap {o['metadata']['name']} holds a token")
        elif o is not secret:
            text = json.dumps(o)
            c.check(worker_token not in text and admin_token not in text, f"{o['kind']} {o['metadata']['name']} holds a token")

    user_hub = ((values.get("config") or {}).get("link") or {}).get("hub")
    hub = find(objects, "Deployment", "-hub")
    svc = find(objects, "Service", "-hub")
    if not values["hub"]["enabled"]:
        c.check(link.get("hub", "") == (user_hub or ""), f"no hub in the chart, yet link.hub is {link.get('hub')!r}")
        return
    if not c.check(hub is not None and svc is not None, "hub Deployment/Service missing"):
        return
    # link.hub: the hub Service, by name, namespace and port.
    url = f"http://{svc['metadata']['name']}.{NAMESPACE}.svc:{svc['spec']['ports'][0]['port']}"
    c.check(link.get("hub") == (user_hub or url), f"skua.yaml link.hub {link.get('hub')!r}, want {user_hub or url!r}")
    c.check(svc["spec"]["ports"][0]["port"] == values["hub"]["service"]["port"], "hub Service port is not hub.service.port")

    # The hub: its tokens file mounted where hub.tokens_file says, holding
    # the workers' token with the worker role.
    path = (skua_yaml.get("hub") or {}).get("tokens_file", "")
    if not c.check(path.startswith("/"), f"skua.yaml hub.tokens_file {path!r} is no absolute path"):
        return
    spec = hub["spec"]["template"]["spec"]
    ctr = spec["containers"][0]
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    found = None
    for m in ctr.get("volumeMounts", []):
        v = vols.get(m["name"], {})
        sv = v.get("secret")
        if not sv or sv.get("secretName") != secret["metadata"]["name"]:
            continue
        rel = os.path.relpath(path, m["mountPath"])
        if rel.startswith(".."):
            continue
        items = sv.get("items")
        key = next((i["key"] for i in items if i["path"] == rel), None) if items else rel
        if key is not None and "subPath" not in m:
            found = key
    if c.check(found in data, f"hub does not mount the tokens Secret's file at {path}"):
        try:
            entries = parse_tokens_file(data[found])
        except ValueError as e:
            entries = []
            c.check(False, f"the hub would reject its tokens file: {e}")
        c.check(("worker", worker_token) in entries, "the hub's tokens file lacks `worker <the workers' token>`")
        c.check(("admin", admin_token) in entries, "the hub's tokens file lacks `admin <admin-token>`")


def check_entrypoint(c, values, objects, tmp):
    cfg = find(objects, "ConfigMap", "-config")
    script = os.path.join(tmp, "entrypoint.sh")
    with open(script, "w") as f:
        f.write(cfg["data"]["worker-entrypoint.sh"])
    fake = os.path.join(tmp, "fake-skua")
    with open(fake, "w") as f:
        f.write('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    os.chmod(fake, 0o755)

    def run(env):
        base = {"PATH": "/usr/bin:/bin", "SKUA_BIN": fake, "SKUA_PODINFO_ANNOTATIONS": os.path.join(tmp, "none")}
        base.update(env)
        p = subprocess.run(["sh", script], env=base, capture_output=True, text=True)
        return p.returncode, p.stdout.splitlines(), p.stderr

    rn = values["sriov"]["resourceName"]
    var = "PCIDEVICE_" + re.sub(r"[^A-Z0-9_]", "", rn.upper().replace(".", "_").replace("/", "_").replace("-", "_"))
    rc, argv, err = run({"SKUA_SRIOV_RESOURCE": rn, var: "0000:3b:02.1,0000:3b:02.2", "SKUA_SUBCOMMAND": "worker"})
    c.check(rc == 0 and argv == ["worker", "--config", "/etc/skua/skua.yaml", "--dpdk", "-a 0000:3b:02.1 -a 0000:3b:02.2"],
            f"entrypoint with {var}: rc {rc} argv {argv} {err}")
    ann = os.path.join(tmp, "annotations")
    status = [{"name": "default", "ips": ["10.1.0.5"], "default": True},
              {"name": "skua/skua-sriov", "interface": "net1",
               "device-info": {"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:af:0a.3"}}}]
    with open(ann, "w") as f:
        # The downward API writes key="value" with the value Go-quoted.
        f.write('k8s.v1.cni.cncf.io/network-status=' + json.dumps(json.dumps(status, indent=4)) + "\n")
    rc, argv, err = run({"SKUA_SRIOV_RESOURCE": rn, "SKUA_PODINFO_ANNOTATIONS": ann})
    c.check(rc == 0 and argv[-1] == "-a 0000:af:0a.3", f"entrypoint with the network-status annotation: rc {rc} argv {argv} {err}")
    rc, argv, err = run({"SKUA_SRIOV_RESOURCE": rn})
    c.check(rc == 1 and "no VF to capture from" in err, f"entrypoint without a VF: rc {rc} {err}")


def check_with_skua(c, values, objects, skua, tmp):
    cfg = find(objects, "ConfigMap", "-config")
    path = os.path.join(tmp, "skua.yaml")
    with open(path, "w") as f:
        f.write(cfg["data"]["skua.yaml"])
    # One VF, as the entrypoint passes it; a fake node so the sizing is the
    # same on any machine.
    root = os.path.join(tmp, "root")
    pool = os.path.join(root, "sys/devices/system/node/node0/hugepages/hugepages-2048kB")
    os.makedirs(pool, exist_ok=True)
    for name, v in (("nr_hugepages", 0), ("free_hugepages", 0), ("surplus_hugepages", 0)):
        with open(os.path.join(pool, name), "w") as f:
            f.write(f"{v}\n")
    with open(os.path.join(root, "sys/devices/system/node/node0/cpulist"), "w") as f:
        f.write("0-255\n")
    p = subprocess.run([skua, "hugepages", "plan", "--json", "--config", path, "--dpdk", "-a 0000:3b:02.0",
                        "--set", f"hugepages.root={root}"], capture_output=True, text=True)
    if not c.check(p.returncode == 0, f"skua rejects the rendered skua.yaml: {p.stderr}"):
        return None
    plan = json.loads(p.stdout)
    size = values["worker"]["hugepages"]["size"]
    page = quantity_bytes(size)
    need = sum((-(-n["hugepage_bytes"] // page)) * page for n in plan["nodes"])
    have = quantity_bytes(values["worker"]["hugepages"]["amount"])
    c.check(need <= have, f"the pod requests {values['worker']['hugepages']['amount']} of hugepages, the plan needs {need} bytes")
    return need


def check_values_set(chart_dir, name, user, skua):
    c = Checks(name)
    chart = helm.Chart.load(chart_dir)
    try:
        chart.validate_schema(user)
        c.check(True, "")
    except helm.HelmError as e:
        c.check(False, f"values.schema.json rejects the values: {e}")
        return c, {}
    values = chart.merge_values(user)

    report = helm.lint(chart_dir, user or None, strict=True, namespace="skua", kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + list(report.get("errors") or [])
    c.check(not problems, f"helm lint --strict: {problems}")
    info = [m["error"] for m in report.get("messages", []) if m.get("severity", 0) < 2]

    objects, notes = render(chart, user)
    kinds = {}
    for path, o in objects:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
        try:
            kubernetes_validate.validate(o, KUBE_VERSION, strict=True)
            c.check(True, "")
        except Exception as e:  # ValidationError, SchemaNotFoundError, ...
            c.check(False, f"{path} {o['kind']}/{o['metadata'].get('name')}: {e}")
    c.check(bool(notes.strip()) and "skua hugepages plan" in notes, "NOTES.txt empty or without the sizing step")
    check_invariants(c, values, objects)
    check_link(c, values, objects)
    need = None
    with tempfile.TemporaryDirectory() as tmp:
        check_entrypoint(c, values, objects, tmp)
        if skua:
            need = check_with_skua(c, values, objects, skua, tmp)
    summary = {
        "objects": sum(kinds.values()),
        "kinds": dict(sorted(kinds.items())),
        "lint_info": info,
        "worker_resources": find(objects, "DaemonSet", "-worker")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"],
        "plan_hugepage_bytes": need,
    }
    return c, summary


def check_rejections(chart_dir):
    """Values the schema or the templates must refuse."""
    c = Checks("bad values")
    chart = helm.Chart.load(chart_dir)
    bad = [
        ({"worker": {"cpus": 2.5}}, "fractional CPUs"),
        ({"worker": {"cpus": "500m"}}, "millicores"),
        ({"worker": {"hugepages": {"size": "4Mi", "amount": "2Gi"}}}, "hugepage size"),
        ({"worker": {"capabilities": ["SYS_NICE", "NET_RAW"]}}, "capabilities without IPC_LOCK"),
        ({"sriov": {"enabled": True, "resourceName": "no-domain"}}, "resource name without a domain"),
        ({"worker": {"dpdk": {"allowList": ["3b:02.0"]}}}, "PCI address without a domain"),
        ({"workers": {}}, "unknown top-level key"),
        ({"hub": {"store": "configmap"}}, "unknown hub store"),
        ({"agents": {"bad name": "x"}}, "agent file name"),
        ({"hub": {"workerToken": "short"}}, "worker token under 16 characters"),
        ({"hub": {"adminToken": "with a space in it, long enough"}}, "admin token with spaces"),
    ]
    for values, what in bad:
        try:
            chart.validate_schema(values)
            c.check(False, f"schema accepted {what}: {values}")
        except helm.HelmError:
            c.check(True, "")
    try:
        chart.render(values={"worker": {"cpus": 2}, "config": {"dataplane": {"cores": 3}}}, name="skua", namespace="skua")
        c.check(False, "rendered with more dataplane cores than worker CPUs")
    except helm.HelmError as e:
        c.check("must fit in worker.cpus" in str(e), f"wrong render error: {e}")
    # The chart owns hub.tokens_file (the mounted Secret).
    try:
        chart.render(values={"config": {"hub": {"tokens_file": "/elsewhere"}}}, name="skua", namespace="skua")
        c.check(False, "rendered with config.hub.tokens_file given")
    except helm.HelmError as e:
        c.check("hub.workerToken" in str(e), f"wrong render error: {e}")
    # A generated token is 40 characters; two installs do not share one.
    a, b = (secret_data(find(render(chart, {})[0], "Secret", "-tokens"))["worker-token"] for _ in range(2))
    c.check(len(a) == 40 and a != b, f"generated worker tokens {len(a)} characters, equal: {a == b}")
    # privileged can be turned on only on purpose; then the check above fires.
    objects, _ = render(chart, {"worker": {"privileged": True}})
    probe = Checks("probe")
    check_invariants(probe, chart.merge_values({"worker": {"privileged": True}}), objects)
    c.check(any("privileged" in f for f in probe.failures), "privileged: true went unnoticed")
    return c


LOOKUP = '(lookup "v1" "Secret" .Release.Namespace $name | default dict)'


def check_token_reuse(chart_dir):
    """On upgrade the tokens Secret keeps the tokens it has: with no cluster
    to answer `lookup`, the chart is copied with the lookup replaced by an
    existing Secret's shape (base64 data) and rendered."""
    c = Checks("tokens kept on upgrade")
    old = {"worker-token": "existing-worker-token-0123456789", "admin-token": "existing-admin-token-0123456789"}
    with tempfile.TemporaryDirectory() as tmp:
        copy_dir = os.path.join(tmp, "skua")
        shutil.copytree(chart_dir, copy_dir)
        path = os.path.join(copy_dir, "templates", "tokens-secret.yaml")
        with open(path) as f:
            text = f.read()
        if not c.check(LOOKUP in text, f"tokens-secret.yaml no longer looks the Secret up with {LOOKUP}"):
            return c
        stub = '(dict "data" (dict ' + " ".join(f'"{k}" ("{v}" | b64enc)' for k, v in old.items()) + "))"
        with open(path, "w") as f:
            f.write(text.replace(LOOKUP, stub))
        chart = helm.Chart.load(copy_dir)
        for user, want in (({}, old), ({"hub": {"workerToken": "given-worker-token-0123456789"}},
                                       dict(old, **{"worker-token": "given-worker-token-0123456789"}))):
            objects, _ = render(chart, user)
            data = secret_data(find(objects, "Secret", "-tokens"))
            c.check({k: data.get(k) for k in want} == want, f"tokens not kept with values {user}: {data}")
            entries = parse_tokens_file(data.get("tokens", ""))
            c.check(("worker", want["worker-token"]) in entries and ("admin", want["admin-token"]) in entries,
                    f"tokens file does not hold the kept tokens: {entries}")
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chart", required=True)
    ap.add_argument("--values", action="append", default=[], help="values file (repeatable); defaults are always checked")
    ap.add_argument("--skua", help="skua binary: check the rendered config and the hugepage sizing with it")
    args = ap.parse_args()
    print(f"helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()}, {helm.library_path}), "
          f"kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else '?'}, "
          f"schemas for Kubernetes {KUBE_VERSION}")
    sets = [("default values", {})]
    for vf in args.values:
        with open(vf) as f:
            sets.append((os.path.basename(vf), yaml.safe_load(f) or {}))
    # The other switches of the chart render valid objects too.
    sets += [
        ("variant: 2 MiB pages", {"worker": {"hugepages": {"size": "2Mi", "amount": "512Mi"}}}),
        ("variant: no SR-IOV, allow-list", {"sriov": {"enabled": False}, "worker": {"dpdk": {"allowList": ["0000:3b:02.0"]}}}),
        ("variant: no hub, existing Secret", {"hub": {"enabled": False}, "existingSecret": "skua-env-external"}),
        ("variant: no RBAC", {"rbac": {"create": False}, "serviceAccount": {"create": False}}),
        ("variant: directory store, existing Secret", {"hub": {"store": "dir"}, "existingSecret": "skua-env-external"}),
        ("variant: own tokens, port, fullname", {"hub": {"workerToken": "w0rker-token-0123456789", "adminToken": "adm1n-token-0123456789",
                                                        "service": {"port": 9443}}, "fullnameOverride": "capture"}),
        ("variant: own link.hub", {"config": {"link": {"hub": "https://hub.example.invalid:8443"}}}),
        ("variant: no hub, own link.hub and token", {"hub": {"enabled": False, "workerToken": "w0rker-token-0123456789"},
                                                      "config": {"link": {"hub": "https://hub.example.invalid:8443"}}}),
    ]
    results = []
    for name, user in sets:
        variant = name.startswith("variant:")
        c, summary = check_values_set(args.chart, name, user, None if variant else args.skua)
        results.append(c)
        print(f"\n== {c.name}: {c.passed} checks passed, {len(c.failures)} failed")
        for k, v in ([] if variant else summary.items()):
            print(f"   {k}: {v}")
        for f in c.failures:
            print(f"   FAIL: {f}")
    for c in (check_rejections(args.chart), check_token_reuse(args.chart)):
        results.append(c)
        print(f"\n== {c.name}: {c.passed} checks passed, {len(c.failures)} failed")
        for f in c.failures:
            print(f"   FAIL: {f}")
    failed = sum(len(r.failures) for r in results)
    passed = sum(r.passed for r in results)
    print(f"\nhelm chart checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
