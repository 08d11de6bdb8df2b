// The VXLAN device and per-peer state now live in Loom.Datapath.Networks (shared with per-network routing);
// these aliases keep the agent's files unchanged until it moves to NetworkRoutes.
global using VxlanDevice = Loom.Datapath.Networks.VxlanDevice;
global using VxlanPeer = Loom.Datapath.Networks.VxlanPeer;
global using VxlanRoutes = Loom.Datapath.Networks.VxlanRoutes;
