using System.Collections;
using System.Text;
using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>
/// Delegates to the IPAM plugin named by <c>ipam.type</c> (spec section 4): finds it in CNI_PATH,
/// runs it with the caller's environment (CNI_COMMAND substituted) and the complete, unchanged
/// config on stdin, forwards its stderr, and turns its error result into a <see cref="CniException"/>
/// with the same code, msg and details.
/// </summary>
public sealed class IpamInvoker
{
    private readonly CniEnvironment _environment;
    private readonly IPluginRunner _runner;
    private readonly Stream? _stderr;
    private readonly IReadOnlyDictionary<string, string> _inherited;

    /// <param name="environment">The plugin's own CNI parameters.</param>
    /// <param name="runner">Process runner; null runs real child processes.</param>
    /// <param name="stderr">Where the delegated plugin's stderr goes; null means this process's stderr.</param>
    /// <param name="inheritedEnvironment">Base environment for the child; null means this process's environment.</param>
    public IpamInvoker(CniEnvironment environment, IPluginRunner? runner = null, Stream? stderr = null, IReadOnlyDictionary<string, string>? inheritedEnvironment = null)
    {
        ArgumentNullException.ThrowIfNull(environment);
        _environment = environment;
        _runner = runner ?? ProcessPluginRunner.Instance;
        _stderr = stderr;
        _inherited = inheritedEnvironment ?? ProcessEnvironment();
    }

    /// <summary>The first <c>dir/type</c> over CNI_PATH that is an existing file.</summary>
    public string FindPlugin(string type)
    {
        if (!CniNames.IsValidPluginType(type))
        {
            throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid plugin name", $"\"{type}\" must not be empty or contain path separators");
        }

        if (_environment.Path.Count == 0)
        {
            throw new CniException(CniErrorCodes.InvalidEnvironmentVariables, $"{CniEnvironment.PathVar} is empty", $"cannot find plugin \"{type}\" without {CniEnvironment.PathVar}");
        }

        foreach (var dir in _environment.Path)
        {
            var candidate = System.IO.Path.Combine(dir, type);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new CniException(CniErrorCodes.Internal, $"failed to find plugin \"{type}\" in path [{string.Join(" ", _environment.Path)}]");
    }

    /// <summary>ADD: allocates and returns the IPAM result (no interfaces, no interface indexes).</summary>
    public async Task<CniResult> AddAsync(NetConf conf, CancellationToken cancellationToken = default)
    {
        var stdout = await ExecAsync(IpamType(conf), CniCommand.Add, conf.Raw, cancellationToken).ConfigureAwait(false);
        return CniResult.Parse(stdout, conf.CniVersion);
    }

    public Task DelAsync(NetConf conf, CancellationToken cancellationToken = default) =>
        ExecAsync(IpamType(conf), CniCommand.Del, conf.Raw, cancellationToken);

    public Task CheckAsync(NetConf conf, CancellationToken cancellationToken = default) =>
        ExecAsync(IpamType(conf), CniCommand.Check, conf.Raw, cancellationToken);

    public Task StatusAsync(NetConf conf, CancellationToken cancellationToken = default) =>
        ExecAsync(IpamType(conf), CniCommand.Status, conf.Raw, cancellationToken);

    public Task GcAsync(NetConf conf, CancellationToken cancellationToken = default) =>
        ExecAsync(IpamType(conf), CniCommand.Gc, conf.Raw, cancellationToken);

    /// <summary>Runs plugin <paramref name="type"/> with <paramref name="command"/> and returns its stdout.</summary>
    public async Task<byte[]> ExecAsync(string type, CniCommand command, ReadOnlyMemory<byte> stdin, CancellationToken cancellationToken = default)
    {
        var path = FindPlugin(type);
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in _inherited)
        {
            env[k] = v;
        }

        foreach (var (k, v) in _environment.ToVariables(command))
        {
            env[k] = v;
        }

        var run = await _runner.RunAsync(path, stdin, env, cancellationToken).ConfigureAwait(false);
        if (run.Stderr.Length > 0)
        {
            var sink = _stderr ?? Console.OpenStandardError();
            await sink.WriteAsync(run.Stderr, cancellationToken).ConfigureAwait(false);
            await sink.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        if (run.ExitCode != 0)
        {
            throw PluginError(type, run);
        }

        return run.Stdout;
    }

    private static string IpamType(NetConf conf) =>
        conf?.Ipam?.Type ?? throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config", "key \"ipam\": missing; nothing to delegate to");

    /// <summary>The delegated plugin's error result, rethrown as-is; unparsable output still fails loudly.</summary>
    private static CniException PluginError(string type, PluginRunResult run)
    {
        if (string.IsNullOrWhiteSpace(Encoding.UTF8.GetString(run.Stdout)))
        {
            var stderr = Encoding.UTF8.GetString(run.Stderr).Trim();
            return new CniException(
                CniErrorCodes.Internal,
                stderr.Length == 0 ? $"plugin {type} failed with no error message (exit code {run.ExitCode})" : $"plugin {type} failed: {stderr}");
        }

        try
        {
            using var doc = JsonDocument.Parse(run.Stdout);
            var o = new JsonFields(doc.RootElement, "", CniErrorCodes.DecodingFailure, "bad error result");
            var code = o.Get("code") is { ValueKind: JsonValueKind.Number } c && c.TryGetUInt32(out var u) ? u : CniErrorCodes.Internal;
            var msg = o.GetString("msg") ?? $"plugin {type} failed (exit code {run.ExitCode})";
            return new CniException(code, msg, o.GetString("details"));
        }
        catch (Exception ex) when (ex is JsonException or CniException)
        {
            return new CniException(
                CniErrorCodes.Internal,
                $"plugin {type} failed but its error result could not be parsed",
                Encoding.UTF8.GetString(run.Stdout).Trim());
        }
    }

    private static Dictionary<string, string> ProcessEnvironment()
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            if (e.Key is string k && e.Value is string v)
            {
                env[k] = v;
            }
        }

        return env;
    }
}
