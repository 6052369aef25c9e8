"""The Python half of deploy/check.sh: checks of the packaging and operator assets under deploy/ that need
a parser. Run by check.sh with the test virtualenv's Python (target/venv: dockerfile-parse, PyYAML from
yamllint); each subcommand prints what it checked and exits 1 with the reasons when something is wrong.

  check.py containerfile FILE REPO_ROOT     the container file's shape (stages, user, volume, copies)
  check.py kustomize DIR OUT                render a kustomization (the subset of kustomize deploy/ uses)
  check.py configmap-toml FILE OUT          the config.toml inside a ConfigMap, written out for the host
  check.py timing UNIT TOML K8S_RENDERED    stop timeouts above each configuration's drain time
  check.py dashboard JSON METRICS           the Grafana dashboard against a real /metrics exposition
"""

import json
import os
import re
import sys


class Failed(Exception):
    pass


def fail_if(problems, what):
    if problems:
        raise Failed(f"{what}:\n" + "\n".join(f"  - {p}" for p in problems))


# --- the container file ------------------------------------------------------------------------------


def containerfile(path, root):
    from dockerfile_parse import DockerfileParser

    with open(path, "rb") as f:
        instructions = DockerfileParser(fileobj=f).structure
    problems = []
    stages = []  # (name or None, image, [instructions])
    args = {}  # ARG defaults before the first FROM: what the FROM lines may name
    for ins in instructions:
        if ins["instruction"] == "ARG" and not stages and "=" in ins["value"]:
            name, default = ins["value"].strip().split("=", 1)
            args[name] = default
        if ins["instruction"] == "FROM":
            words = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), ins["value"]).split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append((name, words[0], []))
        elif not stages:
            if ins["instruction"] not in ("ARG", "COMMENT"):
                problems.append(f"line {ins['startline'] + 1}: {ins['instruction']} before the first FROM")
        else:
            stages[-1][2].append(ins)
    if len(stages) < 2:
        problems.append(f"{len(stages)} stage(s): expected a multi-stage build (a build stage and a runtime stage)")
    names = [s[0] for s in stages]
    final_name, final_image, final = stages[-1] if stages else (None, "", [])

    users = [i["value"].strip() for i in final if i["instruction"] == "USER"]
    if not users:
        problems.append("the final stage sets no USER: the image would run as root")
    else:
        user = users[-1].split(":")[0]
        if user in ("root", "0"):
            problems.append(f"the final stage's USER is {users[-1]!r}: must not be root")
        if not user.isdigit():
            problems.append(f"the final stage's USER {users[-1]!r} is a name: Kubernetes' runAsNonRoot needs a number")
    if not any(i["instruction"] == "VOLUME" for i in final):
        problems.append("the final stage declares no VOLUME for the data directory")
    if not any(i["instruction"] == "EXPOSE" for i in final):
        problems.append("the final stage EXPOSEs no port")
    entry = [i["value"].strip() for i in final if i["instruction"] == "ENTRYPOINT"]
    if not entry or not entry[-1].startswith("["):
        problems.append("the final stage needs an ENTRYPOINT in exec form (JSON array): the image has no shell")

    copies = 0
    destinations = {}  # destination in the final stage -> source in the repository (or None)
    for stage_index, (_, _, body) in enumerate(stages):
        for ins in body:
            line = ins["startline"] + 1
            if ins["instruction"] == "ADD" and re.search(r"\bhttps?://", ins["value"]):
                problems.append(f"line {line}: ADD from a URL (unpinned download); fetch in a RUN step or COPY")
            if ins["instruction"] != "COPY":
                continue
            words = ins["value"].split()
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            if len(paths) < 2:
                problems.append(f"line {line}: COPY needs a source and a destination")
                continue
            source_stage = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
            if stage_index == len(stages) - 1:
                destinations[paths[-1].rstrip("/")] = None if source_stage else paths[0]
            if source_stage:
                if source_stage[0] not in names[:stage_index]:
                    problems.append(f"line {line}: COPY --from={source_stage[0]} names no earlier stage")
                continue
            for src in paths[:-1]:
                copies += 1
                if not os.path.exists(os.path.join(root, src)):
                    problems.append(f"line {line}: COPY source {src!r} does not exist in the repository")
                if is_ignored(root, src):
                    problems.append(f"line {line}: COPY source {src!r} is excluded by .dockerignore")
    problems += baked_config(root, final, destinations)
    fail_if(problems, f"{path}")
    print(
        f"containerfile: {len(stages)} stages ({', '.join(n or 'unnamed' for n in names)}), runtime {final_image}, "
        f"USER {users[-1]}, VOLUME and EXPOSE present, {copies} repository path(s) copied, all present; "
        f"the baked config names the volume and the copied directories"
    )


