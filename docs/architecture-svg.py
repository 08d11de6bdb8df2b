#!/usr/bin/env python3
"""Draws docs/architecture.svg: the Service path and the pod ADD path, meeting in the cluster store.

    python3 docs/architecture-svg.py > docs/architecture.svg

Plain Python 3, no packages. Boxes are placed on a three-column grid; each box is a title line and detail lines.
"""
from html import escape

W, H = 1280, 1010
COL = {"left": (30, 370), "center": (455, 370), "right": (880, 370)}

# Fill and stroke per kind of box (who runs the code), shown in the legend.
KINDS = {
    "lab": ("#eef1f5", "#5b6b7f", "lab / container runtime"),
    "cni": ("#fdecd9", "#c26a12", "loom-cni (one process per call)"),
    "agent": ("#e3eefb", "#2f6db5", "loom agent (one per node)"),
    "store": ("#fff6cc", "#a68a00", "cluster store"),
    "kernel": ("#e4f4e4", "#2e7d32", "kernel objects"),
}

out = []


def box(col, y, h, kind, title, lines, x=None, w=None):
    cx, cw = COL[col] if col else (x, w)
    fill, stroke, _ = KINDS[kind]
    out.append(f'<rect x="{cx}" y="{y}" width="{cw}" height="{h}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>')
    out.append(f'<text x="{cx + 12}" y="{y + 21}" class="t">{escape(title)}</text>')
    for i, line in enumerate(lines):
        cls = "c" if line.startswith("src/") or line.startswith("bpf/") else "d"
        out.append(f'<text x="{cx + 12}" y="{y + 40 + 16 * i}" class="{cls}">{escape(line)}</text>')
    return cx, y, cw, h


