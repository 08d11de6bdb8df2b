using System.Text.Json.Serialization;

namespace Loom.Core.Migration;

/// <summary>The steps of <c>migrate finalize</c>, in the order that keeps traffic flowing (<see cref="MigrationFinalize.Steps"/>).</summary>
public enum FinalizeStep
{
    [JsonStringEnumMemberName("policy-enforcement-default")]
    PolicyEnforcementDefault,

    [JsonStringEnumMemberName("service-backend-ebpf")]
    ServiceBackendEbpf,

    [JsonStringEnumMemberName("native-routing")]
    NativeRouting,

    [JsonStringEnumMemberName("masquerade-bpf")]
    MasqueradeBpf,

    [JsonStringEnumMemberName("host-routing-bpf")]
    HostRoutingBpf,

    [JsonStringEnumMemberName("default-network")]
    DefaultNetwork,

    [JsonStringEnumMemberName("delete-old-network")]
    DeleteOldNetwork,

    [JsonStringEnumMemberName("delete-node-config")]
    DeleteNodeConfig,

    [JsonStringEnumMemberName("remove-node-labels")]
    RemoveNodeLabels,

    [JsonStringEnumMemberName("finalized")]
    Finalized,
}