def baked_config(root, final, destinations):
    """The configuration file the image runs with must name the image's own paths: data_dir is the
    VOLUME, plugins_dir and templates_dir are copied in, and the CMD's --config is where it is copied."""
    import tomllib

    problems = []
    configs = [(dest, src) for dest, src in destinations.items() if src and src.endswith(".toml")]
    if len(configs) != 1:
        return [f"expected one configuration file copied into the final stage, found {len(configs)}"]
    dest, src = configs[0]
    with open(os.path.join(root, src), "rb") as f:
        config = tomllib.load(f)
    volumes = []
    for ins in final:
        if ins["instruction"] == "VOLUME":
            value = ins["value"].strip()
            volumes += json.loads(value) if value.startswith("[") else value.split()
    if config.get("data_dir") not in volumes:
        problems.append(f"{src}: data_dir {config.get('data_dir')!r} is not a VOLUME ({volumes})")
    for key in ("plugins_dir", "templates_dir"):
        if str(config.get(key, "")).rstrip("/") not in destinations:
            problems.append(f"{src}: {key} {config.get(key)!r} is not a directory the image copies in")
    cmd = " ".join(i["value"] for i in final if i["instruction"] in ("ENTRYPOINT", "CMD"))
    if f'"--config", "{dest}"' not in cmd:
        problems.append(f"the image does not start with --config {dest} (ENTRYPOINT and CMD: {cmd})")
    return problems


def is_ignored(root, src):
    """Whether .dockerignore at the root excludes `src` (top-level patterns: enough for this repository)."""
    ignore = os.path.join(root, ".dockerignore")
    if not os.path.exists(ignore):
        return False
    first = src.strip("/").split("/")[0]
    with open(ignore) as f:
        patterns = [p.strip() for p in f if p.strip() and not p.startswith("#")]
    return first in patterns


# --- kustomize (the subset used here) ----------------------------------------------------------------


def load_yaml_docs(path):
    import yaml

    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def merge(base, patch):
    """A strategic merge as kustomize does it for these manifests: maps merge key by key, null removes a
    key, lists of maps with a `name` merge item by item, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        out = list(base)
        for item in patch:
            at = [n for n, b in enumerate(out) if b["name"] == item["name"]]
            if at:
                out[at[0]] = merge(out[at[0]], item)
            else:
                out.append(item)
        return out
    return patch


SUPPORTED = {"apiVersion", "kind", "resources", "patches", "images", "namespace"}


def render(directory):
    import yaml

    kfile = os.path.join(directory, "kustomization.yaml")
    if not os.path.exists(kfile):
        raise Failed(f"{directory}: no kustomization.yaml")
    (k,) = load_yaml_docs(kfile)
    unsupported = set(k) - SUPPORTED
    fail_if(
        [f"field {f!r} is not rendered by deploy/check.py (extend it, or check with kubectl kustomize)" for f in unsupported],
        kfile,
    )
    objects = []
    for res in k.get("resources", []):
        path = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(path):
            objects += render(path)
        elif os.path.exists(path):
            objects += load_yaml_docs(path)
        else:
            raise Failed(f"{kfile}: resource {res!r} does not exist")
    listed = {os.path.normpath(os.path.join(directory, r)) for r in k.get("resources", [])}
    listed |= {os.path.normpath(os.path.join(directory, p["path"])) for p in k.get("patches", []) if "path" in p}
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if name.endswith(".yaml") and name != "kustomization.yaml" and full not in listed:
            raise Failed(f"{kfile}: {name} is in the directory but neither a resource nor a patch")
    for p in k.get("patches", []):
        if "path" in p:
            docs = load_yaml_docs(os.path.join(directory, p["path"]))
        else:
            docs = [d for d in yaml.safe_load_all(p["patch"]) if d is not None]
        for doc in docs:
            key = (doc["kind"], doc["metadata"]["name"])
            at = [n for n, o in enumerate(objects) if (o["kind"], o["metadata"]["name"]) == key]
            if not at:
                raise Failed(f"{kfile}: the patch for {key[0]}/{key[1]} matches no resource")
            if doc.get("$patch") == "delete":
                del objects[at[0]]
            else:
                objects[at[0]] = merge(objects[at[0]], doc)
    for image in k.get("images", []):
        for o in objects:
            for c in containers(o):
                repo = c["image"].split(":")[0]
                if repo == image["name"]:
                    c["image"] = f"{image.get('newName', repo)}:{image.get('newTag', 'latest')}"
    return objects


def containers(obj):
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def kustomize(directory, out):
    import yaml

    objects = render(directory)
    with open(out, "w") as f:
        yaml.safe_dump_all(objects, f, sort_keys=False)
    kinds = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    print(f"kustomize {directory}: {len(objects)} objects ({kinds})")


def configmap_toml(path, out):
    (cm,) = [d for d in load_yaml_docs(path) if d.get("kind") == "ConfigMap"]
    text = cm.get("data", {}).get("config.toml")
    if not text:
        raise Failed(f"{path}: the ConfigMap has no data.config.toml")
    with open(out, "w") as f:
        f.write(text)
    print(f"configmap-toml: {path} -> {out} ({len(text.splitlines())} lines)")


# --- drain timing ------------------------------------------------------------------------------------


def drain_ms(config_text, defaults):
    import tomllib

    config = tomllib.loads(config_text)
    return sum(int(config.get(k, defaults[k])) for k in ("shutdown_delay_ms", "shutdown_grace_ms")), config


def seconds(value):
    """A systemd time span such as 30, 30s, 1min 30s, in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        if unit not in units:
            raise Failed(f"unknown time unit {unit!r} in {value!r}")
        total += float(number) * units[unit]
    return total


