using Loom.Core.Validation;

namespace Loom.Core.Selection;

/// <summary>
/// <c>kubectl label</c>'s arguments: KEY=VALUE sets a label, KEY- removes one. Parsed and checked whole, so a bad
/// argument changes nothing (<c>loom node label</c> and <c>loom lab label node</c> share it).
/// </summary>
public sealed record LabelChanges(IReadOnlyDictionary<string, string> Set, IReadOnlySet<string> Remove)
{
    /// <summary>The changes, or null with <paramref name="errors"/> naming each bad argument.</summary>
    public static LabelChanges? Parse(IEnumerable<string> arguments, List<FieldError> errors)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(errors);
        var set = new Dictionary<string, string>(StringComparer.Ordinal);
        var remove = new HashSet<string>(StringComparer.Ordinal);
        var before = errors.Count;
        foreach (var change in arguments)
        {
            var eq = change.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0 && change.EndsWith('-'))
            {
                remove.Add(change[..^1]);
                ObjectValidation.LabelKey(errors, change[..^1], "labels");
            }
            else if (eq > 0)
            {
                set[change[..eq]] = change[(eq + 1)..];
                ObjectValidation.LabelKey(errors, change[..eq], "labels");
                ObjectValidation.LabelValue(errors, change[(eq + 1)..], "labels");
            }
            else
            {
                errors.Add(FieldError.Invalid("labels", change, "must be KEY=VALUE or KEY-"));
            }
        }

        if (set.Keys.FirstOrDefault(remove.Contains) is { } both)
        {
            errors.Add(FieldError.Invalid("labels", both, "both set and removed"));
        }

        return errors.Count == before ? new LabelChanges(set, remove) : null;
    }

    /// <summary><paramref name="labels"/> with the changes made (removing an absent label is no error, as in kubectl).</summary>
    public IReadOnlyDictionary<string, string> ApplyTo(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var result = new Dictionary<string, string>(labels, StringComparer.Ordinal);
        foreach (var (k, v) in Set)
        {
            result[k] = v;
        }

        foreach (var k in Remove)
        {
            result.Remove(k);
        }

        return result;
    }
}
