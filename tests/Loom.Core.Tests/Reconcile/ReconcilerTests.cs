using Loom.Core.Reconcile;
using Microsoft.Extensions.Time.Testing;

namespace Loom.Core.Tests.Reconcile;

public sealed class ReconcilerTests : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    private readonly FakeTimeProvider _time = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;

    private Reconciler<string, int> Start(TableTarget target)
    {
        var r = new Reconciler<string, int>(target, _time, new ReconcilerOptions
        {
            Name = "test",
            FullPassInterval = Interval,
            RetryBackoff = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1)),
        });
        _run = r.RunAsync(_stop.Token);
        return r;
    }

    [Fact]
    public async Task Rows_are_written_in_change_order_and_reach_done()
    {
        var target = new TableTarget();
        var r = Start(target);
        r.Upsert("b", 2);
        r.Upsert("a", 1);
        r.Upsert("b", 2); // equal to the desired value: nothing to do
        await r.WaitIdleAsync();

        Assert.Equal("a=1 b=2", target.Text);
        Assert.Equal(["update b=2", "update a=1"], target.Log);
        Assert.All(r.Status(), s => Assert.Equal(RowState.Done, s.State));
        Assert.Equal((2L, 0, 2), (r.Stats.Updates, r.Stats.Pending, r.Stats.Done));

        r.Upsert("a", 1);
        await r.WaitIdleAsync();
        Assert.Equal(2, target.Log.Count);
    }

    [Fact]
    public async Task A_failing_row_is_retried_with_exponential_backoff_and_recovers()
    {
        var target = new TableTarget();
        target.Failures["a"] = 2;
        var r = Start(target);
        r.Upsert("a", 1);
        r.Upsert("b", 2);
        await r.WaitIdleAsync();

        var a = r.Status().Single(s => s.Key == "a");
        Assert.Equal((RowState.Error, 1, "EBUSY writing a"), (a.State, a.Attempts, a.Error));
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromMilliseconds(100), a.RetryAt);
        Assert.Equal("b=2", target.Text);

        _time.Advance(TimeSpan.FromMilliseconds(99));
        await r.WaitIdleAsync();
        Assert.Equal(1, r.Status().Single(s => s.Key == "a").Attempts);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        await r.WaitIdleAsync();
        a = r.Status().Single(s => s.Key == "a");
        Assert.Equal((RowState.Error, 2), (a.State, a.Attempts));
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromMilliseconds(200), a.RetryAt);

        _time.Advance(TimeSpan.FromMilliseconds(200));
        await r.WaitIdleAsync();
        Assert.Equal(RowState.Done, r.Status().Single(s => s.Key == "a").State);
        Assert.Equal("a=1 b=2", target.Text);
        Assert.Equal(2, r.Stats.Failures);
        Assert.Equal(3, target.Log.Count(l => l == "update a=1"));
    }

    [Fact]
    public async Task A_new_value_for_a_failing_row_is_tried_at_once()
    {
        var target = new TableTarget();
        target.Failures["a"] = 1;
        var r = Start(target);
        r.Upsert("a", 1);
        await r.WaitIdleAsync();
        Assert.Equal(RowState.Error, r.Status()[0].State);

        r.Upsert("a", 2);
        await r.WaitIdleAsync();
        Assert.Equal("a=2", target.Text);
        Assert.Equal(RowState.Done, r.Status()[0].State);
    }

    [Fact]
    public async Task Deletes_are_applied_and_retried_and_the_row_goes_away()
    {
        var target = new TableTarget();
        var r = Start(target);
        r.Upsert("a", 1);
        r.Upsert("b", 2);
        await r.WaitIdleAsync();

        target.Failures["a"] = 1;
        r.Delete("a");
        r.Delete("nope");
        await r.WaitIdleAsync();
        var a = r.Status().Single(s => s.Key == "a");
        Assert.Equal((true, RowState.Error), (a.Deleting, a.State));
        Assert.Equal(["b"], r.Desired.Keys);

        _time.Advance(TimeSpan.FromMilliseconds(100));
        await r.WaitIdleAsync();
        Assert.Equal(["b"], r.Status().Select(s => s.Key));
        Assert.Equal("b=2", target.Text);
        Assert.Equal(1, r.Stats.Deletes);
        Assert.DoesNotContain("delete nope", target.Log);
    }

    [Fact]
    public async Task An_upsert_after_a_failed_delete_brings_the_row_back()
    {
        var target = new TableTarget();
        var r = Start(target);
        r.Upsert("a", 1);
        await r.WaitIdleAsync();
        target.Failures["a"] = 1;
        r.Delete("a");
        await r.WaitIdleAsync();
        Assert.True(r.Status()[0].Deleting);

        r.Upsert("a", 1);
        await r.WaitIdleAsync();
        var a = Assert.Single(r.Status());
        Assert.Equal((false, RowState.Done, 1), (a.Deleting, a.State, a.Value));
        Assert.Equal(["update a=1", "delete a", "update a=1"], target.Log);
        Assert.Equal("a=1", target.Text);
    }

    [Fact]
    public async Task The_periodic_full_pass_repairs_drift_and_counts_it()
    {
        var target = new TableTarget();
        var r = Start(target);
        r.Upsert("a", 1);
        r.Upsert("b", 2);
        await r.WaitIdleAsync();

        // Someone else flushes a, rewrites b and adds z.
        target.Tamper(t =>
        {
            t.Remove("a");
            t["b"] = 20;
            t["z"] = 26;
        });
        _time.Advance(Interval - TimeSpan.FromSeconds(1));
        await r.WaitIdleAsync();
        Assert.Equal(0, r.Stats.FullPasses);

        _time.Advance(TimeSpan.FromSeconds(1));
        await r.WaitIdleAsync();
        Assert.Equal("a=1 b=2", target.Text);
        Assert.Equal((1L, 3, 3L), (r.Stats.FullPasses, r.Stats.LastDrift, r.Stats.DriftRepaired));

        // No drift: the next pass (on request) repairs nothing.
        Assert.Equal(0, await r.FullPassAsync());
        Assert.Equal((2L, 0, 3L), (r.Stats.FullPasses, r.Stats.LastDrift, r.Stats.DriftRepaired));
    }

    [Fact]
    public async Task A_full_pass_settles_rows_in_error_and_pending_deletes()
    {
        var target = new TableTarget();
        var r = Start(target);
        r.Upsert("gone", 9);
        await r.WaitIdleAsync();
        target.Failures["a"] = int.MaxValue;
        target.Failures["gone"] = int.MaxValue;
        r.Upsert("a", 1);
        r.Delete("gone");
        await r.WaitIdleAsync();
        Assert.Equal(2, r.Stats.Errors);

        Assert.Equal(2, await r.FullPassAsync());
        Assert.Equal("a=1", target.Text);
        var only = Assert.Single(r.Status());
        Assert.Equal(("a", RowState.Done, 0), (only.Key, only.State, only.Attempts));
    }

    [Fact]
    public async Task A_failed_full_pass_is_reported_and_retried_with_backoff()
    {
        var target = new TableTarget { PruneFailure = new IOException("iptables-restore: exit 4") };
        var r = Start(target);
        var error = await Assert.ThrowsAsync<IOException>(() => r.FullPassAsync());
        Assert.Equal("iptables-restore: exit 4", error.Message);
        Assert.Equal((1L, "iptables-restore: exit 4"), (r.Stats.FullPassFailures, r.Stats.LastFullPassError));

        target.PruneFailure = null;
        _time.Advance(TimeSpan.FromMilliseconds(100));
        await r.WaitIdleAsync();
        Assert.Equal((2L, null), (r.Stats.FullPasses, r.Stats.LastFullPassError));
    }

    [Fact]
    public async Task A_change_made_while_its_row_is_being_written_is_written_next()
    {
        var target = new TableTarget();
        var entered = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        target.Block = ("a", entered, release.Task);
        var r = Start(target);
        r.Upsert("a", 1);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));

        r.Upsert("a", 2);
        release.SetResult();
        await r.WaitIdleAsync();

        Assert.Equal("a=2", target.Text);
        Assert.Equal(["update a=1", "update a=2"], target.Log);
        Assert.Equal(RowState.Done, r.Status()[0].State);
    }

    [Fact]
    public async Task Batch_operations_get_every_runnable_row_in_one_transaction()
    {
        var target = new BatchTableTarget();
        var r = Start(target);
        r.Upsert("a", 1);
        r.Upsert("b", 2);
        await r.WaitIdleAsync();

        target.Failures["c"] = 1;
        r.Upsert("c", 3);
        r.Delete("a");
        await r.WaitIdleAsync();

        // The failed transaction changed nothing; both rows are retried together.
        Assert.Equal("a=1 b=2", target.Text);
        Assert.All(r.Status().Where(s => s.Key != "b"), s => Assert.Equal((RowState.Error, 1), (s.State, s.Attempts)));

        _time.Advance(TimeSpan.FromMilliseconds(100));
        await r.WaitIdleAsync();
        Assert.Equal("b=2 c=3", target.Text);
        Assert.Equal(["batch a=1,b=2", "batch c=3,-a", "batch c=3,-a"], target.Log);
    }

    [Fact]
    public async Task Only_one_worker_may_run()
    {
        var r = Start(new TableTarget());
        await Assert.ThrowsAsync<InvalidOperationException>(() => r.RunAsync(CancellationToken.None));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _run.WaitAsync(TimeSpan.FromSeconds(10)));
        _stop.Dispose();
    }
}