def timing(unit, toml_path, rendered):
    """Each stop timeout must outlast the drain its configuration asks for (delay + grace); the readiness
    probe must notice a draining pod within the delay."""
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "host", "default-config.toml"), "rb") as f:
        defaults = tomllib.load(f)
    problems = []
    stop = [l.split("=", 1)[1].strip() for l in open(unit) if l.startswith("TimeoutStopSec=")]
    with open(toml_path) as f:
        drain, _ = drain_ms(f.read(), defaults)
    if not stop:
        problems.append(f"{unit}: no TimeoutStopSec= (the default, 90 s, is not derived from the drain)")
    elif seconds(stop[-1]) * 1000 <= drain:
        problems.append(f"{unit}: TimeoutStopSec={stop[-1]} is not above {toml_path}'s delay + grace ({drain} ms)")
    lines = [f"systemd: TimeoutStopSec={stop[-1] if stop else '?'} > {drain} ms"]
    for d in (o for o in load_yaml_docs(rendered) if o["kind"] == "Deployment"):
        spec = d["spec"]["template"]["spec"]
        cms = [o for o in load_yaml_docs(rendered) if o["kind"] == "ConfigMap"]
        if len(cms) != 1:
            problems.append(f"{rendered}: expected one ConfigMap, found {len(cms)}")
            continue
        drain, config = drain_ms(cms[0]["data"]["config.toml"], defaults)
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace * 1000 <= drain:
            problems.append(f"{rendered}: terminationGracePeriodSeconds {grace} is not above delay + grace ({drain} ms)")
        delay = int(config.get("shutdown_delay_ms", defaults["shutdown_delay_ms"]))
        notices = None
        for c in spec["containers"]:
            probe = c.get("readinessProbe")
            if not probe:
                problems.append(f"{rendered}: container {c['name']} has no readinessProbe")
                continue
            notices = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3) * 1000
            if notices >= delay:
                problems.append(
                    f"{rendered}: the readiness probe takes {notices} ms to see a draining pod, not less than "
                    f"shutdown_delay_ms ({delay}): the pod would stop accepting while still in the endpoints"
                )
        lines.append(
            f"kubernetes: terminationGracePeriodSeconds {grace} s > {drain} ms, "
            f"the readiness probe sees a draining pod within {notices} ms < shutdown_delay_ms {delay}"
        )
    fail_if(problems, "drain timing")
    print("timing: " + "; ".join(lines))


