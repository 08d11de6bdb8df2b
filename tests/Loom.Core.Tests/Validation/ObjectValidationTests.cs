using System.Net;
using Loom.Core.Model;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Validation;

public sealed class ObjectValidationTests
{
    private static Endpoint Pod(string ns = "default", string name = "web-1", string node = "k8s-w1", Dictionary<string, string>? labels = null) => new()
    {
        Namespace = ns,
        Name = name,
        Node = node,
        ContainerId = "c",
        IPs = [IPAddress.Parse("10.244.1.2")],
        Labels = labels ?? new Dictionary<string, string> { ["app"] = "web" },
    };

    [Fact]
    public void A_valid_endpoint_has_no_errors() => Assert.Empty(ObjectValidation.Validate(Pod(name: "webpod-5d8f.x")));

    [Theory]
    [InlineData("Default", "web", "k8s-w1", "metadata.namespace")]
    [InlineData("default", "Web", "k8s-w1", "metadata.name")]
    [InlineData("default", "web", "k8s w1", "node")]
    public void Endpoint_names_are_validated(string ns, string name, string node, string field) =>
        Assert.Contains(ObjectValidation.Validate(Pod(ns, name, node)), e => e.Field == field && e.Type == FieldErrorType.Invalid);

    [Fact]
    public void Endpoint_labels_are_validated()
    {
        var errors = ObjectValidation.Validate(Pod(labels: new Dictionary<string, string> { ["bad key"] = "v", ["app"] = new string('v', 64) }));
        Assert.Equal(2, errors.Count);
        Assert.All(errors, e => Assert.Equal("metadata.labels", e.Field));
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(1000, true)]
    [InlineData(-1, false)]
    [InlineData(1001, false)]
    public void Replicas_are_bounded(int replicas, bool valid)
    {
        var errors = new List<FieldError>();
        ObjectValidation.Replicas(errors, replicas);
        Assert.Equal(valid, errors.Count == 0);
        if (!valid)
        {
            Assert.Equal($"spec.replicas: Invalid value: {replicas}: must be between 0 and 1000, inclusive", errors[0].ToString());
        }
    }

    [Fact]
    public void Quote_escapes_quotes_backslashes_and_control_characters()
    {
        Assert.Equal("\"a\\\"b\\\\c\\nd\\te\\u0000\"", FieldError.Quote("a\"b\\c\nd\te\0"));
        Assert.Equal("null", FieldError.Quote(null));
        Assert.EndsWith("...(300 characters)\"", FieldError.Quote(new string('a', 300)), StringComparison.Ordinal);
    }
}
