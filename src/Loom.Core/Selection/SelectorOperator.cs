using System.Text.Json.Serialization;

namespace Loom.Core.Selection;

/// <summary>A matchExpressions operator (metav1.LabelSelectorOperator); stored by name, as the API writes it.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SelectorOperator>))]
public enum SelectorOperator
{
    In,
    NotIn,
    Exists,
    DoesNotExist,
}
