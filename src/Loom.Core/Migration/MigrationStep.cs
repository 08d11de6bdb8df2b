using System.Text.Json.Serialization;

namespace Loom.Core.Migration;

/// <summary>A step of <c>migrate node</c> (<see cref="MigrationPlan.Migrate"/>) or of its rollback (<see cref="MigrationPlan.Rollback"/>).</summary>
public enum MigrationStep
{
    [JsonStringEnumMemberName("cordon")]
    Cordon,

    [JsonStringEnumMemberName("drain")]
    Drain,

    [JsonStringEnumMemberName("label")]
    Label,

    [JsonStringEnumMemberName("restart-agent")]
    RestartAgent,

    [JsonStringEnumMemberName("reboot")]
    Reboot,

    [JsonStringEnumMemberName("verify")]
    Verify,

    [JsonStringEnumMemberName("uncordon")]
    Uncordon,

    [JsonStringEnumMemberName("rollback-unlabel")]
    RollbackUnlabel,

    [JsonStringEnumMemberName("rollback-restore-cni-config")]
    RollbackRestoreCniConfig,

    [JsonStringEnumMemberName("rollback-restart-agent")]
    RollbackRestartAgent,

    [JsonStringEnumMemberName("rollback-uncordon")]
    RollbackUncordon,

    [JsonStringEnumMemberName("rollback-delete-test-pod")]
    RollbackDeleteTestPod,
}
