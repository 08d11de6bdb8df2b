namespace Loom.Core.Selection;

/// <summary>
/// One matchExpressions entry. NotIn and DoesNotExist match a set without the key; In and NotIn compare the value
/// with <see cref="Values"/>, which Exists and DoesNotExist ignore (validation requires it empty for them).
/// </summary>
public sealed record LabelSelectorRequirement(string Key, SelectorOperator Operator, IReadOnlyList<string> Values)
{
    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var has = labels.TryGetValue(Key, out var value);
        return Operator switch
        {
            SelectorOperator.In => has && Values.Contains(value!, StringComparer.Ordinal),
            SelectorOperator.NotIn => !has || !Values.Contains(value!, StringComparer.Ordinal),
            SelectorOperator.Exists => has,
            SelectorOperator.DoesNotExist => !has,
            _ => false,
        };
    }

    /// <summary>kubectl's form: <c>tier in (a,b)</c>, <c>tier notin (a)</c>, <c>tier</c>, <c>!tier</c>.</summary>
    public override string ToString() => Operator switch
    {
        SelectorOperator.In => $"{Key} in ({string.Join(",", Values.Order(StringComparer.Ordinal))})",
        SelectorOperator.NotIn => $"{Key} notin ({string.Join(",", Values.Order(StringComparer.Ordinal))})",
        SelectorOperator.Exists => Key,
        SelectorOperator.DoesNotExist => "!" + Key,
        _ => $"{Key} {Operator}",
    };
}