def arrow(points, label=None, label_at=None, color="#333", vertical=False):
    d = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(points))
    out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.6" marker-end="url(#arrow)"/>')
    if label:
        lx, ly = label_at
        turn = f' text-anchor="middle" transform="rotate(-90 {lx} {ly})"' if vertical else ""
        out.append(f'<text x="{lx}" y="{ly}" class="l"{turn}>{escape(label)}</text>')


def bottom(b):
    x, y, w, h = b
    return x + w / 2, y + h


def top(b):
    x, y, w, _ = b
    return x + w / 2, y


out.append('<text x="30" y="34" class="h">Service path</text>')
out.append('<text x="30" y="54" class="s">a Service from YAML to rules or map entries</text>')
out.append('<text x="880" y="34" class="h">Pod ADD path</text>')
out.append('<text x="880" y="54" class="s">a pod from the runtime to an Endpoint in the store</text>')

# Legend, top centre.
lx, ly = 455, 22
for i, (kind, (fill, stroke, name)) in enumerate(KINDS.items()):
    row, colx = divmod(i, 2)
    x = lx + colx * 190
    y = ly + row * 20
    out.append(f'<rect x="{x}" y="{y}" width="14" height="12" rx="2" fill="{fill}" stroke="{stroke}"/>')
    out.append(f'<text x="{x + 20}" y="{y + 11}" class="s">{escape(name)}</text>')

# Service path, left column.
l1 = box("left", 90, 80, "lab", "Kubernetes YAML", [
    "examples/scenario/webpod.yaml",
    "loom lab apply -f FILE",
])
l2 = box("left", 210, 96, "lab", "Lab.ApplyAsync", [
    "Manifests.Parse: every document checked first;",
    "one error and nothing is applied",
    "src/Loom.Lab/LabApi.cs, Manifests.cs",
])
l3 = box("left", 346, 96, "lab", "ApplyServiceAsync", [
    "ClusterIP from ClusterIpAllocator (10.96.0.0/12)",
    "store.PutAsync(Service), compare-and-swap",
    "src/Loom.Core/Services/ClusterIpAllocator.cs",
])
arrow([bottom(l1), top(l2)])
arrow([bottom(l2), top(l3)])

# Pod ADD path, right column.
r1 = box("right", 90, 80, "lab", "Container runtime", [
    "Lab.AddPod + CniChain (or podman, ...)",
    "CNI_COMMAND=ADD, 10-loom.conflist on stdin",
])
r2 = box("right", 200, 64, "cni", "loom-cni: BridgePlugin.AddAsync", [
    "src/Loom.Cni/BridgePlugin.Add.cs (undo on failure)",
])
r3 = box("right", 294, 80, "cni", "IPAM (built-in, host-local layout)", [
    "SubnetFile reads subnet.env, IpAllocator takes",
    "an address: dataDir/loom/<ip>  (src/Loom.Core/Ipam)",
])
r4 = box("right", 404, 80, "kernel", "Wiring over netlink", [
    "cni0 bridge + gateway address, veth pair,",
    "eth0 address and routes in the pod",
])
r5 = box("right", 514, 80, "cni", "AgentRegistration", [
    "endpoint-add over the agent's unix socket",
    "src/Loom.Cni/AgentRegistration.cs",
])
r6 = box("right", 624, 80, "agent", "Agent API: HandleAsync", [
    "store.PutAsync(Endpoint: node, IPs, labels)",
    "src/Loom.Agent/Api/ApiController.cs",
])
for a, b in [(r1, r2), (r2, r3), (r3, r4), (r4, r5), (r5, r6)]:
    arrow([bottom(a), top(b)])

# The store, centre: both paths write to it.
st = box("center", 300, 260, "store", "Cluster store (IStore)", [
    "SQLite (one machine) or etcd",
    "src/Loom.Store/",
    "",
    "kinds: service, endpoint, node,",
    "config (cluster), nodeconfig, pod-CIDR claims",
    "",
    "one revision for every write;",
    "list at a revision, then watch from it",
    "",
    "Services come from the left,",
    "Endpoints from the right",
])
sx, sy, sw, sh = st
arrow([(l3[0] + l3[2], 394), (sx, 394)], "Service", (l3[0] + l3[2] + 10, 384))
arrow([(r6[0], 664), (sx + sw + 40, 664), (sx + sw + 40, sy + sh - 30), (sx + sw, sy + sh - 30)],
      "Endpoint", (sx + sw + 34, 600), vertical=True)

# The agent's service loop, centre, under the store.
a1 = box("center", 610, 96, "agent", "ServiceController: caches -> table", [
    "ObjectCache<Service>, <Endpoint>: changes only",
    "-> ServiceTable (recomputes touched Services)",
    "src/Loom.Agent/Services/, Datapath/Services/ServiceTable*.cs",
])
arrow([bottom(st), top(a1)], "watch", (sx + sw / 2 + 8, sy + sh + 30))

a2 = box("center", 740, 96, "agent", "Reconciler -> IServiceBackend.Update", [
    "changed ServicePortStates as rows; retry, full pass",
    "backend: NodeConfig, else agent, else cluster",
    "src/Loom.Core/Reconcile/, Agent/Services/ServiceBackendOperations.cs",
])
arrow([bottom(a1), top(a2)])

# The three IServiceBackend implementations, bottom row.
k1 = box("left", 880, 112, "kernel", "iptables: IptablesServiceBackend", [
    "IptablesRules -> iptables-restore --noflush",
    "KUBE-SERVICES, KUBE-SVC-*, KUBE-SEP-*,",
    "KUBE-POSTROUTING, KUBE-MARK-MASQ",
    "src/Loom.Datapath/Services/IptablesRules.cs",
])
k2 = box("center", 880, 112, "kernel", "nftables: NftablesServiceBackend", [
    "NftablesRules -> nft -f - (one transaction)",
    "table ip kube-proxy, service-ips verdict map,",
    "numgen endpoint choice",
    "src/Loom.Datapath/Services/NftablesRules.cs",
])
k3 = box("right", 880, 112, "kernel", "ebpf: EbpfServiceBackend", [
    "lb4_svc, lb4_backends, lb4_revnat, ... pinned;",
    "tc on each pod veth, cgroup connect4/sendmsg4",
    "bpf/lb4.c",
    "src/Loom.Datapath/Services/Ebpf/",
])
ax, ay = bottom(a2)
arrow([(ax, ay), (ax, 858), (k1[0] + k1[2] / 2, 858), top(k1)])
arrow([(ax, ay), top(k2)], "IServiceBackend.Sync", (ax + 8, 874))
arrow([(ax, ay), (ax, 858), (k3[0] + k3[2] / 2, 858), top(k3)])

svg = f'''<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<!-- Generated by docs/architecture-svg.py; edit that and regenerate. -->
<defs>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">
<path d="M0,0 L10,5 L0,10 z" fill="#333"/>
</marker>
<style>
.h {{ font-size: 20px; font-weight: bold; fill: #222; }}
.s {{ font-size: 12px; fill: #444; }}
.t {{ font-size: 14px; font-weight: bold; fill: #111; }}
.d {{ font-size: 12px; fill: #222; }}
.c {{ font-size: 11px; fill: #555; font-family: DejaVu Sans Mono, monospace; }}
.l {{ font-size: 12px; font-style: italic; fill: #333; }}
</style>
</defs>
<rect width="{W}" height="{H}" fill="#ffffff"/>
{chr(10).join(out)}
</svg>
'''
print(svg, end="")
