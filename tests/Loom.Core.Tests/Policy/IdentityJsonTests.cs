using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Store;

namespace Loom.Core.Tests.Policy;

public sealed class IdentityJsonTests
{
    [Fact]
    public void The_identity_kinds_round_trip_under_their_keys()
    {
        var labels = SecurityLabels.Of("a", new Dictionary<string, string> { ["app"] = "web" }, new Dictionary<string, string>());
        var identity = new SecurityIdentity { Id = 300, Labels = labels.Labels, Created = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero) };
        var json = JsonSerializer.Serialize(identity, LoomJsonContext.Default.SecurityIdentity);
        Assert.Contains("\"k8s:app\":\"web\"", json, StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize(json, LoomJsonContext.Default.SecurityIdentity)!;
        Assert.Equal(labels, SecurityLabels.FromLabels(back.Labels));
        Assert.Equal((300u, false, identity.Created), (back.Id, back.Pending, back.Created));
        Assert.Equal("300", Kinds.Identity.KeyOf(identity));

        var key = new IdentityKey { Hash = labels.Hash(), Id = 300, Labels = labels.Canonical, Dying = true };
        Assert.Equal(key, JsonSerializer.Deserialize(JsonSerializer.Serialize(key, LoomJsonContext.Default.IdentityKey), LoomJsonContext.Default.IdentityKey));
        Assert.Equal(labels.Hash(), Kinds.IdentityKey.KeyOf(key));

        var reference = new IdentityRef { Id = 300, Node = "node-1" };
        Assert.Equal(reference, JsonSerializer.Deserialize(JsonSerializer.Serialize(reference, LoomJsonContext.Default.IdentityRef), LoomJsonContext.Default.IdentityRef));
        Assert.Equal("300/node-1", Kinds.IdentityRef.KeyOf(reference));
    }
}
