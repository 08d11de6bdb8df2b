using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Loom.Lab.Migration;
using Loom.Linux;

namespace Loom.Lab.Tests.Reliability;

/// <summary>
/// Requests to a Service from a pod, one every 100 ms on a new connection (an HTTP GET is the migration probe's,
/// <see cref="ProbeRequests.HttpGetAsync"/>), each started on schedule while earlier ones still wait, counted as they end;
/// any exception is a failed request.
/// </summary>
internal sealed class StoreOutageProbe : IAsyncDisposable
{
    private readonly ConcurrentQueue<(TimeSpan At, string? Failure)> _results = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task _loop;

    private readonly Func<Func<System.Net.Sockets.Socket>, Task> _request;

    public StoreOutageProbe(string podNetns, IPEndPoint target)
        : this(podNetns, newSocket => ProbeRequests.HttpGetAsync(newSocket, target, TimeSpan.FromSeconds(2), CancellationToken.None))
    {
    }

    public StoreOutageProbe(string podNetns, Func<Func<System.Net.Sockets.Socket>, Task> request)
    {
        _request = request;
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
                    inFlight.Add(OneAsync(ns));
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

    private async Task OneAsync(NetNsHandle ns)
    {
        var at = _clock.Elapsed;
        try
        {
            await _request(() => NetNs.Run(ns, ProbeRequests.Tcp));
            _results.Enqueue((at, null));
        }
        catch (Exception e)
        {
            _results.Enqueue((at, $"{e.GetType().Name}: {e.Message}"));
        }
    }
}
