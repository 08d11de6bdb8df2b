namespace Loom.Lab.Tests;

/// <summary>YAML the manifest fuzz target found escaping the loader as ArgumentException / InvalidOperationException (YamlDotNet).</summary>
public class ManifestFuzzRegressionTests
{
    [Theory]
    [InlineData("a:\n   : b\n")]
    [InlineData("a:\n [ b: c\nd: e\n")]
    public void Malformed_yaml_is_an_error_in_the_set(string yaml)
    {
        var set = Manifests.Parse(yaml);
        Assert.Empty(set.Objects);
        Assert.StartsWith("YAML: ", Assert.Single(set.Errors), StringComparison.Ordinal);
    }
}
