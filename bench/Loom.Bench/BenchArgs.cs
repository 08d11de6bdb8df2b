using System.Globalization;

namespace Loom.Bench;

/// <summary>The benchmarks' command lines: <c>--name value</c> pairs applied in order, numbers within bounds.</summary>
internal static class BenchArgs
{
    /// <summary>Folds every <c>--name value</c> pair into <paramref name="seed"/>; <paramref name="option"/> throws for an unknown name.</summary>
    public static T Parse<T>(string[] args, T seed, Func<T, string, string, T> option)
    {
        var o = seed;
        for (var i = 0; i < args.Length; i += 2)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            o = option(o, args[i], value);
        }

        return o;
    }

    public static int Count(string s, int min, int max) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"'{s}' is not a number in {min}..{max}");
}
