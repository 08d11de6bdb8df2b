using CsCheck;
using Loom.Core.Selection;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Selection;

public sealed class LabelSelectorPropertyTests
{
    // Few keys and values, so random selectors hit present, absent, equal and different values often.
    private static readonly string[] Keys = ["app", "tier", "zone", "legacy"];
    private static readonly string[] Values = ["a", "b", "c"];
    private static readonly string[] Operators = ["In", "NotIn", "Exists", "DoesNotExist"];

    private static readonly Gen<Dictionary<string, string>> LabelSet =
        Gen.Select(Gen.Int[0, Keys.Length - 1], Gen.Int[0, Values.Length - 1]).Array[0, 4]
            .Select(pairs => pairs.GroupBy(p => Keys[p.Item1]).ToDictionary(g => g.Key, g => Values[g.Last().Item2], StringComparer.Ordinal));

    private static readonly Gen<(string Key, string Op, string[] Values)> Requirement =
        Gen.Select(Gen.Int[0, Keys.Length - 1], Gen.Int[0, Operators.Length - 1], Gen.Int[0, Values.Length - 1].Array[1, 3])
            .Select(t => (Keys[t.Item1], Operators[t.Item2], Operators[t.Item2] is "In" or "NotIn" ? t.Item3.Select(i => Values[i]).Distinct().ToArray() : []));

    // The Kubernetes rules, written out plainly.
    private static bool Expected(Dictionary<string, string> labels, Dictionary<string, string> matchLabels, (string Key, string Op, string[] Values)[] requirements)
    {
        foreach (var (key, value) in matchLabels)
        {
            if (!labels.TryGetValue(key, out var actual) || actual != value)
            {
                return false;
            }
        }

        foreach (var (key, op, values) in requirements)
        {
            var present = labels.TryGetValue(key, out var actual);
            var ok = op switch
            {
                "In" => present && values.Contains(actual),
                "NotIn" => !present || !values.Contains(actual),
                "Exists" => present,
                "DoesNotExist" => !present,
                _ => throw new InvalidOperationException(op),
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    [Fact]
    public void Matches_agrees_with_the_kubernetes_rules()
    {
        Gen.Select(LabelSet, LabelSet, Requirement.Array[0, 3]).Sample((labels, matchLabels, requirements) =>
        {
            var errors = new List<FieldError>();
            var selector = LabelSelector.Create(matchLabels, [.. requirements.Select(r => (r.Key, r.Op, (IReadOnlyList<string>)r.Values))], "spec.selector", errors);
            Assert.Empty(errors);
            Assert.Equal(Expected(labels, matchLabels, requirements), selector!.Matches(labels));
            Assert.Equal(selector.IsEmpty, matchLabels.Count == 0 && requirements.Length == 0);
        }, iter: 5000);
    }

    [Fact]
    public void A_service_selector_matches_as_its_pairs_unless_empty()
    {
        Gen.Select(LabelSet, LabelSet).Sample((labels, selector) =>
            Assert.Equal(selector.Count > 0 && selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value), LabelSelector.ForService(selector).Matches(labels)),
            iter: 2000);
    }

    [Fact]
    public void An_index_selects_exactly_what_matching_every_item_selects()
    {
        Gen.Select(LabelSet.Array[0, 30], LabelSet, Requirement.Array[0, 2], Gen.Bool).Sample((items, matchLabels, requirements, service) =>
        {
            var errors = new List<FieldError>();
            var selector = service
                ? LabelSelector.ForService(matchLabels)
                : LabelSelector.Create(matchLabels, [.. requirements.Select(r => (r.Key, r.Op, (IReadOnlyList<string>)r.Values))], "spec.selector", errors)!;
            var numbered = items.Select((labels, i) => (Labels: labels, Index: i)).ToList();
            var index = new LabelIndex<(Dictionary<string, string> Labels, int Index)>(numbered, x => x.Labels);
            Assert.Equal(numbered.Where(x => selector.Matches(x.Labels)).Select(x => x.Index), index.Select(selector).Select(x => x.Index));
        }, iter: 3000);
    }
}
