using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Loom.Lab.Migration;
using Loom.Linux;

namespace Loom.Lab.Tests.Reliability;

/// <summary>
/// HTTP requests to a Service from a pod, one every 100 ms on a new connection (the migration probe's request,
/// <see cref="ProbeRequests.HttpGetAsync"/>), each started on schedule while earlier ones still wait, counted as they end.
/// </summary>
internal sealed class StoreOutageProbe : IAsyncDisposable
{
    private readonly ConcurrentQueue<(TimeSpan At, string? Failure)> _results = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task _loop;

    public StoreOutageProbe(string podNetns, IPEndPoint target)
    {
        var ns = NetNs.Open(podNetns);
        _loop = Task.Run(async () =>
        {
            using (ns)
            {
                var inFlight = new List<Task>();
                using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
                while (!_stop.IsCancellationRequested)
                {
                    inFlight.RemoveAll(t => t.IsCompleted);
                    inFlight.Add(OneAsync(ns, target));
                    try
                    {
                        await timer.WaitForNextTickAsync(_stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }

                await Task.WhenAll(inFlight);
            }
        });
    }

    public int Requests => _results.Count;

    public IReadOnlyList<(TimeSpan At, string? Failure)> Failures => [.. _results.Where(r => r.Failure is not null)];

    public TimeSpan Elapsed => _clock.Elapsed;

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        _stop.Dispose();
    }

    private async Task OneAsync(NetNsHandle ns, IPEndPoint target)
    {
        var at = _clock.Elapsed;
        try
        {
            await ProbeRequests.HttpGetAsync(() => NetNs.Run(ns, ProbeRequests.Tcp), target, TimeSpan.FromSeconds(2), CancellationToken.None);
            _results.Enqueue((at, null));
        }
        catch (ProbeException e)
        {
            _results.Enqueue((at, e.Message));
        }
    }
}
