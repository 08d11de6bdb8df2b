using System.Text.Json.Serialization;

namespace Loom.Core.Migration;

public enum NodeMigrationPhase
{
    /// <summary>Still on the old network.</summary>
    [JsonStringEnumMemberName("pending")]
    Pending,

    /// <summary>Inside <c>migrate node</c> (or its rollback): the recorded step says where.</summary>
    [JsonStringEnumMemberName("migrating")]
    Migrating,

    /// <summary>Verified on the new network and uncordoned.</summary>
    [JsonStringEnumMemberName("migrated")]
    Migrated,

    /// <summary>Moved back to the old network after a failed verification or on demand.</summary>
    [JsonStringEnumMemberName("rolled-back")]
    RolledBack,
}