# --- the Grafana dashboard ---------------------------------------------------------------------------

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan",
}

# What an operator needs on the dashboard (docs/operations.md): each family must be used by a panel.
REQUIRED_FAMILIES = [
    "plugin_host_requests_total",
    "plugin_host_request_duration_seconds",
    "plugin_host_plugin_faults_total",
    "plugin_host_reloads_total",
    "plugin_host_live_generations",
    "plugin_host_in_flight_requests",
    "plugin_host_degraded",
    "process_resident_memory_bytes",
    "plugin_host_heap_in_use_bytes",
]


def families_of(metrics_text):
    families = {}
    for line in metrics_text.splitlines():
        m = re.match(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$", line)
        if m:
            families[m.group(1)] = m.group(2)
    return families


def metric_names(expr):
    """The metric names a PromQL expression reads (Grafana variables and label_values() understood)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # Grafana variables
    # label_values(metric, label): the label is not a metric.
    expr = re.sub(r"\blabel_values\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*\w+\s*\)", r"\1", expr)
    names = []
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = m.group(0)
        before = expr[: m.start()]
        if before and (before[-1].isdigit() or before[-1] == "."):
            continue  # part of a number such as 1e3
        if re.match(r"\s*\(", expr[m.end():]) or word.lower() in PROMQL_WORDS:
            continue  # a function, an aggregation or a keyword
        names.append(word)
    return names


def family_for(name, families):
    if name in families:
        return name
    for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")), ("_count", ("histogram", "summary"))):
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and families.get(base) in kinds:
            return base
    return None


def dashboard(path, metrics_path):
    with open(path) as f:
        dash = json.load(f)
    with open(metrics_path) as f:
        families = families_of(f.read())
    problems = []
    if not families:
        raise Failed(f"{metrics_path}: no '# TYPE' line: not a /metrics exposition")
    variables = dash.get("templating", {}).get("list", [])
    ds_vars = [v["name"] for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    if not ds_vars:
        problems.append("no Prometheus datasource variable in templating")
    wanted_ds = {"type": "prometheus", "uid": "${%s}" % (ds_vars[0] if ds_vars else "datasource")}
    exprs = []  # (where, expression)
    for v in variables:
        if v.get("type") == "query":
            if v.get("datasource") != wanted_ds:
                problems.append(f"variable {v['name']}: datasource is {v.get('datasource')}, not {wanted_ds}")
            query = v.get("definition") or v.get("query", {}).get("query", "")
            exprs.append((f"variable {v['name']}", query))
    panels = list(dash.get("panels", []))
    for p in dash.get("panels", []):
        panels += p.get("panels", [])
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    shown = [p for p in panels if p.get("type") != "row"]
    for p in shown:
        where = f"panel {p.get('title')!r}"
        if p.get("datasource") != wanted_ds:
            problems.append(f"{where}: datasource is {p.get('datasource')}, not {wanted_ds}")
        if not p.get("targets"):
            problems.append(f"{where}: no query")
        for t in p.get("targets", []):
            if t.get("datasource", wanted_ds) != wanted_ds:
                problems.append(f"{where} {t.get('refId')}: datasource is {t.get('datasource')}")
            exprs.append((f"{where} {t.get('refId')}", t.get("expr", "")))
    used = set()
    for where, expr in exprs:
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric name found in {expr!r}")
        for name in names:
            family = family_for(name, families)
            if family is None:
                problems.append(f"{where}: {name} is not in the host's /metrics (no '# TYPE {name}' family)")
            else:
                used.add(family)
    for family in REQUIRED_FAMILIES:
        if family not in used:
            problems.append(f"no panel shows {family}")
    fail_if(problems, path)
    print(
        f"dashboard: {len(shown)} panels, {len(exprs)} PromQL expressions over {len(used)} metric families, "
        f"every one a '# TYPE' family of the host's /metrics ({len(families)} families there)"
    )


def main(argv):
    commands = {
        "containerfile": (containerfile, 2),
        "kustomize": (kustomize, 2),
        "configmap-toml": (configmap_toml, 2),
        "timing": (timing, 3),
        "dashboard": (dashboard, 2),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        commands[argv[1]][0](*argv[2:])
    except Failed as e:
        print(f"deploy/check.py {argv[1]}: FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
