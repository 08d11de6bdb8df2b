using System.Globalization;
using System.Text.Json.Serialization;
using Loom.Core.Validation;

namespace Loom.Core.Selection;

/// <summary>
/// A Kubernetes label selector (metav1.LabelSelector): every matchLabels pair and every matchExpressions requirement
/// must hold. An empty selector matches every label set, as for a Deployment or a NetworkPolicy's podSelector;
/// a Service's selector is different (an absent or empty one selects nothing), so it is built by
/// <see cref="ForService"/>, which gives <see cref="Nothing"/> for it.
/// </summary>
public sealed class LabelSelector
{
    // Nothing has no API form (labels.Nothing() in apimachinery): it is never parsed, and serializes as nothing of its own.
    private readonly bool _nothing;

    public LabelSelector()
    {
    }

    private LabelSelector(bool nothing) => _nothing = nothing;

    /// <summary>The empty selector: matches every label set.</summary>
    public static LabelSelector Everything { get; } = new();

    /// <summary>Matches no label set: a Service without selector.</summary>
    public static LabelSelector Nothing { get; } = new(nothing: true);

    public IReadOnlyDictionary<string, string> MatchLabels { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    public IReadOnlyList<LabelSelectorRequirement> MatchExpressions { get; init; } = [];

    /// <summary>No pair and no requirement: matches everything (unless it is <see cref="Nothing"/>).</summary>
    [JsonIgnore]
    public bool IsEmpty => !_nothing && MatchLabels.Count == 0 && MatchExpressions.Count == 0;

    [JsonIgnore]
    public bool IsNothing => _nothing;

    /// <summary>Equality-based selector from a set (labels.SelectorFromSet): an empty set matches everything (a nodeSelector).</summary>
    public static LabelSelector FromSet(IReadOnlyDictionary<string, string>? set) =>
        set is null or { Count: 0 } ? Everything : new LabelSelector { MatchLabels = set };

    /// <summary>A Service's <c>spec.selector</c>: absent or empty selects no endpoint (the Service has none of its own).</summary>
    public static LabelSelector ForService(IReadOnlyDictionary<string, string>? selector) =>
        selector is null or { Count: 0 } ? Nothing : new LabelSelector { MatchLabels = selector };

    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (_nothing)
        {
            return false;
        }

        foreach (var (key, value) in MatchLabels)
        {
            if (!labels.TryGetValue(key, out var v) || !string.Equals(v, value, StringComparison.Ordinal))
            {
                return false;
            }
        }

        foreach (var requirement in MatchExpressions)
        {
            if (!requirement.Matches(labels))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// kubectl's selector syntax, requirements sorted by key (as apimachinery prints them):
    /// <c>app=web,tier in (a,b),!legacy</c>. Everything prints empty, Nothing as <c>&lt;none&gt;</c>.
    /// </summary>
    public override string ToString()
    {
        if (_nothing)
        {
            return "<none>";
        }

        var parts = MatchLabels.Select(kv => (kv.Key, Text: kv.Key + "=" + kv.Value))
            .Concat(MatchExpressions.Select(e => (e.Key, Text: e.ToString())))
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => p.Text);
        return string.Join(",", parts);
    }

    /// <summary>
    /// Builds a selector from the API shape, checked as the API server checks one (ValidateLabelSelector): label keys
    /// and values, a known operator, values required for In and NotIn and forbidden for Exists and DoesNotExist.
    /// Errors name the field under <paramref name="field"/>; on any error the result is null.
    /// </summary>
    public static LabelSelector? Create(
        IReadOnlyDictionary<string, string>? matchLabels,
        IReadOnlyList<(string Key, string Operator, IReadOnlyList<string> Values)>? matchExpressions,
        string field,
        List<FieldError> errors)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(errors);
        var before = errors.Count;
        var labels = new Dictionary<string, string>(matchLabels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        ObjectValidation.Labels(errors, labels, field + ".matchLabels");
        var requirements = new List<LabelSelectorRequirement>();
        for (var i = 0; i < (matchExpressions?.Count ?? 0); i++)
        {
            var (key, op, values) = matchExpressions![i];
            var path = string.Create(CultureInfo.InvariantCulture, $"{field}.matchExpressions[{i}]");
            if (Requirement(key, op, values ?? [], path, errors) is { } requirement)
            {
                requirements.Add(requirement);
            }
        }

        return errors.Count == before ? new LabelSelector { MatchLabels = labels, MatchExpressions = requirements } : null;
    }

    private static LabelSelectorRequirement? Requirement(string key, string op, IReadOnlyList<string> values, string path, List<FieldError> errors)
    {
        ObjectValidation.LabelKey(errors, key, path + ".key");
        SelectorOperator? parsed = op switch
        {
            "In" => SelectorOperator.In,
            "NotIn" => SelectorOperator.NotIn,
            "Exists" => SelectorOperator.Exists,
            "DoesNotExist" => SelectorOperator.DoesNotExist,
            _ => null,
        };
        switch (parsed)
        {
            case null:
                errors.Add(FieldError.NotSupported(path + ".operator", op, "supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\""));
                break;
            case SelectorOperator.In or SelectorOperator.NotIn when values.Count == 0:
                errors.Add(FieldError.Required(path + ".values", "must be specified when `operator` is 'In' or 'NotIn'"));
                break;
            case SelectorOperator.Exists or SelectorOperator.DoesNotExist when values.Count > 0:
                errors.Add(FieldError.Forbidden(path + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
                break;
        }

        for (var j = 0; j < values.Count; j++)
        {
            ObjectValidation.LabelValue(errors, values[j], string.Create(CultureInfo.InvariantCulture, $"{path}.values[{j}]"));
        }

        return parsed is { } o ? new LabelSelectorRequirement(key, o, [.. values]) : null;
    }
}
