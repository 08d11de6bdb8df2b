using System.Text.Json;
using Loom.Core.Selection;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Selection;

public sealed class LabelSelectorTests
{
    private static readonly Dictionary<string, string> Web = new() { ["app"] = "web", ["tier"] = "front" };

    private static LabelSelector Expr(string key, SelectorOperator op, params string[] values) =>
        new() { MatchExpressions = [new LabelSelectorRequirement(key, op, values)] };

    [Fact]
    public void MatchLabels_need_every_pair_with_the_same_value()
    {
        Assert.True(new LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "web" } }.Matches(Web));
        Assert.True(new LabelSelector { MatchLabels = Web }.Matches(Web));
        Assert.False(new LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "db" } }.Matches(Web));
        Assert.False(new LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "web", ["zone"] = "a" } }.Matches(Web));
        Assert.False(new LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "Web" } }.Matches(Web));
    }

    [Fact]
    public void In_needs_the_key_with_one_of_the_values()
    {
        Assert.True(Expr("tier", SelectorOperator.In, "back", "front").Matches(Web));
        Assert.False(Expr("tier", SelectorOperator.In, "back").Matches(Web));
        Assert.False(Expr("zone", SelectorOperator.In, "a").Matches(Web));
    }

    [Fact]
    public void NotIn_matches_an_absent_key_or_another_value()
    {
        Assert.True(Expr("zone", SelectorOperator.NotIn, "a").Matches(Web));
        Assert.True(Expr("tier", SelectorOperator.NotIn, "back").Matches(Web));
        Assert.False(Expr("tier", SelectorOperator.NotIn, "back", "front").Matches(Web));
    }

    [Fact]
    public void Exists_and_DoesNotExist_look_at_the_key_only()
    {
        Assert.True(Expr("app", SelectorOperator.Exists).Matches(Web));
        Assert.False(Expr("zone", SelectorOperator.Exists).Matches(Web));
        Assert.True(Expr("zone", SelectorOperator.DoesNotExist).Matches(Web));
        Assert.False(Expr("app", SelectorOperator.DoesNotExist).Matches(Web));
    }

    [Fact]
    public void Labels_and_expressions_are_all_anded()
    {
        var s = new LabelSelector
        {
            MatchLabels = new Dictionary<string, string> { ["app"] = "web" },
            MatchExpressions = [new("tier", SelectorOperator.In, ["front"]), new("legacy", SelectorOperator.DoesNotExist, [])],
        };
        Assert.True(s.Matches(Web));
        Assert.False(s.Matches(new Dictionary<string, string>(Web) { ["legacy"] = "" }));
        Assert.False(s.Matches(new Dictionary<string, string>(Web) { ["tier"] = "back" }));
    }

    [Fact]
    public void Empty_selector_matches_everything_but_a_service_without_selector_selects_nothing()
    {
        Assert.True(LabelSelector.Everything.Matches(Web));
        Assert.True(LabelSelector.Everything.Matches(new Dictionary<string, string>()));
        Assert.True(new LabelSelector().IsEmpty);
        Assert.True(LabelSelector.FromSet(new Dictionary<string, string>()).Matches(Web));
        Assert.False(LabelSelector.Nothing.Matches(Web));
        Assert.False(LabelSelector.Nothing.Matches(new Dictionary<string, string>()));
        Assert.False(LabelSelector.Nothing.IsEmpty);
        Assert.True(LabelSelector.ForService(null).IsNothing);
        Assert.False(LabelSelector.ForService(new Dictionary<string, string>()).Matches(Web));
        Assert.True(LabelSelector.ForService(new Dictionary<string, string> { ["app"] = "web" }).Matches(Web));
        Assert.False(LabelSelector.ForService(new Dictionary<string, string> { ["app"] = "db" }).Matches(Web));
    }

    [Fact]
    public void ToString_is_kubectl_syntax_sorted_by_key()
    {
        var s = new LabelSelector
        {
            MatchLabels = new Dictionary<string, string> { ["tier"] = "front", ["app"] = "web" },
            MatchExpressions =
            [
                new("zone", SelectorOperator.In, ["b", "a"]),
                new("legacy", SelectorOperator.DoesNotExist, []),
                new("env", SelectorOperator.NotIn, ["prod"]),
                new("canary", SelectorOperator.Exists, []),
            ],
        };
        Assert.Equal("app=web,canary,env notin (prod),!legacy,tier=front,zone in (a,b)", s.ToString());
        Assert.Equal("", LabelSelector.Everything.ToString());
        Assert.Equal("<none>", LabelSelector.Nothing.ToString());
        Assert.Equal("app=web", LabelSelector.ForService(new Dictionary<string, string> { ["app"] = "web" }).ToString());
    }

    [Fact]
    public void Create_accepts_a_valid_selector()
    {
        var errors = new List<FieldError>();
        var s = LabelSelector.Create(
            new Dictionary<string, string> { ["app"] = "web" },
            [("tier", "In", ["front"]), ("legacy", "DoesNotExist", [])],
            "spec.selector",
            errors);
        Assert.Empty(errors);
        Assert.NotNull(s);
        Assert.Equal("app=web,!legacy,tier in (front)", s.ToString());
    }

    [Theory]
    [InlineData("tier", "Equals", new[] { "a" }, "spec.selector.matchExpressions[0].operator: Unsupported value: \"Equals\": supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\"")]
    [InlineData("tier", "In", new string[0], "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'")]
    [InlineData("tier", "NotIn", new string[0], "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'")]
    [InlineData("tier", "Exists", new[] { "a" }, "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]
    [InlineData("tier", "DoesNotExist", new[] { "a" }, "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]
    [InlineData("-tier", "Exists", new string[0], "spec.selector.matchExpressions[0].key: Invalid value: \"-tier\"")]
    [InlineData("tier", "In", new[] { "a b" }, "spec.selector.matchExpressions[0].values[0]: Invalid value: \"a b\"")]
    public void Create_refuses_a_bad_requirement_naming_its_field(string key, string op, string[] values, string expected)
    {
        var errors = new List<FieldError>();
        Assert.Null(LabelSelector.Create(null, [(key, op, values)], "spec.selector", errors));
        var e = Assert.Single(errors);
        Assert.StartsWith(expected, e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Create_refuses_a_bad_match_label()
    {
        var errors = new List<FieldError>();
        Assert.Null(LabelSelector.Create(new Dictionary<string, string> { ["app"] = "we b" }, null, "spec.podSelector", errors));
        Assert.StartsWith("spec.podSelector.matchLabels: Invalid value: \"we b\"", Assert.Single(errors).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Json_parse_reads_the_api_shape()
    {
        var errors = new List<FieldError>();
        using var doc = JsonDocument.Parse("""{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"NotIn","values":["back"]},{"key":"x","operator":"Exists","values":null}]}""");
        var s = LabelSelectorJson.Parse(doc.RootElement, "spec.podSelector", errors);
        Assert.Empty(errors);
        Assert.Equal("app=web,tier notin (back),x", s!.ToString());
        Assert.True(LabelSelectorJson.Parse(JsonDocument.Parse("{}").RootElement, "spec.podSelector", errors)!.IsEmpty);
        Assert.Empty(errors);
    }

    [Theory]
    [InlineData("""{"matchLabel":{}}""", "spec.podSelector.matchLabel: Invalid value: unknown field")]
    [InlineData("""{"matchLabels":{"app":1}}""", "spec.podSelector.matchLabels.app: Invalid value: \"1\": must be a string")]
    [InlineData("""{"matchLabels":[]}""", "spec.podSelector.matchLabels: Invalid value: \"Array\": must be a map of strings")]
    [InlineData("""{"matchExpressions":{}}""", "spec.podSelector.matchExpressions: Invalid value: \"Object\": must be a list")]
    [InlineData("""{"matchExpressions":[{"operator":"Exists"}]}""", "spec.podSelector.matchExpressions[0].key: Required value")]
    [InlineData("""{"matchExpressions":[{"key":"a","operator":"Exists"},{"key":"b"}]}""", "spec.podSelector.matchExpressions[1].operator: Required value")]
    [InlineData("""{"matchExpressions":[{"key":"a","operator":"In","values":["x",2]}]}""", "spec.podSelector.matchExpressions[0].values[1]: Invalid value: \"2\": must be a string")]
    [InlineData("""{"matchExpressions":[{"key":"a","operator":"In","values":[]}]}""", "spec.podSelector.matchExpressions[0].values: Required value")]
    [InlineData("[]", "spec.podSelector: Invalid value: \"Array\": must be an object")]
    public void Json_parse_names_the_bad_field(string json, string expected)
    {
        var errors = new List<FieldError>();
        using var doc = JsonDocument.Parse(json);
        Assert.Null(LabelSelectorJson.Parse(doc.RootElement, "spec.podSelector", errors));
        Assert.StartsWith(expected, Assert.Single(errors).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Serializes_in_the_api_shape_and_back()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var s = new LabelSelector
        {
            MatchLabels = new Dictionary<string, string> { ["app"] = "web" },
            MatchExpressions = [new("tier", SelectorOperator.In, ["front"]), new("x", SelectorOperator.Exists, [])],
        };
        var json = JsonSerializer.Serialize(s, options);
        Assert.Equal("""{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"In","values":["front"]},{"key":"x","operator":"Exists","values":[]}]}""", json);
        var back = JsonSerializer.Deserialize<LabelSelector>(json, options)!;
        Assert.Equal(s.ToString(), back.ToString());
        Assert.False(back.IsNothing);
    }
}
