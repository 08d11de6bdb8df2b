using System.Collections;

namespace Loom.Core.Cni;

/// <summary>
/// The CNI protocol parameters a plugin receives as environment variables, validated per command
/// (spec section 2). Build it from a lookup function so tests need not touch the real environment.
/// </summary>
public sealed class CniEnvironment
{
    public const string CommandVar = "CNI_COMMAND";
    public const string ContainerIdVar = "CNI_CONTAINERID";
    public const string NetNsVar = "CNI_NETNS";
    public const string IfNameVar = "CNI_IFNAME";
    public const string ArgsVar = "CNI_ARGS";
    public const string PathVar = "CNI_PATH";

    private CniEnvironment(CniCommand command, string? containerId, string? netNs, string? ifName, string? argsRaw, CniArgs args, string? pathRaw)
    {
        Command = command;
        ContainerId = containerId;
        NetNs = netNs;
        IfName = ifName;
        ArgsRaw = argsRaw;
        Args = args;
        PathRaw = pathRaw;
        Path = string.IsNullOrEmpty(pathRaw)
            ? []
            : pathRaw.Split(':', StringSplitOptions.RemoveEmptyEntries);
    }

    public CniCommand Command { get; }

    /// <summary>Set (and valid) for ADD, DEL and CHECK; otherwise whatever was passed, possibly null.</summary>
    public string? ContainerId { get; }

    /// <summary>Required for ADD and CHECK; optional for DEL (the namespace may already be gone).</summary>
    public string? NetNs { get; }

    /// <summary>Set (and valid) for ADD, DEL and CHECK.</summary>
    public string? IfName { get; }

    /// <summary>CNI_ARGS exactly as received, for passing on to delegated plugins.</summary>
    public string? ArgsRaw { get; }

    /// <summary>Parsed CNI_ARGS (ADD, DEL, CHECK only; empty for the other commands).</summary>
    public CniArgs Args { get; }

    /// <summary>CNI_PATH exactly as received.</summary>
    public string? PathRaw { get; }

    /// <summary>CNI_PATH split on ':' (empty entries dropped), in search order.</summary>
    public IReadOnlyList<string> Path { get; }

    /// <summary>Reads the current process environment.</summary>
    public static CniEnvironment FromProcess(IEnumerable<string>? extraKnownArgs = null) =>
        Parse(Environment.GetEnvironmentVariable, extraKnownArgs);

    /// <summary>Reads from a dictionary (e.g. <see cref="Environment.GetEnvironmentVariables()"/>).</summary>
    public static CniEnvironment Parse(IDictionary variables, IEnumerable<string>? extraKnownArgs = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return Parse(name => variables.Contains(name) ? variables[name]?.ToString() : null, extraKnownArgs);
    }

    /// <summary>
    /// Validates the variables for the command. Every failure is code 4 and names the variable(s):
    /// missing required ones are reported together, like libcni's skel.
    /// </summary>
    /// <param name="getVariable">Returns a variable's value, or null when unset.</param>
    /// <param name="extraKnownArgs">CNI_ARGS keys accepted on top of <see cref="CniArgs.DefaultKnownKeys"/>.</param>
    public static CniEnvironment Parse(Func<string, string?> getVariable, IEnumerable<string>? extraKnownArgs = null)
    {
        ArgumentNullException.ThrowIfNull(getVariable);
        var commandText = NullIfEmpty(getVariable(CommandVar));
        if (commandText is null)
        {
            throw Missing([CommandVar]);
        }

        if (!CniCommandNames.TryParse(commandText, out var command))
        {
            throw new CniException(
                CniErrorCodes.InvalidEnvironmentVariables,
                $"unknown {CommandVar}: {commandText}",
                $"{CommandVar} must be one of ADD, DEL, CHECK, STATUS, GC, VERSION");
        }

        var containerId = NullIfEmpty(getVariable(ContainerIdVar));
        var netNs = NullIfEmpty(getVariable(NetNsVar));
        var ifName = NullIfEmpty(getVariable(IfNameVar));
        var argsRaw = NullIfEmpty(getVariable(ArgsVar));
        var pathRaw = NullIfEmpty(getVariable(PathVar));

        var attachment = command is CniCommand.Add or CniCommand.Del or CniCommand.Check;
        var missing = new List<string>();
        if (attachment && containerId is null)
        {
            missing.Add(ContainerIdVar);
        }

        if (command is CniCommand.Add or CniCommand.Check && netNs is null)
        {
            missing.Add(NetNsVar);
        }

        if (attachment && ifName is null)
        {
            missing.Add(IfNameVar);
        }

        // The spec lists CNI_PATH as required only for GC (it must reach delegated IPAM plugins).
        if (command is CniCommand.Gc && pathRaw is null)
        {
            missing.Add(PathVar);
        }

        if (missing.Count > 0)
        {
            throw Missing(missing);
        }

        var args = CniArgs.Empty;
        if (attachment)
        {
            if (!CniNames.IsValidIdentifier(containerId))
            {
                throw new CniException(
                    CniErrorCodes.InvalidEnvironmentVariables,
                    $"invalid characters in {ContainerIdVar}",
                    $"{ContainerIdVar} \"{containerId}\" must start with an alphanumeric character, followed by alphanumerics, '_', '.' or '-'");
            }

            if (CniNames.InterfaceNameProblem(ifName) is { } problem)
            {
                throw new CniException(CniErrorCodes.InvalidEnvironmentVariables, $"invalid {IfNameVar}: {problem}", $"{IfNameVar}=\"{ifName}\"");
            }

            args = CniArgs.Parse(argsRaw, extraKnownArgs);
        }

        return new CniEnvironment(command, containerId, netNs, ifName, argsRaw, args, pathRaw);
    }

    /// <summary>
    /// The CNI_* variables as received, for a delegated plugin ("the same environment"), with
    /// <paramref name="command"/> substituted when given. Unset variables are left out.
    /// </summary>
    public IReadOnlyDictionary<string, string> ToVariables(CniCommand? command = null)
    {
        var vars = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [CommandVar] = (command ?? Command).ToWire(),
        };
        Add(vars, ContainerIdVar, ContainerId);
        Add(vars, NetNsVar, NetNs);
        Add(vars, IfNameVar, IfName);
        Add(vars, ArgsVar, ArgsRaw);
        Add(vars, PathVar, PathRaw);
        return vars;

        static void Add(Dictionary<string, string> d, string k, string? v)
        {
            if (v is not null)
            {
                d[k] = v;
            }
        }
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static CniException Missing(IEnumerable<string> names)
    {
        var joined = string.Join(",", names);
        return new CniException(CniErrorCodes.InvalidEnvironmentVariables, $"required env variables [{joined}] missing");
    }
}
