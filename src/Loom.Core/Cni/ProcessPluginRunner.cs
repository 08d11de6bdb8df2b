using System.ComponentModel;
using System.Diagnostics;

namespace Loom.Core.Cni;

/// <summary>Runs plugins as child processes.</summary>
internal sealed class ProcessPluginRunner : IPluginRunner
{
    private const int ETXTBSY = 26;
    private const int MaxBusyRetries = 5;

    public static ProcessPluginRunner Instance { get; } = new();

    public async Task<PluginRunResult> RunAsync(string path, ReadOnlyMemory<byte> stdin, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(path)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment.Clear();
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        using var process = await StartAsync(info, cancellationToken).ConfigureAwait(false);
        try
        {
            var stdout = new MemoryStream();
            var stderr = new MemoryStream();
            var readOut = process.StandardOutput.BaseStream.CopyToAsync(stdout, cancellationToken);
            var readErr = process.StandardError.BaseStream.CopyToAsync(stderr, cancellationToken);
            try
            {
                await process.StandardInput.BaseStream.WriteAsync(stdin, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The plugin exited without reading all of stdin; its exit code and output tell why.
            }
            finally
            {
                process.StandardInput.Close();
            }

            await Task.WhenAll(readOut, readErr).ConfigureAwait(false);
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            return new PluginRunResult(process.ExitCode, stdout.ToArray(), stderr.ToArray());
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
    }

    private static async Task<Process> StartAsync(ProcessStartInfo info, CancellationToken cancellationToken)
    {
        // Like libcni: a plugin binary that is being replaced fails with "text file busy"; wait and retry.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return Process.Start(info) ?? throw new CniException(CniErrorCodes.Internal, $"failed to start plugin {info.FileName}");
            }
            catch (Win32Exception ex) when (ex.NativeErrorCode == ETXTBSY && attempt < MaxBusyRetries)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
            catch (Win32Exception ex)
            {
                throw new CniException(CniErrorCodes.Internal, $"failed to exec plugin {info.FileName}", ex.Message, ex);
            }
        }
    }
}
