using CsCheck;
using Loom.Core.Migration;
using Loom.Core.Store;

namespace Loom.Core.Tests.Migration;

public class NodeMigrationPropertyTests
{
    /// <summary>
    /// Interrupted anywhere (the command's process dying at any store write, or a host step failing), then run again
    /// until it returns: the node, its labels and the host end as after an uninterrupted run, the steps in the same
    /// order (a step interrupted inside runs again, so it may appear twice in a row).
    /// </summary>
    [Fact]
    public async Task Interrupted_anywhere_and_resumed_ends_as_an_uninterrupted_run()
    {
        await Gen.Select(Gen.Int[1, 30], Gen.Int[0, 10], Gen.Bool).SampleAsync(async (crashAtWrite, interruptAtCall, fails) =>
        {
            var check = fails ? "dns: no answer from 10.96.0.10" : null;
            var reference = await NodeMigrationTests.MigratingAsync();
            var referenceHost = new RecordingHost { FailCheck = check };
            var expected = await new NodeMigration(reference, referenceHost).RunAsync("k8s-w1");

            var store = await NodeMigrationTests.MigratingAsync();
            var crashing = new CrashingStore(store) { CrashAtWrite = crashAtWrite };
            var host = new RecordingHost { FailCheck = check, InterruptAtCall = interruptAtCall };
            NodeMigrationResult? result = null;
            for (var attempt = 0; result is null; attempt++)
            {
                Assert.True(attempt < 3, "still not done after two interruptions");
                try
                {
                    result = await new NodeMigration(crashing, host).RunAsync("k8s-w1");
                }
                catch (IOException)
                {
                    crashing.CrashAtWrite = int.MaxValue;
                }
            }

            Assert.Equal(expected, result);
            Assert.Equal(referenceHost.Calls, host.Distinct());
            Assert.Equal(await StateAsync(reference), await StateAsync(store));
        }, iter: 200);
    }

    private static async Task<(NodeMigrationState, bool)> StateAsync(IStore store) =>
        ((await MigrationRecord.GetAsync(store))!.NodeState("k8s-w1"), await NodeMigrationTests.LabelledAsync(store, "k8s-w1"));
}
