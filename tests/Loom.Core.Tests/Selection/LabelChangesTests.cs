using Loom.Core.Selection;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Selection;

public sealed class LabelChangesTests
{
    [Fact]
    public void Sets_and_removes_as_kubectl_label_does()
    {
        var errors = new List<FieldError>();
        var changes = LabelChanges.Parse(["io.cilium.migration/cilium-default=true", "old-", "empty=", "absent-"], errors);
        Assert.Empty(errors);
        var labels = changes!.ApplyTo(new Dictionary<string, string> { ["old"] = "x", ["kept"] = "y", ["empty"] = "z" });
        Assert.Equal(new Dictionary<string, string> { ["kept"] = "y", ["empty"] = "", ["io.cilium.migration/cilium-default"] = "true" }, labels);
    }

    [Theory]
    [InlineData("bad key=1", "labels: Invalid value: \"bad key\"")]
    [InlineData("=x", "labels: Invalid value: \"=x\": must be KEY=VALUE or KEY-")]
    [InlineData("plain", "labels: Invalid value: \"plain\": must be KEY=VALUE or KEY-")]
    [InlineData("k=bad value", "labels: Invalid value: \"bad value\"")]
    public void A_bad_argument_is_named_and_nothing_is_returned(string argument, string error)
    {
        var errors = new List<FieldError>();
        Assert.Null(LabelChanges.Parse(["good=1", argument], errors));
        Assert.StartsWith(error, Assert.Single(errors).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_both_set_and_removed_is_refused()
    {
        var errors = new List<FieldError>();
        Assert.Null(LabelChanges.Parse(["a=1", "a-"], errors));
        Assert.Equal("labels: Invalid value: \"a\": both set and removed", Assert.Single(errors).ToString());
    }
}
